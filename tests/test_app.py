"""The Gradio app, launched for real on 127.0.0.1 and driven through gradio_client.

One app for the module (a tiny 16-px model in a temporary weights folder), plus a second one with
no models at all. Training runs use a tiny model on the built-in shapes and take a few seconds.
"""

from __future__ import annotations

import io
import socket
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gan

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import app  # noqa: E402

# gradio 6.31's queue calls pandas APIs that pandas 3 deprecates; not ours to fix
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

TINY = gan.ModelConfig(image_size=16, z_dim=16, g_width=8, d_width=8)
TINY_TRAIN = dict(source="synthetic", image_size=16, channels=3, g_width=8, d_width=8, z_dim=16, batch_size=16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(weights: Path, runs: Path):
    demo = app.build_app(weights_dir=weights, runs_dir=runs, on_space=False)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    return demo, Client(f"http://127.0.0.1:{port}/", verbose=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    gan.save_model(gan.Generator(TINY), root / "weights" / "tiny")
    demo, client = launch(root / "weights", root / "runs")
    yield demo, client, root
    demo.lab.trainer.shutdown()
    demo.close()


@pytest.fixture(scope="module")
def client(lab):
    return lab[1]


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path))


def wait_for(client: Client, cond, timeout: float = 60.0) -> dict:
    """Poll the progress endpoint until cond(state) holds; returns the state."""
    t0 = time.time()
    while True:
        state, grid = client.predict(api_name="/progress")
        if cond(state):
            return state
        assert time.time() - t0 < timeout, f"timed out waiting; last state: {state['status']} {state['step']}"
        time.sleep(0.2)


def test_sample_size_and_same_seed_same_bytes(client):
    a = client.predict(model="tiny", seed=7, n=4, truncation=1.0, api_name="/sample")
    c = client.predict(model="tiny", seed=8, n=4, truncation=1.0, api_name="/sample")
    b = client.predict(model="tiny", seed=7, n=4, truncation=1.0, api_name="/sample")  # rendered afresh
    assert Path(a).read_bytes() == Path(b).read_bytes()
    assert Image.open(a).size == (2 * (16 + 2) + 2,) * 2  # a 2x2 grid of 16-px images, 2-px padding
    assert not np.array_equal(pixels(a), pixels(c))
    one = client.predict(model="tiny", seed=7, n=1, truncation=1.0, api_name="/sample")
    assert Image.open(one).size == (16, 16)  # a single image comes bare, without a grid border


def test_interpolate_ends_are_the_seeds_images(client):
    a = client.predict(model="tiny", seed=5, n=1, truncation=1.0, api_name="/sample")
    b = client.predict(model="tiny", seed=9, n=1, truncation=1.0, api_name="/sample")
    at0 = client.predict(model="tiny", seed_a=5, seed_b=9, t=0.0, api_name="/interpolate")
    at1 = client.predict(model="tiny", seed_a=5, seed_b=9, t=1.0, api_name="/interpolate")
    mid = client.predict(model="tiny", seed_a=5, seed_b=9, t=0.5, api_name="/interpolate")
    assert Path(at0).read_bytes() == Path(a).read_bytes()
    assert np.array_equal(pixels(at1), pixels(b))
    assert not np.array_equal(pixels(mid), pixels(a))
    moved = client.predict(model="tiny", seed_a=5, seed_b=9, t=0.0, d1=2.0, api_name="/interpolate")
    assert not np.array_equal(pixels(moved), pixels(a))  # a latent slider moves the image


def test_walk_renders_gif_and_mp4(client):
    gif, mp4, files = client.predict(model="tiny", seed_a=1, seed_b=2, frames=6, api_name="/walk")
    im = Image.open(gif)
    assert im.format == "GIF" and im.n_frames == 6 and im.size == (256, 256)  # 16 px upscaled x16
    assert mp4 is not None and Path(mp4["video"] if isinstance(mp4, dict) else mp4).stat().st_size > 0
    assert len(files) == 2


def test_friendly_errors(client):
    with pytest.raises(AppError, match="Unknown model 'nope'"):
        client.predict(model="nope", seed=0, n=4, truncation=1.0, api_name="/sample")
    with pytest.raises(AppError, match="seed|minimum"):
        client.predict(model="tiny", seed=-1, n=4, truncation=1.0, api_name="/sample")
    with pytest.raises(AppError, match="no run|No training|checkpoint"):
        client.predict(run="../etc", steps=10, api_name="/resume")


def test_training_grows_loss_table_and_grid(client):
    msg = client.predict(**TINY_TRAIN, steps=20, api_name="/train")
    assert "Started" in msg
    lengths = []
    state = wait_for(client, lambda s: lengths.append(len(s["losses"])) or s["status"] == "finished", 90)
    assert lengths == sorted(lengths) and lengths[-1] == 20
    assert [r["step"] for r in state["losses"]] == list(range(1, 21))
    assert all(np.isfinite([r["loss_d"], r["loss_g"], r["d_real"], r["d_fake"]]).all() for r in state["losses"])
    later, grid = client.predict(since=15, api_name="/progress")
    assert [r["step"] for r in later["losses"]] == [16, 17, 18, 19, 20]  # a script can poll incrementally
    assert Image.open(grid).size == (8 * 18 + 2,) * 2  # 64 fixed-noise samples of 16 px
    # the finished model is pickable at once
    assert state["model"] == "trained:" + state["run"]
    img = client.predict(model=state["model"], seed=0, n=4, truncation=1.0, api_name="/sample")
    assert Image.open(img).size == (38, 38)


def test_busy_stop_and_resume(client):
    client.predict(**TINY_TRAIN, steps=100_000, api_name="/train")
    state = wait_for(client, lambda s: s["status"] == "running" and s["step"] > 0)
    with pytest.raises(AppError, match="Busy: a training run"):
        client.predict(**TINY_TRAIN, steps=10, api_name="/train")
    # others can still sample while it trains
    assert Path(client.predict(model="tiny", seed=1, n=4, truncation=1.0, api_name="/sample")).is_file()
    assert "Stopping" in client.predict(api_name="/stop")
    state = wait_for(client, lambda s: s["status"] == "stopped")
    run, step = state["run"], state["step"]
    assert 0 < step < 100_000 and state["model"] == "trained:" + run  # checkpoint + model folder
    assert "No training run" in client.predict(api_name="/stop")
    msg = client.predict(run=run, steps=step + 5, api_name="/resume")
    assert f"from step {step}" in msg
    state = wait_for(client, lambda s: s["status"] == "finished")
    assert state["step"] == step + 5 and state["run"] == run
    assert state["losses"][-1]["step"] == step + 5


def test_upload_zip_with_a_broken_file(client, tmp_path):
    zpath = tmp_path / "pics.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for i in range(6):
            buf = io.BytesIO()
            Image.new("RGB", (20, 24), (40 * i, 90, 200 - 30 * i)).save(buf, format="PNG")
            zf.writestr(f"pics/{i}.png", buf.getvalue())
        zf.writestr("pics/broken.png", b"not a png")
    msg = client.predict(
        **{**TINY_TRAIN, "source": "upload"}, files=[handle_file(str(zpath))], steps=2, api_name="/train"
    )
    assert "6 images used from pics.zip; 1 files skipped" in msg
    state = wait_for(client, lambda s: s["status"] == "finished")
    assert state["step"] == 2


def test_no_model_says_so_and_points_to_train(tmp_path):
    demo, client = launch(tmp_path / "weights", tmp_path / "runs")
    try:
        for call in (
            dict(model=None, seed=0, n=4, truncation=1.0, api_name="/sample"),
            dict(model=None, seed_a=0, seed_b=1, t=0.5, api_name="/interpolate"),
        ):
            with pytest.raises(AppError, match="No model yet.*Train"):
                client.predict(**call)
        state, grid = client.predict(api_name="/progress")
        assert state["status"] == "idle" and grid is None
    finally:
        demo.close()
