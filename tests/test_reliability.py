"""Crash safety and hostile input at the package level (the app's side is in test_app.py)."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from gan import ConfigError, DataError, Limits, ModelConfig, load_images
from gan.train import CKPT_NAME, load_checkpoint

from conftest import png_bytes

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--image-size", "16", "--z-dim", "16", "--g-width", "8", "--d-width", "8", "--n-synthetic", "128",
        "--batch-size", "16", "--sample-every", "0", "--log-every", "1", "--quiet"]  # fmt: skip


def gan_cmd(*args):
    return [sys.executable, "-m", "gan", *args]


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def read_log(run: Path):
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]


def test_sigkill_mid_run_then_resume_continues_exactly(tmp_path):
    run = tmp_path / "run"
    p = subprocess.Popen(
        gan_cmd("train", "--data", "synthetic", "--out", str(run), "--steps", "100000", "--checkpoint-every", "20",
                *TINY),
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        if (run / "log.jsonl").exists():
            log = read_log(run)
            ck = [e["step"] for e in log if e["event"] == "Checkpoint"]
            last = max([e["step"] for e in log if e["event"] == "StepLog"], default=0)
            if ck and ck[-1] >= 20 and ck[-1] + 3 <= last <= ck[-1] + 15:  # mid-way between checkpoints
                break
        time.sleep(0.02)
    else:
        p.kill()
        pytest.fail("no checkpoint within 120 s: " + p.stderr.read().decode()[-2000:])
    os.kill(p.pid, signal.SIGKILL)  # no chance to clean up
    p.wait()
    killed_log = read_log(run)

    # the checkpoint under its final name is whole (written to a temporary name, then renamed)
    meta, tensors = load_checkpoint(run / CKPT_NAME)
    saved = meta["step"]
    assert saved >= 20 and saved % 20 == 0 and tensors
    before = {e["step"]: e for e in killed_log if e["event"] == "StepLog"}
    assert max(before) >= saved  # the run got past its last checkpoint before it died

    r = subprocess.run(gan_cmd("train", "--out", str(run), "--resume", "--steps", str(saved + 4), "--quiet"),
                       env=env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert not list(run.glob(CKPT_NAME + ".tmp*")), "stale temporary files are cleaned up"
    log = read_log(run)
    starts = [i for i, e in enumerate(log) if e["event"] == "Started"]
    resumed = [e for e in log[starts[-1] :] if e["event"] == "StepLog"]
    assert log[starts[-1]]["step"] == saved and [e["step"] for e in resumed] == list(range(saved + 1, saved + 5))
    for e in resumed:  # the killed run logged these steps too: the resumed run repeats them exactly
        if e["step"] in before:
            for k in ("loss_d", "loss_g", "d_real", "d_fake"):
                assert e[k] == before[e["step"]][k], (e["step"], k)
    assert any(e["step"] in before for e in resumed)


def test_ten_thousand_tiny_files_and_limits(tmp_path):
    z = tmp_path / "many.zip"
    one = png_bytes(size=(4, 4))
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as f:
        for i in range(10_000):
            f.writestr(f"d/{i}.png", one)
    d = load_images(z, 16, 1)
    assert d.report.n_ok == 10_000 and d.images.shape == (10_000, 1, 16, 16)
    with pytest.raises(DataError, match="10,000 files; the limit is 5,000"):
        load_images(z, 16, 1, limits=Limits(max_files=5_000))


def test_limits_from_environment(monkeypatch):
    monkeypatch.setenv("GAN_MAX_IMAGES", "7")
    assert Limits.from_env().max_images == 7
    monkeypatch.setenv("GAN_MAX_FILES", "lots")
    with pytest.raises(DataError, match="GAN_MAX_FILES must be an integer"):
        Limits.from_env()


def test_absurd_model_sizes_rejected_before_allocation():
    with pytest.raises(ConfigError, match=r"731M parameters .* limit is 150M"):
        ModelConfig(image_size=256, g_width=512)


def test_nothing_written_outside_the_run_folder(tmp_path):
    """A zip with escaping names trains from memory; nothing appears beside the run folder."""
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("../../escaped.png", png_bytes())
        f.writestr("/tmp/abs_escaped.png", png_bytes())
        for i in range(3):
            f.writestr(f"ok{i}.png", png_bytes(color=(i * 50, 0, 0)))
    before = set(tmp_path.iterdir())
    r = subprocess.run(gan_cmd("train", "--data", str(z), "--out", str(tmp_path / "run"), "--steps", "2", *TINY),
                       env=env(), capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "3 images used" in r.stdout and "skipped 2: unsafe path in zip" in r.stdout
    assert set(tmp_path.iterdir()) - before == {tmp_path / "run"}
    assert not Path("/tmp/abs_escaped.png").exists() and not (tmp_path.parent.parent / "escaped.png").exists()
