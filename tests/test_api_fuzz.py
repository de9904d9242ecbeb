"""One validation layer for every API endpoint (issue 32): random JSON values (text, numbers out of
range, huge numbers, lists, dicts, booleans, empty) for every parameter of every endpoint, through
gradio_client, under a fixed seed. Each call either works or gets a message that names what is wrong:
never Gradio's generic "upstream exception" or an unexpected error, never a traceback in the server
log, and the server keeps serving. The Hub endpoints are left out (they would reach the network;
tests/test_hub.py gives them bad ids)."""

from __future__ import annotations

import random
import socket

import numpy as np
import pytest

import gan

pytest.importorskip("gradio")
from test_app import TINY, contrasty_generator, pytestmark  # noqa: E402, F401

from gan.ui import Settings, build_app, launch_options  # noqa: E402
from gan.ui.wiring import coerce  # noqa: E402

POOL = ["", "abc", "32", "-1", "0.5", "1e309", "nan", "slerp", "tiny", "<b>x</b>", 0, 1, -7, 3.5, -1e300, 10**30,
        True, False, None, [], [1, "a"], {}, {"path": "/etc/passwd"}, {"a": {"b": 1}}]  # fmt: skip
CALLS_PER_ENDPOINT = 8
GENERIC = ("upstream Gradio app has raised an exception", "Something went wrong", "Traceback")


def test_every_endpoint_answers_random_values_with_a_clear_message(tmp_path, capfd):
    from gradio_client import Client

    assert TINY.image_size == 16
    gan.save_model(contrasty_generator(), tmp_path / "weights" / "tiny")
    demo = build_app(Settings(weights_dir=tmp_path / "weights", runs_dir=tmp_path / "runs", train_threads=1))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        rng = random.Random(0)
        answered = refused = 0
        for name, spec in sorted(api.items()):
            if name.startswith("/hub_"):
                continue
            params = [p["parameter_name"] for p in spec["parameters"]]
            for _ in range(CALLS_PER_ENDPOINT):
                kwargs = {p: rng.choice(POOL) for p in params if rng.random() < 0.8}
                try:
                    client.predict(api_name=name, **kwargs)
                    answered += 1
                except Exception as e:  # noqa: BLE001 - gradio_client's AppError: the message is what counts
                    msg = str(e)
                    assert msg and not any(g in msg for g in GENERIC), f"{name} {kwargs}: {msg}"
                    refused += 1
        demo.lab.runner.shutdown()
        grid = client.predict(model="tiny", seed=3, n=4, truncation=1.0, api_name="/sample")  # still serving
        assert grid
    finally:
        demo.lab.runner.shutdown()
        demo.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    assert refused > 50 and answered > 0, (answered, refused)
    lines = [line for line in err.splitlines() if line.startswith("refused /")]
    assert len(lines) >= refused * 0.5  # bad input is logged, one line each (Gradio's own checks say nothing)


@pytest.mark.parametrize(
    ("value", "hint", "want"),
    [
        ("3", int, 3),
        (3.0, int, 3),
        (" 7 ", int, 7),
        ("0.5", float, 0.5),
        ("yes", bool, True),
        (0, bool, False),
        (5, str, "5"),
        (None, int, None),
        ({"a": 1}, dict, {"a": 1}),
    ],  # fmt: skip
)
def test_values_are_taken_in_the_type_the_api_documents(value, hint, want):
    assert coerce("x", value, hint) == want


@pytest.mark.parametrize(
    ("value", "hint", "message"),
    [
        ("abc", int, "seed must be a whole number, got 'abc'"),
        (float("nan"), int, "seed must be a whole number, got nan"),
        (2.5, int, "seed must be a whole number, got 2.5"),
        (float("inf"), float, "seed must be a number, got inf"),
        ("1e999", float, "seed must be a number, got '1e999'"),
        ({"a": 1}, str, "seed must be text, got {'a': 1}"),
        ([1], bool, "seed must be true or false, got [1]"),
        (True, int, "seed must be a whole number, got True"),
        (np.float64("nan"), float, "seed must be a number, got"),
    ],  # fmt: skip
)
def test_a_bad_value_is_refused_naming_the_parameter(value, hint, message):
    from gan.ui.common import AppError

    with pytest.raises(AppError) as e:
        coerce("seed", value, hint)
    assert str(e.value).startswith(message)
