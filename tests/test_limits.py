"""A public Space that one stranger cannot exhaust (issue 31): the trainer's line, Resume within the
run's time limit, settings too costly for the limit, disk budgets for run folders, decoded data per
visitor and released with their session, decoding and training in child processes with a memory
cap, and a server that stops (SIGTERM) or dies (SIGKILL) without losing the run.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gan
from gan.train import CKPT_NAME, checkpoint_info
from gan.worker import TrainRequest, read_message, write_message

from conftest import png_zip

pytest.importorskip("gradio")
from test_app import TINY_TRAIN, make_lab, pytestmark, wait_for  # noqa: E402, F401

from gan.ui import endpoints as ep  # noqa: E402
from gan.ui import train_endpoints  # noqa: E402
from gan.ui.common import AppError, Busy  # noqa: E402
from gan.ui.jobs import META_NAME  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---- the trainer's line ----------------------------------------------------------------------------


def test_a_second_visitor_waits_in_line_and_gets_the_trainer_in_order(tmp_path):
    lab = make_lab(tmp_path, on_space=True, max_queue=2)
    assert ep.train(lab, **TINY_TRAIN, steps=10_000, session="A").startswith("Started `")
    wait_for(lab, lambda s: s["status"] == "running")
    first = lab.runner.job
    msg = ep.train(lab, **TINY_TRAIN, steps=5, session="B")
    assert msg.startswith("Queued: the trainer is busy, and you are number 1 in line.") and "in about" in msg
    assert "stop it" not in msg
    assert ep.train(lab, **TINY_TRAIN, steps=7, session="C").startswith("Queued: ") and "number 2" in ep.train(
        lab, **TINY_TRAIN, steps=6, session="C"
    )  # a second Start keeps their place
    with pytest.raises(Busy, match="The line is full"):
        ep.train(lab, **TINY_TRAIN, steps=5, session="D")
    assert lab.runner.place("C")[0] == 2 and lab.runner.place("D") is None
    busy = lab.runner.busy_message()
    assert "2 waiting in line" in busy and "stop it" not in busy and "It ends at step 10,000" in busy
    ep.stop(lab, session="A")
    wait_for(lab, lambda s: not lab.runner.queue and s["run"] != first.name and s["status"] == "finished")
    assert first.status == "stopped" and lab.runner.job.owner.session == "C"
    from gan.ui.jobs import visitor_digest

    metas = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob(f"*/{META_NAME}"))]
    got = sorted((m["visitor"], m["train_config"]["steps"], m["status"]) for m in metas)
    want = [(visitor_digest("A"), 10_000, "stopped"), (visitor_digest("B"), 5, "finished"),
            (visitor_digest("C"), 6, "finished")]  # fmt: skip
    assert got == sorted(want)
    b_run = next(m for m in metas if m["visitor"] == visitor_digest("B"))
    c_run = next(m for m in metas if m["visitor"] == visitor_digest("C"))
    assert b_run["name"] < c_run["name"]  # in the order they came
    assert lab.runner.claim_key("C") and lab.runner.may_control(b_run["name"], "B", None, shared=True)


def test_a_visitor_who_leaves_gives_up_their_place(tmp_path):
    lab = make_lab(tmp_path, on_space=True, max_queue=2)
    ep.train(lab, **TINY_TRAIN, steps=10_000, session="A")
    ep.train(lab, **TINY_TRAIN, steps=5, session="B")
    ep.train(lab, **TINY_TRAIN, steps=5, session="C")
    assert lab.runner.leave("B") and lab.runner.place("C")[0] == 1
    lab.runner.shutdown()  # the server goes: nobody in line starts
    assert lab.runner.job.status == "stopped" and not lab.runner.queue


def test_without_a_queue_a_busy_trainer_is_said_without_telling_strangers_to_stop_it(tmp_path):
    lab = make_lab(tmp_path)  # locally: no line
    ep.train(lab, **TINY_TRAIN, steps=10_000)
    with pytest.raises(Busy) as e:
        ep.train(lab, **TINY_TRAIN, steps=5)
    assert "stop it" not in str(e.value) and "It ends at step 10,000." in str(e.value)
    lab.runner.shutdown()


# ---- time: Resume continues the run's limit; settings too costly for it are refused -----------------


def test_resume_continues_the_time_limit_instead_of_renewing_it(tmp_path):
    lab = make_lab(tmp_path, on_space=True, max_minutes=0.02)  # 1.2 s per run
    ep.train(lab, **TINY_TRAIN, steps=20_000, session="A")
    state = wait_for(lab, lambda s: s["status"] == "finished", timeout=120)
    assert "min budget" in lab.runner.job.message
    run = state["run"]
    assert checkpoint_info(tmp_path / "runs" / run / CKPT_NAME)["elapsed_s"] >= 1.2
    with pytest.raises(AppError, match=r"has used its 0.02-minute time limit; a resumed run continues it"):
        ep.resume(lab, run, 20_000, session="A")
    assert lab.runner.resumable("A", None, shared=True) == []  # and it is not offered


def test_resume_gets_what_is_left_of_the_limit(tmp_path):
    lab = make_lab(tmp_path, on_space=True, max_minutes=30)
    ep.train(lab, **TINY_TRAIN, steps=10_000, session="A")
    wait_for(lab, lambda s: s["step"] > 0)
    ep.stop(lab, session="A")
    state = wait_for(lab, lambda s: s["status"] == "stopped")
    msg = ep.resume(lab, state["run"], 20_000, session="A")
    assert "(its time limit: 30 minutes in all, 29.9 left)" in msg or "30.0 left" in msg, msg
    assert 29.5 < lab.runner.job.max_minutes < 30
    ep.stop(lab, session="A")
    wait_for(lab, lambda s: s["status"] == "stopped")


def test_settings_that_cannot_make_their_steps_in_the_limit_are_refused(tmp_path, monkeypatch):
    from gan.cost import REFERENCE, REFERENCE_BATCH, StepCost, step_macs

    monkeypatch.setattr(train_endpoints, "machine_cost", lambda: StepCost(0.05 / step_macs(REFERENCE, REFERENCE_BATCH)))
    lab = make_lab(tmp_path, on_space=True, max_minutes=30)
    big = {**TINY_TRAIN, "image_size": 128, "g_width": 128, "d_width": 128, "batch_size": 256}
    with pytest.raises(AppError) as e:
        ep.train(lab, **big, steps=2000, session="A")
    text = str(e.value)
    assert text.startswith("These settings (128 px, batch 256, widths 128/128) would take about ") and (
        "s a step on this server, so 100 steps would not fit in the 30-minute limit" in text
    )
    assert lab.runner.job is None  # nothing started, no data decoded
    msg = ep.train(lab, **{**TINY_TRAIN, "image_size": 64, "g_width": 32, "d_width": 32}, steps=20_000, session="A")
    assert "of the 20,000 steps fit in the 30-minute limit (the run then stops with its model saved)" in msg
    lab.runner.shutdown()


def test_preview_every_is_clamped(tmp_path):
    lab = make_lab(tmp_path)
    ep.train(lab, **TINY_TRAIN, steps=1000, preview_every=1)
    assert lab.runner.job.form["preview_every"] == 5  # at most 200 grids a run
    lab.runner.shutdown()


# ---- disk: run folders -----------------------------------------------------------------------------


def _fake_run(runs: Path, name: str, mb: float, visitor: str | None = None, age: float = 0.0) -> Path:
    d = runs / name
    d.mkdir(parents=True)
    (d / "blob.bin").write_bytes(b"\0" * int(mb * 1_000_000))
    meta = {"name": name, "train_config": {"steps": 10}, "step": 10, "status": "finished"}
    if visitor:
        meta["visitor"] = visitor
    (d / META_NAME).write_text(json.dumps(meta))
    t = time.time() - 1000 + age
    os.utime(d, (t, t))
    return d


def test_run_folders_are_pruned_by_bytes_oldest_first_never_the_one_in_use(tmp_path):
    from gan.ui.jobs import visitor_digest

    lab = make_lab(tmp_path, max_runs_mb=4.5)
    runs = tmp_path / "runs"
    for i in range(4):
        _fake_run(runs, f"old{i}", 1.0, age=i)
    ep.train(lab, **TINY_TRAIN, steps=10_000)  # 4 MB: within the budget, nothing pruned yet
    live = lab.runner.job.run_dir
    wait_for(lab, lambda s: s["step"] > 0)
    assert 1.5e6 < sum(f.stat().st_size for f in live.rglob("*") if f.is_file()) < 2e6  # its data: 1.6 MB
    assert lab.runner.prune_runs(keep=0) == ["old0", "old1"]  # oldest first, until within 4.5 MB
    _fake_run(runs, "old4", 2.0, age=50)
    assert lab.runner.prune_runs(keep=0) == ["old2", "old3"] and live.is_dir()  # never the one in use
    assert (runs / "old4").is_dir()
    lab.runner.shutdown()
    # a Space keeps GAN_RUNS_PER_VISITOR folders per visitor
    lab = make_lab(tmp_path / "space", on_space=True, runs_per_visitor=2)
    runs = tmp_path / "space" / "runs"
    for i in range(3):
        _fake_run(runs, f"a{i}", 0.01, visitor_digest("A"), age=i)
    _fake_run(runs, "b0", 0.01, visitor_digest("B"))
    ep.train(lab, **TINY_TRAIN, steps=3, session="A")
    assert sorted(d.name for d in runs.iterdir() if d.name[0] in "ab") == ["a2", "b0"]
    wait_for(lab, lambda s: s["status"] == "finished")
    meta = json.loads((lab.runner.job.run_dir / META_NAME).read_text())
    assert meta["visitor"] == visitor_digest("A") and "A" not in json.dumps(meta).replace(visitor_digest("A"), "")


# ---- decoded data: per visitor, on disk, released with the session, decoded in a capped child -------


def _zip_of_pngs(path: Path, n: int = 12) -> Path:
    return png_zip(path, [f"p/{i}.png" for i in range(n)], size=(20, 24))


def test_decoded_data_is_per_visitor_on_disk_and_released_when_the_session_ends(tmp_path):
    lab = make_lab(tmp_path, on_space=True, isolate_data=True)
    z = _zip_of_pngs(tmp_path / "mine.zip")
    spec = ep.data_spec(lab, "upload", [str(z)], "", 16, 3)
    a = lab.data(spec, "A")
    assert a.report.n_ok == 12 and a.path.is_file() and a.shape == (12, 3, 16, 16)
    assert not any(isinstance(v, torch.Tensor) for v in vars(a).values())  # the server holds no images
    assert lab.data(spec, "A") is a  # Load, then Start: decoded once
    b = lab.data(spec, "B")  # another visitor never gets A's
    assert b.path != a.path
    assert lab.release("A") == 1 and not a.path.exists() and b.path.exists()
    assert all(owner != "A" for owner, _ in lab.data_files)


def test_one_decode_at_a_time_and_the_second_visitor_is_told_they_wait(tmp_path):
    import threading

    lab = make_lab(tmp_path, on_space=True)
    z = _zip_of_pngs(tmp_path / "mine.zip")
    spec = ep.data_spec(lab, "upload", [str(z)], "", 16, 3)
    lab.data_lock.acquire()  # another visitor's decode is under way
    got = []
    t = threading.Thread(target=lambda: got.append(lab.data(spec, "B")))
    t.start()
    time.sleep(0.5)
    assert not got and lab.warnings == ["Waiting: another visitor's data is being read; yours is next."]
    lab.data_lock.release()
    t.join(60)
    assert got and got[0].report.n_ok == 12


def test_a_decode_that_needs_too_much_memory_ends_its_child_not_the_server(tmp_path):
    """Whatever slips past the header checks meets the child's memory cap: a clear message, and the
    server carries on. An .npz of float64 images needs 4 bytes per pixel more while converting."""
    from gan.data import Limits

    lots = Limits(max_total_bytes=1 << 30)
    for field in ("max_data_bytes",):  # the budget must not refuse it first (the test is of the cap)
        if hasattr(lots, field):
            lots = type(lots)(**{**vars(lots), field: 1 << 33})
    lab = make_lab(tmp_path, on_space=True, isolate_data=True, worker_mem_mb=40, data_limits=lots)
    path = tmp_path / "floats.npz"
    np.savez(path, images=np.random.default_rng(0).random((400, 3, 64, 64)))  # 39 MB of float64
    spec = ep.DataSpec("folder", 64, 3, (str(path),))
    with pytest.raises(gan.DataError, match=r"needed more memory than one upload may use here \(40 MB\)"):
        lab.data(spec, "A")
    z = _zip_of_pngs(tmp_path / "ok.zip")
    assert lab.data(ep.data_spec(lab, "upload", [str(z)], "", 16, 3), "A").report.n_ok == 12  # still serving


# ---- the training child: a pipe cut midway, SIGKILL of its parent, SIGTERM of the server ------------


def test_a_message_cut_short_is_the_end_of_the_stream():
    buf = io.BytesIO()
    write_message(buf, {"step": 3})
    whole = buf.getvalue()
    assert read_message(io.BytesIO(whole)) == {"step": 3}
    for cut in (3, 8, len(whole) - 1):
        with pytest.raises(EOFError):
            read_message(io.BytesIO(whole[:cut]))
    with pytest.raises(EOFError):
        read_message(io.BytesIO(whole[:8] + b"garbage!" * 10))


def _child_pids(parent: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"gan.worker" in cmd:
                out.append(int(p.name))
    return out


def _gone(pid: int, timeout: float) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped
            return True
        time.sleep(0.1)
    return False


def test_the_training_child_ends_with_a_checkpoint_when_its_parent_is_killed(tmp_path):
    data = tmp_path / "data.safetensors"
    from gan.datafile import save_images

    save_images(gan.load_images("synthetic", 16, 3, n_synthetic=64), data)
    cfgs = gan.recipes.get_recipe("cpu").configs(image_size=16, steps=1_000_000, g_width=8, d_width=8, threads=1)
    req = TrainRequest(*cfgs, str(data), str(tmp_path / "run"), threads=1)
    script = (
        "import pickle, sys, time\n"
        "from gan.worker import Worker\n"
        "w = Worker(pickle.loads(sys.stdin.buffer.read()))\n"
        "print(w.proc.pid, flush=True)\n"
        "for ev in w.messages():\n"
        "    print(type(ev).__name__, getattr(ev, 'step', ''), flush=True)\n"
    )
    import pickle

    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              cwd=ROOT, text=False)  # fmt: skip
    parent.stdin.write(pickle.dumps(req))
    parent.stdin.close()
    child = int(parent.stdout.readline())
    steps = []
    while not steps or steps[-1] < 3:
        line = parent.stdout.readline().decode().split()
        assert line, "the parent ended early"
        if line[0] == "StepLog":
            steps.append(int(line[1]))
    parent.kill()  # SIGKILL: no handler runs; the child's stdin closes
    parent.wait(10)
    assert _gone(child, 60), "the training child outlived its killed parent"
    assert checkpoint_info(tmp_path / "run" / CKPT_NAME)["step"] >= steps[-1]
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_to_the_server_ends_the_child_with_a_checkpoint_at_its_current_step(tmp_path):
    from gradio_client import Client

    port = _free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "GAN_TRAIN_THREADS": "1", "GAN_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(scratch)}
    server = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--runs", str(tmp_path / "runs"), "--weights",
         str(tmp_path / "weights")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        t0 = time.time()
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                assert server.poll() is None and time.time() - t0 < 120, "the app did not start"
                time.sleep(0.5)
        assert client.predict(**TINY_TRAIN, steps=1_000_000, api_name="/train").startswith("Started `")
        while (state := client.predict(since=0, api_name="/progress")[0])["step"] < 20:
            assert time.time() - t0 < 180, state
            time.sleep(0.2)
        (child,) = _child_pids(server.pid)
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        assert _gone(child, 10)
        run = tmp_path / "runs" / state["run"]
        step = checkpoint_info(run / CKPT_NAME)["step"]
        meta = json.loads((run / META_NAME).read_text())
        assert step >= state["step"] and meta["status"] == "stopped" and meta["step"] == step
        assert (run / "model" / "model.safetensors").is_file()
        assert not list(scratch.glob("gan-lab-*")), "the app's scratch folder outlived it"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)


def test_a_full_line_is_said_before_anything_is_decoded(tmp_path, monkeypatch):
    lab = make_lab(tmp_path, on_space=True, max_queue=1)
    ep.train(lab, **TINY_TRAIN, steps=10_000, session="A")
    ep.train(lab, **TINY_TRAIN, steps=5, session="B")
    decoded = []
    monkeypatch.setattr(lab, "data", lambda *a, **k: decoded.append(a))
    with pytest.raises(Busy, match="The line is full"):
        ep.train(lab, **TINY_TRAIN, steps=5, session="C")
    assert decoded == []
    lab.runner.shutdown()


def test_listings_and_headers_are_checked_before_a_decode_child_starts(tmp_path, monkeypatch):
    """A refusal from a zip listing or an .npy header costs no child process (each imports torch)."""
    import gan.worker

    def no_child(*a, **k):
        raise AssertionError("a decode child was started")

    monkeypatch.setattr(gan.worker, "decode_in_child", no_child)
    lab = make_lab(tmp_path, on_space=True, isolate_data=True)
    path = tmp_path / "big.npz"
    np.savez(path, images=np.zeros((3000, 3, 8, 8), np.uint8))  # stored, not compressed: passes the ratio check
    spec = ep.data_spec(lab, "upload", [str(path)], "", 256, 3)  # 3,000 x 3 x 256² = 590 MB: over 512 MB
    with pytest.raises(gan.DataError, match=r"3,000 images at 256x256 \(3 channels\) need 589,824,000 bytes"):
        lab.data(spec, "A")


def test_the_wait_estimate_uses_the_runs_mean_speed():
    from gan.ui.jobs import Job

    job = Job("r", Path("."), steps=1000, batch_size=32, data_summary="", data=None, spec=None, status="running")
    job.start_step, job.step, job.started = 100, 300, time.time() - 100  # 200 steps in 100 s
    job.img_per_s = 32 * 10  # the last few steps ran at 10 steps a second
    assert 345 < job.eta_s() < 351  # 700 steps at 2 a second, not 70 s


def test_resume_offers_and_suggests_only_what_the_server_allows(tmp_path):
    from gan.ui.train_live import suggest_total

    lab = make_lab(tmp_path, on_space=True)  # a Space: 20,000 steps at most
    for name, step in (("at-limit", 20_000), ("short", 15_000)):
        d = _fake_run(tmp_path / "runs", name, 0.0)
        meta = json.loads((d / META_NAME).read_text())
        meta.update(step=step, train_config={"steps": step})
        (d / META_NAME).write_text(json.dumps(meta))
        (d / CKPT_NAME).write_bytes(b"")
    assert [name for _, name in lab.runner.resumable()] == ["short"]  # a finished run at the limit: not offered
    assert suggest_total(lab, "short", 0) == 20_000  # twice its steps would be 30,000: over the limit
    assert suggest_total(lab, "short", 18_000) == 18_000
