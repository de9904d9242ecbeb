"""Strangers on one Space (issue 32): a visitor's uploads, samples and model are theirs. Another visitor
sees that the trainer is busy, when it ends and the line for it; the starter may share the live view.
Locally nothing changes. Endpoints as plain functions (test_app.py's helpers); the browser side is in
test_browser.py.
"""

from __future__ import annotations

import pytest

from conftest import png_zip

pytest.importorskip("gradio")
from test_app import TINY_TRAIN, make_lab, pytestmark, wait_for  # noqa: E402, F401

from gan.ui import endpoints as ep  # noqa: E402
from gan.ui.common import AppError  # noqa: E402
from gan.ui.ownership import NotOwner, viewing  # noqa: E402

HOSTILE = "boom [click](javascript:evil) **big** <img src=x onerror=alert(1)>.zip"  # no "/" in a file name


def _upload(tmp_path) -> str:
    return str(png_zip(tmp_path / HOSTILE, [f"[x](http://evil)/{i}.png" for i in range(8)]))


def test_another_visitor_sees_only_that_the_trainer_is_busy(tmp_path):
    lab = make_lab(tmp_path, on_space=True, max_queue=2)
    ep.train(lab, **{**TINY_TRAIN, "source": "upload"}, files=[_upload(tmp_path)], steps=10_000, session="A")
    wait_for(lab, lambda s: s["step"] > 0 and s["grid_step"] is not None)
    mine, grid = ep.progress(lab, session="A")
    assert mine["run"] and "8 images used" in mine["data"] and mine["losses"] and grid is not None
    theirs, grid = ep.progress(lab, session="B")
    assert grid is None and theirs["status"] == "running" and theirs["steps"] == 10_000
    assert theirs["losses"] == [] and theirs["metrics"] == []
    assert not {"run", "data", "model", "message", "grid_step"} & set(theirs)
    assert "evil" not in repr(theirs) and "boom" not in repr(theirs)
    ep.train(lab, **TINY_TRAIN, steps=5, session="B")
    assert ep.progress(lab, session="B")[0]["place"]["place"] == 1  # their place in line, nothing of A's run
    with pytest.raises(NotOwner):
        ep.share(lab, True, session="B")
    assert ep.share(lab, True, session="A").startswith("Everyone who opens this page now sees")
    shared, grid = ep.progress(lab, session="B")
    assert grid is not None and shared["data"] and shared["losses"]  # the live view, shared by its starter
    ep.share(lab, False, session="A")
    assert ep.progress(lab, session="B")[1] is None
    lab.runner.leave("B")
    ep.stop(lab, session="A")
    state = wait_for(lab, lambda s: s["status"] == "stopped")
    model = "trained:" + state["run"]
    with viewing("A"):
        assert model in [v for _, v in lab.models.choices()]
        assert ep.sample(lab, model, 0, 4, 1.0).shape[-1] == 3
        assert lab.models.zip(model) is not None
    with viewing("B"):  # not in B's picker, not loadable by its name, no download
        assert model not in [v for _, v in lab.models.choices()]
        with pytest.raises(AppError, match="There is no trained model called"):
            ep.sample(lab, model, 0, 4, 1.0)
        assert lab.models.zip(model) is None
    key = lab.runner.claim_key("A")
    assert lab.runner.adopt("A-after-a-reload", key) == [state["run"]]  # the starter's page, reloaded
    with viewing("A-after-a-reload"):
        assert model in [v for _, v in lab.models.choices()]


def test_locally_nothing_is_hidden(tmp_path):
    lab = make_lab(tmp_path)
    ep.train(lab, **TINY_TRAIN, steps=3, session="A")
    state = wait_for(lab, lambda s: s["status"] == "finished")
    seen, grid = ep.progress(lab, session="B")
    assert seen["run"] == state["run"] and grid is not None
    with viewing("B"):
        assert "trained:" + state["run"] in [v for _, v in lab.models.choices()]
