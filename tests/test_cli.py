"""The command line, called in-process through gan.__main__.main(argv)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from gan.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--image-size", "16", "--g-width", "8", "--d-width", "8", "--z-dim", "16", "--batch-size", "16"]


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse: --help, bad choices
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rc, out, err = cli("train", "--data", "synthetic", "--out", d / "run", "--steps", 4, "--sample-every", 2,
                       "--n-synthetic", 64, "--quiet", "--precision", "fp32", *TINY)  # fmt: skip
    assert rc == 0, err
    return d, out


def test_train_resume_and_refuse(run):
    d, out = run
    assert "64 images used" in out and (d / "run/samples/step_0000002.png").exists()
    assert "precision fp32: asked for" in out
    log = [json.loads(x) for x in (d / "run/log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "Started" and log[-1]["event"] == "Done"
    assert log[0]["precision"] == "fp32" and log[0]["threads"] >= 1
    rc, out, err = cli("train", "--out", d / "run", "--resume", "--steps", 6, "--quiet")
    assert rc == 0 and "finished at step 6 of 6" in out, err
    rc, out, err = cli("train", "--out", d / "run", "--steps", 6, "--quiet")
    assert rc == 2 and "already holds a run" in err
    rc, out, err = cli("train", "--out", d / "run", "--resume", "--recipe", "cpu")
    assert rc == 2 and "a resumed run keeps its own settings" in err


def test_auto_precision_is_reported(tmp_path):
    from gan.device import choose_precision

    rc, out, err = cli("train", "--out", tmp_path / "r", "--steps", 1, "--quiet", "--n-synthetic", 16, *TINY)
    assert rc == 0, err
    assert f"precision {choose_precision('auto', 'cpu').reason}" in out


def test_recipe_sets_fields_and_flags_override(tmp_path):
    rc, out, err = cli("train", "--out", tmp_path / "r", "--recipe", "cpu", "--steps", 2, "--quiet",
                       "--n-synthetic", 16, "--image-size", 16, "--g-width", 8, "--batch-size", 8)  # fmt: skip
    assert rc == 0, err
    meta = json.loads((tmp_path / "r/model/config.json").read_text())
    assert meta["g_width"] == 8 and meta["d_width"] == 32  # flag over recipe; recipe over config default
    train = json.loads((tmp_path / "r/model/training.json").read_text())["train_config"]
    assert train["batch_size"] == 8 and train["augment"] == "diffaugment" and train["extra"]["recipe"] == "cpu"


def test_sample_and_walk(run):
    d, _ = run
    model = d / "run/model"
    rc, out, err = cli("sample", "--model", model, "--seed", 3, "--n", 4, "--out", d / "grid.png")
    assert rc == 0, err
    assert Image.open(d / "grid.png").size == (2 * 18 + 2, 2 * 18 + 2)
    rc, out, err = cli("sample", "--model", model, "--seed", 3, "--n", 2, "--out", d / "each")
    assert sorted(p.name for p in (d / "each").iterdir()) == ["seed000003.png", "seed000004.png"]
    # --frames counts the frames of the whole walk, however many seeds
    rc, out, err = cli("interpolate", "--model", model, "--seeds", 1, 2, 3, "--frames", 7, "--out", d / "walk.gif")
    assert rc == 0, err
    gif = Image.open(d / "walk.gif")
    assert gif.n_frames == 7 and gif.size == (32, 32) and "7 frames" in out


def test_walk_passes_through_every_seed(run):
    """Frames 0, 3 and 6 of a 7-frame walk through 3 seeds are exactly those seeds' images."""
    import torch

    from gan import load_model, sample
    from gan.sampling import seed_walk_frames

    d, _ = run
    G = load_model(d / "run/model")
    frames = seed_walk_frames(G, [1, 2, 3], 7)
    for i, seed in ((0, 1), (3, 2), (6, 3)):
        assert torch.equal(frames[i], sample(G, [seed])[0])
    rc, out, err = cli("interpolate", "--model", d / "run/model", "--seeds", 1, 2, "--frames", 6, "--loop",
                       "--out", d / "loop.gif")  # fmt: skip
    assert rc == 0 and "6 frames" in out, err


@pytest.mark.parametrize(
    "args, message",
    [
        (("sample", "--seed", 4294967290, "--n", 8, "--out", "g.png"), "every seed must be in 0..4294967295"),
        (("sample", "--seed", 0, "--out", "g.jpg"), "a grid is written as .png"),
        (("interpolate", "--seeds", 1, 2, "--out", "w.txt"), "written as .gif or .mp4"),
        (("interpolate", "--seeds", 1, -5, "--out", "w.gif"), "seed -5 is out of range"),
        (("interpolate", "--seeds", 1, 2, 3, "--frames", 2, "--out", "w.gif"), "--frames must be in 3..1024"),
    ],
)
def test_output_and_seed_errors(run, args, message):
    d, _ = run
    cmd, *rest = args
    rest = [d / a if isinstance(a, str) and a.endswith((".png", ".jpg", ".txt", ".gif")) else a for a in rest]
    rc, out, err = cli(cmd, "--model", d / "run/model", *rest)
    assert rc == 2 and message in err, err
    assert not (d / "w.txt").exists() and not (d / "g.jpg").exists()


def test_export_onnx(run):
    import numpy as np
    import onnxruntime as ort
    import torch

    from gan import latents, load_model

    d, _ = run
    rc, out, err = cli("export", "--model", d / "run/model", "--onnx", d / "g.onnx")
    assert rc == 0, err
    G = load_model(d / "run/model")
    z = latents(range(3), G.z_dim)
    (img,) = ort.InferenceSession(str(d / "g.onnx")).run(None, {"z": z.numpy()})
    with torch.no_grad():
        assert np.abs(img - G(z).numpy()).max() < 1e-3
    rc, out, err = cli("export", "--model", d / "run/model", "--onnx", d / "g.txt")
    assert rc == 2 and "must end in .onnx" in err


def test_eval_writes_nothing_unless_asked(run):
    d, _ = run
    model = d / "run/model"
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    rc, out, err = cli("eval", "--model", model, "--data", "synthetic", "--n", 4096)
    assert rc == 0, err
    assert "n=4096 was asked for, but synthetic holds 2048 usable images: compared 2048" in out
    assert "nothing written" in out
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    rc, out, err = cli("eval", "--model", model, "--data", "synthetic", "--n", 64, "--write")
    assert rc == 0 and "wrote" in out and (model / "metrics.json").exists()


def test_help_names_each_default_once():
    rc, out, _ = cli("train", "--help")
    assert rc == 0
    for flag in ("--image-size", "--lr-g", "--ema-decay", "--augment", "--precision", "--resume", "--recipe"):
        assert flag in out
    assert "(default: 64)" in out and "(default: 0.0002)" in out and "(default: auto)" in out
    assert "(default: None)" not in out


def test_errors_are_one_line(tmp_path):
    for args, message in (
        (("train", "--out", tmp_path / "x", "--image-size", 100), "image_size=100 must be a power of two"),
        (("train", "--out", tmp_path / "x", "--steps", -1), "steps=-1 is out of range"),
        (("train", "--out", tmp_path / "x", "--data", tmp_path / "nowhere.zip"), "does not exist"),
        (("sample", "--model", tmp_path / "nowhere", "--out", tmp_path / "g.png"), "not a Hub repo id"),
    ):
        rc, out, err = cli(*args)
        assert rc == 2 and message in err and "Traceback" not in err, (args, err)


def test_module_entry_point(tmp_path):
    """`python -m gan` itself (the one subprocess of this file)."""
    r = subprocess.run([sys.executable, "-m", "gan", "sample", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "--truncation" in r.stdout
