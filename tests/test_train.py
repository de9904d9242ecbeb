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
    calls = []
    evs = list(fit(TINY, cfg, shapes, out_dir=tmp_path, on_step=lambda: calls.append(threading.get_ident())))
    assert calls == [threading.get_ident()] * 4  # after every step, in the training thread
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


def test_cooldown_lowers_both_rates_over_the_end_and_resumes_exactly(tmp_path, shapes):
    from gan.config import ConfigError
    from gan.train import lr_factor

    cool = tiny_train(steps=8, cooldown=0.5, cooldown_lr=0.25)
    assert [lr_factor(cool, s) for s in range(8)] == [1.0] * 4 + [0.25] * 4
    assert lr_factor(cool.replace(steps=12), 4) == 1.0  # resumed with more steps: the cool-down moves
    assert lr_factor(tiny_train(steps=8), 7) == 1.0  # off by default
    for bad in ({"cooldown": 1.0}, {"cooldown": -0.1}, {"cooldown_lr": 0.0}, {"cooldown_lr": 1.5}):
        with pytest.raises(ConfigError):
            tiny_train(**bad)

    plain = losses(fit(TINY, tiny_train(steps=8), shapes, out_dir=tmp_path / "plain"))
    full = losses(fit(TINY, cool, shapes, out_dir=tmp_path / "a"))
    assert full[:4] == plain[:4]  # the same run until the cool-down
    assert all(a != b for a, b in zip(full[4:], plain[4:]))  # then other updates: the rates really changed
    stop, n = threading.Event(), []
    first = losses(fit(TINY, cool, shapes, out_dir=tmp_path / "b", stop=stop,
                       on_step=lambda: (n.append(1), len(n) == 6 and stop.set())))  # fmt: skip
    rest = losses(fit(None, cool, shapes, out_dir=tmp_path / "b", resume=tmp_path / "b"))
    assert first == full[:6] and rest == full[6:]  # stopped inside the cool-down, resumed bit-identical


def test_cooldown_follows_the_time_limit_when_it_comes_first(tmp_path, shapes, monkeypatch):
    """A 10-second limit and a cool-down of the last half: a run of 1,000 steps cools down from
    second 5, long before step 500, on a clock that ticks a second per step."""
    import gan.train as gt

    now = [1000.0]
    monkeypatch.setattr(gt.time, "perf_counter", lambda: now[0])
    cfg = tiny_train(steps=1000, max_minutes=10 / 60, cooldown=0.5, cooldown_lr=0.25, log_every=1)
    evs = list(fit(TINY, cfg, shapes, out_dir=tmp_path, on_step=lambda: now.__setitem__(0, now[0] + 1.0)))
    assert [(e.step, e.lr_factor) for e in evs if isinstance(e, StepLog)] == [(s, 1.0) for s in range(1, 6)] + [
        (s, 0.25) for s in range(6, 11)
    ]
    assert isinstance(evs[-1], Done) and evs[-1].step == 10  # then the limit ends it


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


# ---- the clocks and checks of fit (issue 13) ----


def test_resume_after_time_limit_gets_a_fresh_budget(tmp_path, shapes):
    """A run that stopped on its time limit, resumed with the same limit, trains again (it used
    to stop at once: the budget was compared with the checkpoint's elapsed time)."""
    cfg = tiny_train(steps=100_000, max_minutes=0.002, log_every=1)  # 120 ms per session
    first = list(fit(TINY, cfg, shapes, out_dir=tmp_path))
    assert first[-1].reason == "finished" and "min budget" in first[-1].message and first[-1].step >= 1
    rest = list(fit(None, cfg, shapes, out_dir=tmp_path, resume=tmp_path))
    assert rest[0].step == first[-1].step
    assert rest[-1].step > first[-1].step, rest[-1].message
    assert load_checkpoint(tmp_path)[0]["step"] == rest[-1].step


def test_rollback_does_not_count_time_twice(tmp_path, shapes, monkeypatch):
    """elapsed_s after a rollback stays within the wall-clock time really spent."""
    import time

    import gan.train as gt

    real_step = gt.Trainer.step
    calls = []

    def slow_step(self, batch):
        time.sleep(0.03)
        calls.append(1)
        out = real_step(self, batch)
        return out * float("nan") if len(calls) == 8 else out  # the 8th step's stats are NaN, once

    monkeypatch.setattr(gt.Trainer, "step", slow_step)
    evs = []
    for ev in fit(TINY, tiny_train(steps=12, checkpoint_every=4, log_every=1), shapes, out_dir=tmp_path):
        if isinstance(ev, Started):
            t0 = time.perf_counter()  # fit's clock starts just before this event
        evs.append(ev)
        wall = time.perf_counter() - t0
    assert [e.to_step for e in evs if isinstance(e, Rollback)] == [4]
    logs = [e for e in evs if isinstance(e, StepLog)]
    assert evs[-1].reason == "finished"
    assert max(e.elapsed_s for e in logs) <= wall, (max(e.elapsed_s for e in logs), wall)
    assert load_checkpoint(tmp_path)[0]["elapsed_s"] <= wall


def _poison_weights_after(monkeypatch, at_update: int):
    """Make G's weights non-finite right after update `at_update` (its reported losses stay finite)."""
    import gan.train as gt

    real_step = gt.Trainer.step

    def step(self, batch):
        out = real_step(self, batch)
        if self.n_updates == at_update:
            with torch.no_grad():
                next(self.G.parameters()).fill_(float("inf"))
        return out

    monkeypatch.setattr(gt.Trainer, "step", step)


def test_non_finite_weights_are_never_checkpointed(tmp_path, shapes, monkeypatch):
    _poison_weights_after(monkeypatch, at_update=4)  # the update that ends at step 4, a checkpoint step
    evs = list(fit(TINY, tiny_train(steps=6, checkpoint_every=4, log_every=4), shapes, out_dir=tmp_path))
    rb = [e for e in evs if isinstance(e, Rollback)]
    assert len(rb) == 1 and rb[0].to_step == 0 and "non-finite weights" in rb[0].message
    meta, t = load_checkpoint(tmp_path)
    assert all(torch.isfinite(v.float()).all() for k, v in t.items() if k[0] in "GDE")


def test_non_finite_weights_are_never_exported(tmp_path, shapes, monkeypatch):
    from safetensors.torch import load_file

    _poison_weights_after(monkeypatch, at_update=6)  # the very last update
    evs = list(fit(TINY, tiny_train(steps=6, checkpoint_every=4, log_every=1), shapes, out_dir=tmp_path))
    done = evs[-1]
    assert done.reason == "diverged" and "non-finite weights" in done.message
    assert "last good checkpoint (step 4)" in done.message, done.message
    assert load_checkpoint(tmp_path)[0]["step"] == 4
    weights = load_file(tmp_path / "model" / "model.safetensors")
    assert all(torch.isfinite(v.float()).all() for v in weights.values())


def test_training_thread_sets_its_own_thread_count(tmp_path, shapes, monkeypatch):
    """A thread started while its parent had set 1 thread inherits 1; fit sets the count itself."""
    from gan.device import available_cores

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    seen = {}

    def worker():
        torch.set_num_threads(1)  # as a render thread of the app would
        for ev in fit(TINY, tiny_train(steps=2, threads=0), shapes, out_dir=tmp_path):
            if isinstance(ev, Started):
                seen["started"] = ev.threads
                seen["torch"] = torch.get_num_threads()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["started"] == seen["torch"] == available_cores()


def test_r1_penalty_changes_d_and_stays_finite(tmp_path, shapes):
    a = losses(fit(TINY, tiny_train(steps=3, precision="fp32"), shapes, out_dir=tmp_path / "a"))
    b = losses(fit(TINY, tiny_train(steps=3, precision="fp32", r1_gamma=10.0, r1_every=1), shapes,
                   out_dir=tmp_path / "b"))  # fmt: skip
    assert a[0][:2] == b[0][:2]  # the first D loss is reported without the penalty ...
    assert a[0][2] != b[0][2] and a[1] != b[1]  # ... which changed D's update (and so G's loss)
    assert np.isfinite(b).all()


# ---- Stop within a long step; a full disk (issue 31) ----


def test_stop_in_the_middle_of_a_long_step_keeps_the_last_finished_step(tmp_path, shapes, monkeypatch):
    """With steps that take seconds, Stop ends the step under way at its next layer and rolls it back:
    the checkpoint equals, tensor for tensor, that of a run that finished at the step before."""
    import gan.train as gt

    monkeypatch.setattr(gt, "INTERRUPT_AFTER_S", 0.0)  # every step counts as long: armed after the first
    cfg = tiny_train(steps=6, checkpoint_every=0)
    ref = list(fit(TINY, cfg.replace(steps=2), shapes, out_dir=tmp_path / "ref"))
    assert ref[-1].step == 2
    stop, calls = threading.Event(), {"n": 0}

    def stop_in_g_step(module, args):  # D runs 3 times a step (real, fake, then in G's update): the 3rd
        calls["n"] += 1  # of step 3 is after D's optimizer has stepped, before G's
        if calls["n"] == 3 * 2 + 3:
            stop.set()

    from gan.models import Discriminator

    orig_init = Discriminator.__init__

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        self.register_forward_pre_hook(stop_in_g_step)

    monkeypatch.setattr(Discriminator, "__init__", init)
    evs = list(fit(TINY, cfg, shapes, out_dir=tmp_path / "run", stop=stop))
    assert calls["n"] == 9 and evs[-1].reason == "stopped" and evs[-1].step == 2, evs[-1]
    (m1, a), (m2, b) = load_checkpoint(tmp_path / "ref"), load_checkpoint(tmp_path / "run")
    assert m1["step"] == m2["step"] == 2 and m1["optD"] == m2["optD"]
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == [], different
    rest = losses(fit(None, cfg, shapes, out_dir=tmp_path / "run", resume=tmp_path / "run"))
    full = losses(fit(TINY, cfg, shapes, out_dir=tmp_path / "full"))
    assert rest == full[2:]  # and it resumes exactly


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, shapes, monkeypatch):
    import errno

    import gan.train as gt

    cfg = tiny_train(steps=6, checkpoint_every=2)
    real_save = gt.save_file
    calls = {"n": 0}

    def save_file(tensors, path, metadata=None):
        calls["n"] += 1
        if calls["n"] == 3:  # step 0 and step 2 are written; step 4's write fills the disk halfway
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(gt, "save_file", save_file)
    with pytest.raises(
        CheckpointError, match=r"checkpoint of step 4 .*No space left on device.*previous checkpoint is kept"
    ):
        list(fit(TINY, cfg, shapes, out_dir=tmp_path))
    assert load_checkpoint(tmp_path)[0]["step"] == 2  # intact, and loadable
    assert not list(tmp_path.glob("*.tmp*")), "the half-written file is removed"
