"""torchrun with two CPU processes (gloo): the same command as one GPU box, on this machine."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from gan.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--image-size", "16", "--z-dim", "16", "--g-width", "8", "--d-width", "8", "--n-synthetic", "128",
        "--sample-every", "0", "--log-every", "1", "--checkpoint-every", "2", "--precision", "fp32",
        "--augment", "none", "--no-xflip", "--ema-decay", "0", "--quiet"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, cwd, nproc=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if nproc:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "gan", *args]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "gan", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def step_logs(run_dir: Path):
    events = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    return events, [e for e in events if e["event"] == "StepLog"]


def test_two_process_gloo_training_matches_single_process(tmp_path):
    r = run(["train", "--data", "synthetic", "--out", "ddp", "--steps", "6", "--batch-size", "8", *TINY],
            tmp_path, nproc=2)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "batch 8 per process x 2 = 16 global" in r.stdout
    assert r.stdout.count("finished at step 6 of 6") == 1  # only rank 0 reports
    events, logs = step_logs(tmp_path / "ddp")
    # exactly one writer: rank 0 logged each checkpoint once, the file is whole, no temp files
    assert [e["step"] for e in events if e["event"] == "Checkpoint"] == [2, 4, 6]
    assert [e["event"] for e in events].count("Started") == 1
    assert not list((tmp_path / "ddp").glob("*.tmp*"))
    meta, _ = load_checkpoint(tmp_path / "ddp")
    assert meta["step"] == 6
    assert (tmp_path / "ddp" / "model" / "model.safetensors").exists()

    r1 = run(["train", "--data", "synthetic", "--out", "one", "--steps", "6", "--batch-size", "16", *TINY], tmp_path)
    assert r1.returncode == 0, r1.stderr
    _, logs1 = step_logs(tmp_path / "one")
    assert len(logs) == len(logs1) == 6
    # Same init (same seed), same global batch of images per step, gradients averaged over both
    # ranks. They differ only by BatchNorm statistics (8 images per rank vs 16) and each rank's
    # own noise draws, so losses agree loosely: within 0.25 at every one of the first six steps
    # (the first step, before any update, within 0.1).
    for a, b in zip(logs, logs1):
        for k in ("loss_d", "loss_g"):
            assert abs(a[k]) < 100 and abs(a[k] - b[k]) < 0.25, (k, a, b)
    assert abs(logs[0]["loss_d"] - logs1[0]["loss_d"]) < 0.1

    # --resume under torchrun continues from the checkpoint
    r = run(["train", "--out", "ddp", "--resume", "--steps", "8", "--quiet"], tmp_path, nproc=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "finished at step 8 of 8" in r.stdout
    assert load_checkpoint(tmp_path / "ddp")[0]["step"] == 8
