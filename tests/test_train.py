"""The training iterator: events, exact resume, atomic checkpoints, divergence, stop."""

import threading

import numpy as np
import pytest
import torch

from gan import CheckpointError, Done, Rollback, Samples, Started, StepLog, fit, make_synthetic
from gan.train import CKPT_NAME, load_checkpoint

from conftest import TINY, tiny_train


@pytest.fixture(scope="module")
def shapes():
    return make_synthetic(64, 16, 3, seed=0)


def losses(events):
    return [(e.step, e.loss_d, e.loss_g, e.d_real, e.d_fake) for e in events if isinstance(e, StepLog)]


def test_events_and_outputs(tmp_path, shapes):
    cfg = tiny_train(steps=4, sample_every=2, checkpoint_every=2, log_every=2)
    evs = list(fit(TINY, cfg, shapes, out_dir=tmp_path))
    assert isinstance(evs[0], Started) and evs[0].n_images == 64
    assert [e.step for e in evs if isinstance(e, StepLog)] == [2, 4]
    grids = [e for e in evs if isinstance(e, Samples)]
    assert [g.step for g in grids] == [2, 4] and grids[0].grid.dtype == np.uint8
    assert grids[0].grid.shape == (2 * 18 + 2, 2 * 18 + 2, 3)  # 4 images of 16 px in a 2x2 grid
    done = evs[-1]
    assert isinstance(done, Done) and done.reason == "finished" and done.step == 4
    assert (tmp_path / "model" / "model.safetensors").exists() and (tmp_path / CKPT_NAME).exists()
    assert not list(tmp_path.glob("*.tmp*")), "no temporary files left behind"
    for e in evs:
        if isinstance(e, StepLog):
            assert np.isfinite([e.loss_d, e.loss_g]).all() and 0 <= e.d_real <= 1 and e.img_per_s > 0


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_equals_uninterrupted_run(tmp_path, shapes, precision):
    full = losses(fit(TINY, tiny_train(steps=8, precision=precision), shapes, out_dir=tmp_path / "a"))
    first = losses(fit(TINY, tiny_train(steps=4, precision=precision), shapes, out_dir=tmp_path / "b"))
    rest = losses(fit(None, tiny_train(steps=8, precision=precision), shapes, out_dir=tmp_path / "b",
                      resume=tmp_path / "b"))  # fmt: skip
    assert first == full[:4]
    assert rest == full[4:]  # bit-identical losses after resuming


def test_checkpoint_holds_everything(tmp_path, shapes):
    list(fit(TINY, tiny_train(steps=3, ema_decay=0.9), shapes, out_dir=tmp_path))
    meta, t = load_checkpoint(tmp_path)
    assert meta["step"] == 3 and meta["model_config"]["g_width"] == 8
    assert meta["train_config"]["ema_decay"] == 0.9 and len(meta["data_fingerprint"]) == 16
    prefixes = {k.split(".")[0] for k in t}
    assert prefixes == {"G", "D", "E", "optG", "optD", "rng"}


def test_resume_refuses_other_model_or_bad_file(tmp_path, shapes):
    list(fit(TINY, tiny_train(steps=2), shapes, out_dir=tmp_path))
    with pytest.raises(CheckpointError, match="leave the model options out"):
        next(fit(TINY.replace(g_width=16), tiny_train(steps=4), shapes, out_dir=tmp_path, resume=tmp_path))
    (tmp_path / "junk.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


def test_nan_injection_rolls_back_then_stops(tmp_path, shapes, monkeypatch):
    """A NaN loss at every step from step 3 on: one rollback, then a clear stop."""
    import gan.train as gt

    real_fn = gt.g_loss_fn
    calls = {"n": 0}

    def poisoned(fake, kind):
        calls["n"] += 1
        loss = real_fn(fake, kind)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setattr(gt, "g_loss_fn", poisoned)
    evs = list(fit(TINY, tiny_train(steps=10, checkpoint_every=2), shapes, out_dir=tmp_path))
    rb = [e for e in evs if isinstance(e, Rollback)]
    assert len(rb) == 1 and rb[0].to_step == 2
    assert evs[-1].reason == "diverged" and "last good checkpoint (step 2)" in evs[-1].message
    meta, t = load_checkpoint(tmp_path)
    assert meta["step"] == 2
    assert all(torch.isfinite(v.float()).all() for k, v in t.items() if k.startswith("G."))


def test_stop_event_writes_checkpoint_and_model(tmp_path, shapes):
    stop = threading.Event()
    evs = []
    for e in fit(TINY, tiny_train(steps=1000), shapes, out_dir=tmp_path, stop=stop):
        evs.append(e)
        if isinstance(e, StepLog) and e.step == 3:
            stop.set()
    done = evs[-1]
    assert done.reason == "stopped" and done.step == 3
    assert load_checkpoint(tmp_path)[0]["step"] == 3 and (tmp_path / "model" / "config.json").exists()
