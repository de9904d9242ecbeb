"""torchrun with two CPU processes (gloo): the same command as one GPU box, on this machine."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gan.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--image-size", "16", "--z-dim", "16", "--g-width", "8", "--d-width", "8", "--n-synthetic", "128",
        "--sample-every", "0", "--log-every", "1", "--checkpoint-every", "2", "--precision", "fp32",
        "--augment", "none", "--no-xflip", "--ema-decay", "0", "--quiet"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, cwd, nproc=None, script=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    target = [script] if script else ["-m", "gan"]
    if nproc:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *target, *args]  # fmt: skip
    else:
        cmd = [sys.executable, *target, *args]
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


WORKER = str(ROOT / "tests" / "ddp_worker.py")


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """One torchrun launch (fit, then the exact run at 4 images per rank) and the single-process
    reference at 8 images."""
    out = tmp_path_factory.mktemp("ddp")
    r = run(["both", str(out), "4"], out, nproc=2, script=WORKER)
    assert r.returncode == 0, r.stdout + r.stderr
    r1 = run(["exact", str(out), "8"], out, script=WORKER)
    assert r1.returncode == 0, r1.stdout + r1.stderr
    return out


def test_every_rank_ends_with_the_same_weights(ddp_runs):
    """fit under DDP: gradients are all-reduced, so G, D and the EMA parameters are bit-identical on
    every rank (with DDP turned into a no-op, each rank drifts on its own data and noise)."""
    h0, h1 = (json.loads((ddp_runs / f"rank{i}.json").read_text()) for i in (0, 1))
    assert h0 == h1, (h0, h1)


def test_two_ranks_equal_one_process_with_the_global_batch(ddp_runs):
    """No BatchNorm, fp32, SGD: two ranks of 4 images each take exactly the steps one process takes
    on the 8 images (DDP averages the ranks' gradients), up to float summation order."""
    one = load_file(ddp_runs / "exact_w1_rank0.safetensors")
    ranks = [load_file(ddp_runs / f"exact_w2_rank{i}.safetensors") for i in (0, 1)]
    for k, v in one.items():
        for w in ranks:
            assert torch.allclose(w[k], v, atol=2e-6, rtol=1e-5), (k, (w[k] - v).abs().max())
