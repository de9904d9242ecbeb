"""The app: its endpoints as plain functions on temporary folders (no server), and a few smoke
tests of the wiring through a real server on 127.0.0.1 driven by gradio_client.

The endpoint tests share one Lab over a tiny 16-px model in a temporary weights folder, talking
to a Hub-API server on 127.0.0.1. Training runs use a tiny model on the built-in shapes at fp32
and take a second or two.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan
from gan.device import available_cores, choose_precision, resolve_device
from gan.runlog import read_log

from conftest import png_zip
from hubserver import HubServer

pytest.importorskip("gradio")
from gan.ui import Settings, build_app  # noqa: E402
from gan.ui import endpoints as ep  # noqa: E402
from gan.ui.common import AppError, Busy, md_text  # noqa: E402
from gan.ui.hub_panel import token_note  # noqa: E402
from gan.ui.jobs import Job, JobRunner  # noqa: E402
from gan.ui.lab import Lab  # noqa: E402
from gan.ui.train_view import metric_frame, metric_title, status_line  # noqa: E402

# gradio 6.31's queue calls pandas APIs that pandas 3 deprecates; not ours to fix
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

TINY = gan.ModelConfig(image_size=16, z_dim=16, g_width=8, d_width=8)
TINY_TRAIN = dict(
    source="synthetic", image_size=16, channels=3, g_width=8, d_width=8, z_dim=16, batch_size=16, precision="fp32"
)
TOKEN = "hf_apptest_5d1c7e0b9a"  # alice's write token on the test Hub


def contrasty_generator() -> gan.Generator:
    """A tiny untrained G whose images differ visibly from seed to seed (an untrained DCGAN draws flat
    grey: its weights start at N(0, 0.02)), so edits, blends and inversion have something to show."""
    G = gan.Generator(TINY)
    with torch.no_grad():
        for m in G.net:
            if isinstance(m, torch.nn.ConvTranspose2d):
                m.weight.mul_(10)
    return G


def make_lab(root: Path, **settings) -> Lab:
    """A Lab on `root`; its training thread runs one torch thread (tiny models: as fast, and the
    tests do not oversubscribe a busy machine; test_training_thread_uses_every_core checks the default)."""
    warnings: list[str] = []
    settings = Settings(weights_dir=root / "weights", runs_dir=root / "runs", **{"train_threads": 1, **settings})
    lab = Lab(settings, warn=warnings.append)
    lab.warnings = warnings
    return lab


@pytest.fixture(scope="module")
def hub_lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    gan.save_model(contrasty_generator(), root / "weights" / "tiny")
    with HubServer(tokens={TOKEN: "alice"}) as hub, hub.patch_client(root / "hf_home"):  # the app's Hub
        lab = make_lab(root)
        yield lab, hub
        lab.runner.shutdown()


@pytest.fixture(scope="module")
def lab(hub_lab):
    return hub_lab[0]


def wait_for(lab: Lab, cond, timeout: float = 60.0) -> dict:
    """Poll the progress endpoint until cond(state) holds; returns the state (on a Space, as the running
    job's starter sees it: others see only that the trainer is busy)."""
    t0 = time.time()
    while True:
        job = lab.runner.job
        state, _ = ep.progress(lab, session=job.owner.session if job is not None and job.owner else None)
        if cond(state):
            return state
        assert time.time() - t0 < timeout, f"timed out waiting; last state: {state['status']} {state['step']}"
        time.sleep(0.05)


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((a.astype(float) - b.astype(float)) / 255) ** 2)))


def one(lab: Lab, seed: int) -> np.ndarray:
    return ep.sample(lab, "tiny", seed, 1, 1.0)


# ---- Sample and Interpolate ----------------------------------------------------------------------


def test_sample_size_and_same_seed_same_image(lab):
    a = ep.sample(lab, "tiny", 7, 4, 1.0)
    c = ep.sample(lab, "tiny", 8, 4, 1.0)
    b = ep.sample(lab, "tiny", 7, 4, 1.0)
    lab.last_sample = (None, None, None)  # rendered afresh, not the reused render
    assert np.array_equal(a, b) and np.array_equal(a, ep.sample(lab, "tiny", 7, 4, 1.0))
    assert a.shape == (2 * (16 + 2) + 2,) * 2 + (3,)  # a 2x2 grid of 16-px images, 2-px padding
    assert not np.array_equal(a, c)
    assert one(lab, 7).shape == (16, 16, 3)  # a single image comes bare, without a grid border
    assert np.array_equal(a[2:18, 2:18], one(lab, 7))  # the grid's first cell is seed 7


def test_interpolate_ends_are_the_seeds_images(lab):
    assert np.array_equal(ep.interpolate(lab, "tiny", 5, 9, 0.0), one(lab, 5))
    assert np.array_equal(ep.interpolate(lab, "tiny", 5, 9, 1.0), one(lab, 9))
    mid = ep.interpolate(lab, "tiny", 5, 9, 0.5)
    assert not np.array_equal(mid, one(lab, 5)) and not np.array_equal(mid, one(lab, 9))
    moved = ep.interpolate(lab, "tiny", 5, 9, 0.0, d1=2.0)
    assert not np.array_equal(moved, one(lab, 5))  # a latent slider moves the image
    assert np.array_equal(moved, ep.explore(lab, "tiny", 5, a1=2.0))  # the Explore tab's first direction
    lerp_mid = ep.interpolate(lab, "tiny", 5, 9, 0.5, mode="lerp")
    G = lab.models.get("tiny")
    za, zb = gan.latents([5, 9], 16)
    expect = gan.sampling.generate(G, (za + (zb - za) * 0.5)[None])[0]  # lerp: a + (b - a) t
    assert np.array_equal(lerp_mid, expect.permute(1, 2, 0).numpy())


def test_walk_renders_gif_and_mp4(lab):
    gif, mp4, files = ep.walk(lab, "tiny", 1, 2, frames=6)
    im = Image.open(gif)
    assert im.format == "GIF" and im.n_frames == 6 and im.size == (256, 256)  # 16 px upscaled x16
    assert Path(mp4).stat().st_size > 0 and files == [gif, mp4]
    first = np.asarray(im.convert("RGB").resize((16, 16), Image.Resampling.NEAREST))
    assert np.array_equal(first, one(lab, 1))  # the walk starts on seed A
    im.seek(3)  # eased there and back over 6 frames: frame 3 is seed B
    assert np.array_equal(np.asarray(im.convert("RGB").resize((16, 16), Image.Resampling.NEAREST)), one(lab, 2))
    gif, _, _ = ep.walk(lab, "tiny", 1, 2, frames=5, loop=False)
    assert Image.open(gif).n_frames == 5


def test_friendly_errors_say_exactly_what_is_wrong(lab):
    with pytest.raises(AppError) as e:
        ep.sample(lab, "nope", 0, 4, 1.0)
    assert str(e.value) == "Unknown model 'nope'. Available: tiny."
    with pytest.raises(AppError) as e:
        ep.sample(lab, "tiny", -1, 4, 1.0)
    assert str(e.value) == "seed=-1 is out of range; allowed 0..4294967292"
    with pytest.raises(AppError) as e:
        ep.sample(lab, "tiny", 0, 2.5, 1.0)
    assert str(e.value) == "n must be a whole number, got 2.5"
    with pytest.raises(AppError) as e:
        ep.interpolate(lab, "tiny", 1, 2, 0.5, mode="cubic")
    assert str(e.value) == "mode must be 'slerp' or 'lerp', got 'cubic'"
    with pytest.raises(AppError) as e:
        ep.resume(lab, "../etc", 10)
    assert str(e.value) == "Pick a run to resume (runs with a checkpoint are listed next to Resume)."
    with pytest.raises(AppError) as e:
        ep.resume(lab, "never-ran", 10)
    assert str(e.value) == "Run 'never-ran' has no checkpoint to resume from."


def test_no_model_says_so_and_points_to_train(tmp_path):
    lab = make_lab(tmp_path)
    for call in (lambda: ep.sample(lab, None, 0, 4, 1.0), lambda: ep.interpolate(lab, None, 0, 1, 0.5)):
        with pytest.raises(AppError) as e:
            call()
        assert str(e.value) == (
            "No model yet. Train one in the Train tab: the default run on the built-in shapes shows its first "
            "shapes after about 1,500 steps, a few minutes on a 2-core CPU. It appears in the model picker when "
            "it ends (or when you stop it)."
        )
    state, grid = ep.progress(lab)
    assert state["status"] == "idle" and grid is None and state["metrics"] == []


def test_replaced_model_folders_are_not_models(tmp_path):
    """save_model over an existing folder keeps the old one for a minute as a hidden .old folder (for
    readers inside it); the picker lists only the models, never those (nor a half-written .tmpdir)."""
    gan.save_model(gan.Generator(TINY), tmp_path / "weights" / "tiny")
    gan.save_model(gan.Generator(TINY), tmp_path / "weights" / "tiny")  # replaced: .tiny.<id>.<time>.old stays
    gan.save_model(gan.Generator(TINY), tmp_path / "runs" / "r1" / "model")
    gan.save_model(gan.Generator(TINY), tmp_path / "runs" / ".r2.abc.tmpdir" / "model")
    assert any(p.name.startswith(".tiny.") for p in (tmp_path / "weights").iterdir())
    lab = make_lab(tmp_path)
    assert lab.models.shipped() == ["tiny"]
    assert lab.models.trained() == ["r1"]


def test_model_info_line_names_the_architecture(tmp_path):
    gan.save_model(gan.Generator(TINY), tmp_path / "weights" / "tiny")
    sle = gan.ModelConfig(image_size=32, z_dim=8, g_width=4, d_width=4, g_sle=True)
    gan.save_model(gan.Generator(sle), tmp_path / "weights" / "gated")
    lab = make_lab(tmp_path)
    assert lab.models.info("tiny") == "16×16 RGB · z 16 · widths G 8 / D 8"
    assert lab.models.info("gated") == "32×32 RGB · z 8 · widths G 4 / D 4 · skip-layer excitation"


# ---- Explore ---------------------------------------------------------------------------------------


def test_explore_zero_is_the_seed_and_sliders_move_it(lab):
    zero = ep.explore(lab, "tiny", 7)
    assert np.array_equal(zero, one(lab, 7))
    d1, d3 = ep.explore(lab, "tiny", 7, a1=2.0), ep.explore(lab, "tiny", 7, a3=-2.0)
    assert d1.shape == (16, 16, 3)
    assert not np.array_equal(d1, zero) and not np.array_equal(d3, zero)
    assert not np.array_equal(d1, d3)  # each slider has its own direction
    with pytest.raises(AppError) as e:
        ep.explore(lab, "tiny", 7, a2=50.0)
    assert str(e.value) == "a2=50 is out of range: direction amounts are in σ, within ±4"


def test_plane_corners_are_their_seeds(lab):
    corners = (3, 4, 5, 6)
    for (u, v), s in {(0, 0): 3, (1, 0): 4, (0, 1): 5, (1, 1): 6}.items():
        assert np.array_equal(ep.plane(lab, "tiny", *corners, u=u, v=v), one(lab, s)), (u, v)
    mid = ep.plane(lab, "tiny", *corners, 0.5, 0.5)
    assert mid.shape == (16, 16, 3) and not np.array_equal(mid, one(lab, 6))
    lin = ep.plane(lab, "tiny", *corners, 0.5, 0.5, mode="bilinear")
    assert not np.array_equal(mid, lin)  # bilinear shrinks |z| in the middle, slerp does not
    grid = ep.plane_overview(lab, "tiny", *corners)
    assert grid.shape == (5 * 18 + 2,) * 2 + (3,)
    assert np.array_equal(grid[2:18, 2:18], one(lab, 3))  # top-left cell: the top-left seed


def test_invert_finds_a_generated_image(lab, tmp_path):
    a, b = one(lab, 21), one(lab, 22)
    seen: list[float] = []
    t0 = time.time()
    tgt_a, rec_a, err_a, tgt_b, rec_b, err_b, gif, state = ep.invert(
        lab, "tiny", Image.fromarray(a), Image.fromarray(b), steps=40, frames=6,
        progress=lambda f, desc="": seen.append(f),
    )  # fmt: skip
    took = time.time() - t0
    assert rec_a.shape == rec_b.shape == (16, 16, 3)
    assert np.array_equal(tgt_a, a)  # a 16-px photo is its own target
    apart = rms(a, b)  # how far two seeds' images are
    assert err_a < 0.06 and err_b < 0.06 and err_a < apart / 3, (err_a, err_b, apart)
    assert abs(rms(rec_a, a) - err_a) < 1e-3  # the error is the RMS shown
    assert seen == sorted(seen) and seen[-1] == 1.0  # the progress bar only moves forward, to the end
    im = Image.open(gif)
    assert im.n_frames == 6 + 4 and im.size == (256, 256)  # there and back, upscaled x16
    again = ep.walk_photos(lab, "tiny", 3, state)
    assert Image.open(again).n_frames == 3 + 1
    # a photo of another size and shape is centre-cropped and resized; one photo makes no walk
    big = Image.fromarray(np.kron(a, np.ones((3, 5, 1), np.uint8)))  # 48 x 80
    tgt, rec, err, tgt_b, rec_b, err_b, gif, state = ep.invert(lab, "tiny", big, steps=10)
    assert tgt.shape == rec.shape == (16, 16, 3) and err < 0.5
    assert tgt_b is None and rec_b is None and gif is None
    with pytest.raises(AppError) as e:
        ep.walk_photos(lab, "tiny", 6, state)
    assert str(e.value) == "Invert two photos first (Photo A and Photo B); then the walk goes between them."
    with pytest.raises(AppError) as e:
        ep.invert(lab, "tiny", None)
    assert str(e.value) == "Upload a photo first (Photo A, and Photo B for a walk between two photos)."
    assert took < 20, f"inverting two 16-px photos in 40 steps took {took:.1f} s"


def test_arithmetic_gives_four_images(lab):
    out = ep.arithmetic(lab, "tiny", "1, 2, 3", "4-6", "7 8")
    assert [cap for _, cap in out] == ["mean of A (3)", "mean of B (3)", "mean of C (2)", "A − B + C"]
    assert all(img.shape == (16, 16, 3) for img, _ in out)
    out = ep.arithmetic(lab, "tiny", "5", "5", "9")  # one seed per group: 5 - 5 + 9 is seed 9 itself
    assert np.array_equal(out[3][0], one(lab, 9))
    with pytest.raises(AppError) as e:
        ep.arithmetic(lab, "tiny", "1", "2, x", "3")
    assert str(e.value) == "Seeds B: 'x' is not a seed; use whole numbers like 1, 2, 3 or a range like 10-13"
    with pytest.raises(AppError) as e:
        ep.arithmetic(lab, "tiny", "1", "2", " ")
    assert str(e.value) == "Seeds C: give one or more seeds, e.g. 1, 2, 3 (or a range like 10-13)"


# ---- Train ---------------------------------------------------------------------------------------------


def test_training_grows_loss_table_and_grid(lab):
    msg = ep.train(lab, **TINY_TRAIN, steps=20, preview_every=10)
    assert msg.startswith("Started `") and "20 steps on 2048 images used from synthetic shapes" in msg
    lengths: list[int] = []
    state = wait_for(lab, lambda s: lengths.append(len(s["losses"])) or s["status"] == "finished", 90)
    assert lengths == sorted(lengths) and lengths[-1] == 20
    assert [r["step"] for r in state["losses"]] == list(range(1, 21))
    assert all(np.isfinite([r["loss_d"], r["loss_g"], r["d_real"], r["d_fake"]]).all() for r in state["losses"])
    assert state["precision"].startswith("fp32")
    later, grid = ep.progress(lab, since=15)
    assert [r["step"] for r in later["losses"]] == [16, 17, 18, 19, 20]  # a script can poll incrementally
    assert grid.shape == (8 * 18 + 2,) * 2 + (3,)  # 64 fixed-noise samples of 16 px
    # the log on disk is the command line's: every step, no sample grids
    events = read_log(lab.runner.job.run_dir / "log.jsonl")
    assert [e["step"] for e in events if e["event"] == "StepLog"] == list(range(1, 21))
    assert events[0]["event"] == "Started" and not any(e["event"] == "Samples" for e in events)
    # the finished model is pickable at once
    assert state["model"] == "trained:" + state["run"]
    assert ep.sample(lab, state["model"], 0, 4, 1.0).shape == (38, 38, 3)


def test_busy_stop_and_resume(lab):
    ep.train(lab, **TINY_TRAIN, steps=100_000)
    state = wait_for(lab, lambda s: s["status"] == "running" and s["step"] > 0)
    assert state["metric_every"] == 10_000  # a cheap SWD every tenth of the run
    with pytest.raises(Busy) as e:
        ep.train(lab, **TINY_TRAIN, steps=10)
    assert str(e.value).startswith(f"Busy: a training run (`{state['run']}`, step ")
    assert ep.sample(lab, "tiny", 1, 4, 1.0).shape == (38, 38, 3)  # others can still sample while it trains
    assert ep.stop(lab).startswith(f"Stopping `{state['run']}` at step ")
    state = wait_for(lab, lambda s: s["status"] == "stopped")
    run, step = state["run"], state["step"]
    assert 0 < step < 100_000 and state["model"] == "trained:" + run  # checkpoint + model folder
    assert ep.stop(lab) == "No training run is going on."
    assert (run, run) in [(label.split(" ")[0], name) for label, name in lab.runner.resumable()]
    assert ep.resume(lab, run, step + 5) == f"Resuming `{run}` from step {step} up to {step + 5}."
    state = wait_for(lab, lambda s: s["status"] == "finished")
    assert state["step"] == step + 5 and state["run"] == run
    steps = [r["step"] for r in state["losses"]]  # logged every 10th step of the 100,000, and the last
    assert steps[0] <= step < steps[-1] == step + 5  # the plot continues: history from the log, then new steps
    assert steps == sorted(set(steps))


def test_upload_zip_and_loose_files_with_a_broken_one(lab, tmp_path):
    zpath = png_zip(tmp_path / "pics.zip", [f"pics/{i}.png" for i in range(6)], extra={"pics/broken.png": b"not a png"})
    msg = ep.train(lab, **{**TINY_TRAIN, "source": "upload"}, files=[str(zpath)], steps=2)
    assert md_text("6 images used from pics.zip; 1 files skipped") in msg  # visitor text, escaped
    state = wait_for(lab, lambda s: s["status"] == "finished")
    assert state["step"] == 2
    saved = lab.runner.job.run_dir / "data.safetensors"  # the decoded uploads, for Resume
    assert saved.is_file() and not list(lab.runner.job.run_dir.glob("*.npz"))
    from gan.datafile import load_saved

    again = load_saved(saved)
    job = lab.runner.job
    assert torch.equal(again.images, job.data.images[range(len(job.data))]) and again.report.n_ok == 6
    loose = [tmp_path / "a.png", tmp_path / "b.png"]
    for i, p in enumerate(loose):
        Image.new("RGB", (16, 16), (100 * i, 0, 0)).save(p)
    spec = ep.data_spec(lab, "upload", [str(zpath), *map(str, loose)], "", 16, 3)
    data = lab.data(spec)
    assert len(data) == 8 and data.report.source == "pics.zip + 2 uploaded files"


def test_train_on_a_hub_dataset(hub_lab):
    lab, hub = hub_lab
    files = {}
    for i in range(5):
        buf = io.BytesIO()
        Image.new("RGB", (24, 24), (50 * i, 80, 120)).save(buf, format="PNG")
        files[f"train/{i}.png"] = buf.getvalue()
    hub.add_files("alice/squares", files, repo_type="dataset")
    msg = ep.train(lab, **{**TINY_TRAIN, "source": "hub"}, folder="alice/squares", steps=2)
    assert md_text("5 images used from hf://datasets/alice/squares") in msg
    state = wait_for(lab, lambda s: s["status"] == "finished")
    assert state["step"] == 2 and state["data"].startswith("5 images used from hf://datasets/alice/squares")


def test_data_sources_say_what_they_need(lab, tmp_path):
    with pytest.raises(AppError) as e:
        ep.data_spec(lab, "upload", [], "", 32, 3)
    assert str(e.value) == "Upload a zip of images or a few image files first (or pick the built-in shapes)."
    assert ep.data_spec(lab, "hub", None, "user/cats", 32, 3).paths == ("hf://datasets/user/cats",)
    space = make_lab(tmp_path, on_space=True)
    with pytest.raises(AppError) as e:
        ep.data_spec(space, "folder", None, "/etc", 32, 3)
    assert str(e.value) == "Reading folders on the server is turned off here; upload a zip of images instead."
    with pytest.raises(AppError) as e:
        ep.train(space, **TINY_TRAIN, steps=30_000)
    assert str(e.value) == "steps=30000 is out of range; allowed 1..20000"


def test_forced_bf16_warns_once_with_the_slowdown(tmp_path, monkeypatch):
    """The warning comes before the run (nothing trains here: tests never train at bf16)."""
    lab = make_lab(tmp_path)
    started = []

    def start(model_cfg, train_cfg, data, spec, run_dir, **kw):
        started.append(train_cfg.precision)
        return Job(run_dir.name, run_dir, train_cfg.steps, train_cfg.batch_size, "64 images", data, spec)

    monkeypatch.setattr(lab.runner, "start", start)
    choice = choose_precision("bf16", resolve_device("auto"))
    ep.train(lab, **{**TINY_TRAIN, "precision": "bf16"}, steps=1)
    assert lab.warnings == ([choice.warning] if choice.warning else [])
    if choice.warning:  # on this kind of CPU: the slowdown, and what to use instead
        assert "slower than fp32" in choice.warning and "use precision auto or fp32" in choice.warning
    ep.train(lab, **TINY_TRAIN, steps=1)  # fp32, and auto: nothing to warn about
    ep.train(lab, **{**TINY_TRAIN, "precision": "auto"}, steps=1)
    assert started == ["bf16", "fp32", "auto"] and len(lab.warnings) == (1 if choice.warning else 0)


def test_train_passes_the_cool_down_and_refuses_a_bad_one_by_name(tmp_path, monkeypatch):
    lab = make_lab(tmp_path)
    started = []

    def start(model_cfg, train_cfg, data, spec, run_dir, form=None, **kw):
        started.append((train_cfg.cooldown, train_cfg.cooldown_lr, form["cooldown"]))
        return Job(run_dir.name, run_dir, train_cfg.steps, train_cfg.batch_size, "64 images", data, spec)

    monkeypatch.setattr(lab.runner, "start", start)
    ep.train(lab, **TINY_TRAIN, steps=10)  # the recipe's default: off
    ep.train(lab, **TINY_TRAIN, steps=10, cooldown="0.25")  # a form or an API client may send text
    assert started == [(0.0, 0.25, 0.0), (0.25, 0.25, 0.25)]
    for bad in (0.6, -0.1, "a quarter", float("nan")):
        with pytest.raises(AppError) as e:
            ep.train(lab, **TINY_TRAIN, steps=10, cooldown=bad)
        assert str(e.value) == f"cooldown must be a fraction of the run between 0 and 0.5, got {bad!r}"
    assert len(started) == 2  # nothing started on a bad value


def test_training_thread_uses_every_core(tmp_path, monkeypatch):
    """Training uses every core, whatever the thread that started it had set (a render sets 1)."""
    seen: list[int] = []

    def fake_fit(model_cfg, train_cfg, data, *, out_dir, resume, stop):
        seen.append(torch.get_num_threads())
        yield gan.Done(step=0, reason="finished", message="", model_dir=None)

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = ep.DataSpec("synthetic", 16, 3)
        data = gan.load_images("synthetic", 16, 3, n_synthetic=64)
        cfgs = gan.recipes.get_recipe("cpu").configs(image_size=16, steps=1)
        # the app's way: a process of its own, which sets its threads itself
        job = JobRunner(tmp_path).start(*cfgs, data, spec, tmp_path / "run")
        job.thread.join(120)
        started = [e for e in read_log(job.run_dir / "log.jsonl") if e["event"] == "Started"]
        assert job.status == "finished" and started[0]["threads"] == available_cores()
        # GAN_TRAIN_THREADS=1 (a runner with threads=1): 1, not the config's default of every core
        job = JobRunner(tmp_path, threads=1).start(*cfgs, data, spec, tmp_path / "run1")
        job.thread.join(120)
        started = [e for e in read_log(job.run_dir / "log.jsonl") if e["event"] == "Started"]
        assert job.status == "finished" and started[0]["threads"] == 1
        # in the runner's thread (isolate=False): the thread sets them
        monkeypatch.setattr(gan, "fit", fake_fit)
        job = JobRunner(tmp_path, isolate=False).start(*cfgs, data, spec, tmp_path / "run2")
        job.thread.join(10)
    finally:
        torch.set_num_threads(old)
    assert seen == [available_cores()] and job.status == "finished"


def test_a_failure_in_the_training_process_fails_the_job_with_its_message(tmp_path):
    """gan.fit raising in the training process: the job fails with the error's message (the pipe
    carries it back), its folder says failed, and the runner takes the next run."""
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    runner = JobRunner(tmp_path / "runs")
    data = gan.load_images("synthetic", 16, 3, n_synthetic=64)
    cfgs = gan.recipes.get_recipe("cpu").configs(image_size=16, steps=2)
    job = runner.start(*cfgs, data, ep.DataSpec("synthetic", 16, 3), tmp_path / "runs" / "r1", resume=bad)
    job.thread.join(120)
    assert job.status == "failed" and job.message.startswith("Training failed: CheckpointError: ")
    assert json.loads((job.run_dir / "app_run.json").read_text())["status"] == "failed"
    job = runner.start(*cfgs, data, ep.DataSpec("synthetic", 16, 3), tmp_path / "runs" / "r2")
    job.thread.join(120)
    assert job.status == "finished" and job.step == 2


def test_metric_every_is_automatic():
    assert [gan.recipes.auto_metric_every(s) for s in (20, 299, 300, 1500, 5000)] == [0, 0, 100, 150, 500]


def test_job_records_metrics_and_precision_for_the_status_line(tmp_path):
    job = Job("run", tmp_path, 300, 16, "", None, None, metric_every=100)
    for step, v in ((100, 40.0), (200, 25.5)):
        job.apply(gan.Metric(step, "swd", v))
    snap = job.snapshot()
    assert snap["metric_every"] == 100 and snap["metrics"] == [{"step": 100, "swd": 40.0}, {"step": 200, "swd": 25.5}]
    assert job.snapshot(since=100)["metrics"] == [{"step": 200, "swd": 25.5}]
    assert metric_frame(snap["metrics"]).to_dict("list") == {"step": [100, 200], "swd": [40.0, 25.5]}
    assert metric_frame([]) is None and metric_frame(snap["metrics"][:1]) is None  # one point draws no line
    one = {**snap, "metrics": snap["metrics"][:1], "status": "running"}
    assert metric_title(one) == "SWD (lower is better): 40.0 at step 100; the curve starts with the next at step 200"
    assert metric_title({**one, "status": "stopped"}) == "SWD (lower is better): 40.0 at step 100"
    assert metric_title(snap) == "SWD (lower is better)"
    assert metric_title({**snap, "metrics": []}, start_step=150) == "SWD (lower is better): first SWD at step 200"
    job.status, job.precision = "running", "fp32: this CPU (AVX2) has no native bf16 kernels"
    line = status_line(job, job.snapshot())
    assert "SWD 25.5" in line and line.endswith(" · fp32: this CPU (AVX2) has no native bf16 kernels")
    assert "CPU threads" not in line  # threads unknown: nothing said
    job.apply(gan.Started(0, 300, 64, 16, 1, "cpu", "fp32", "data", threads=2))
    job.apply(gan.StepLog(210, 0, 1.2, 0.8, 0.6, 0.4, 300.0, 12.0, threads=2))
    assert "CPU threads" not in status_line(job, job.snapshot())
    job.apply(gan.StepLog(220, 0, 1.2, 0.8, 0.6, 0.4, 250.0, 13.0, threads=1))  # the governor gave a core away
    assert job.snapshot()["threads"] == [1, 2]
    assert "250 img/s (1 of 2 CPU threads: the machine is busy)" in status_line(job, job.snapshot())


def test_status_line_says_when_the_cool_down_starts_and_when_it_runs(tmp_path):
    """Step 1,000 of 20,000 at 100 img/s, batch 32, 30 minutes: the time limit's last quarter (in
    22 min 30 s) comes long before step 15,000, so the line gives the time; without a limit, or
    when the steps come first, the step; in the cool-down, the factor; without one, nothing."""

    def line(steps: int, max_minutes: float, cooldown: float, lr_factor: float = 1.0) -> str:
        job = Job("run", tmp_path, steps, 32, "", None, None, max_minutes=max_minutes, form={"cooldown": cooldown})
        job.apply(gan.Started(0, steps, 64, 32, 1, "cpu", "fp32", "data", threads=2))
        job.apply(gan.StepLog(1000, 0, 1.2, 0.8, 0.6, 0.4, 100.0, 12.0, threads=2, lr_factor=lr_factor))
        job.started = time.time()  # 30 minutes left (a fraction of a second less by the time it is read)
        return status_line(job, job.snapshot())

    by_time = line(20_000, 30, 0.25)
    assert re.search(r" · cool-down in 22 min (29|30) s, over the last 25% of its time limit", by_time), by_time
    assert " · cool-down from step 15,000" in line(20_000, 0, 0.25)  # no time limit: by its steps
    assert " · cool-down from step 4,500" in line(6_000, 30, 0.25)  # 3,500 steps to go take 19 minutes
    assert " · cooling down (learning rates ×0.25)" in line(20_000, 30, 0.25, lr_factor=0.25)
    assert "cool" not in line(20_000, 30, 0.0)  # no cool-down


def test_space_settings_and_pruning(tmp_path):
    """Limits a public Space needs: step budget, upload size, old run folders pruned, no owner token lent."""
    s = Settings.from_env({"SPACE_ID": "me/gan-lab"})
    assert (s.on_space, s.max_steps, s.max_upload, s.host) == (True, 20_000, "200mb", "0.0.0.0")
    s = Settings.from_env({})
    assert (s.on_space, s.max_steps, s.max_upload, s.host, s.port) == (False, 1_000_000, "1024mb", "127.0.0.1", 7860)
    s = Settings.from_env({"SPACE_ID": "x", "GAN_MAX_STEPS": "300", "GAN_MAX_UPLOAD_MB": "50", "GAN_KEEP_RUNS": "3",
                           "GRADIO_SERVER_PORT": "8080", "HF_TOKEN": "hf_x", "GAN_ALLOW_OWNER_PUSH": "1"})  # fmt: skip
    assert Settings.from_env({"GAN_TRAIN_THREADS": "3"}).train_threads == 3 and s.train_threads == 0
    assert (s.max_steps, s.max_upload, s.keep_runs, s.port, s.has_hf_token, s.allow_owner_push) == (
        300, "50mb", 3, 8080, True, True)  # fmt: skip
    assert "pushes **as the Space owner**" in token_note(s)
    assert "never lent to visitors" in token_note(s.replace(allow_owner_push=False))
    assert Settings.from_env({"GAN_MAX_STEPS": "lots"}).max_steps == 1_000_000  # ignored, with a warning
    runner = JobRunner(tmp_path)
    for i in range(5):
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "app_run.json").write_text("{}")
        t = time.time() - 100 + i
        os.utime(d, (t, t))
    (tmp_path / "not-a-run").mkdir()
    assert runner.prune_runs(keep=3) == ["run0", "run1", "run2"]  # room for the next run: 2 old ones stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-run", "run3", "run4"]


def test_launcher_passes_flags_and_environment(monkeypatch, tmp_path):
    """app.py: flags win over GRADIO_SERVER_NAME / _PORT; a Space's upload limit reaches launch()."""
    import app

    seen = {}

    class FakeDemo:
        lab = type("L", (), {"runner": JobRunner(tmp_path)})()

        def queue(self, **kw):
            seen["queue"] = kw

        def launch(self, **kw):
            seen["launch"] = kw

    monkeypatch.setattr(app, "build_app", lambda settings: seen.setdefault("settings", settings) and FakeDemo())
    monkeypatch.setenv("SPACE_ID", "me/gan-lab")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9999")
    assert app.main(["--port", "8123", "--weights", str(tmp_path / "w"), "--runs", str(tmp_path / "r")]) == 0
    s = seen["settings"]
    assert (s.host, s.port, s.weights_dir, s.runs_dir, s.on_space) == ("0.0.0.0", 8123, tmp_path / "w", tmp_path / "r",
                                                                       True)  # fmt: skip
    assert {k: seen["launch"][k] for k in ("server_name", "server_port", "max_file_size")} == {
        "server_name": "0.0.0.0", "server_port": 8123, "max_file_size": "200mb"}  # fmt: skip
    assert seen["queue"] == {"default_concurrency_limit": 1}
    monkeypatch.delenv("SPACE_ID")
    seen.clear()
    app.main(["--host", "127.0.0.2"])
    assert (seen["settings"].host, seen["settings"].port) == ("127.0.0.2", 9999)


# ---- the Hub panel -----------------------------------------------------------------------------------


def test_push_then_load_back_without_leaking_the_token(hub_lab, capfd):
    lab, hub = hub_lab
    msg = ep.hub_push(lab, "tiny", "alice/tiny-gan", token=TOKEN, private=False)
    assert msg == f"Pushed **tiny** to [{hub.repo_url('alice/tiny-gan')}]({hub.repo_url('alice/tiny-gan')}) (public)."
    assert {"config.json", "model.safetensors", "README.md"} <= set(hub.files("alice/tiny-gan"))
    loaded = ep.hub_load(lab, " alice/tiny-gan ")
    assert loaded.startswith("Loaded **alice/tiny-gan** at commit")
    assert ("alice/tiny-gan (Hub)", "alice/tiny-gan") in lab.models.choices()
    assert np.array_equal(ep.sample(lab, "tiny", 3, 4, 1.0), ep.sample(lab, "alice/tiny-gan", 3, 4, 1.0))
    bad = "hf_not_alices_token_42"
    errors = []
    for args, why in [
        (("alice/tiny-gan", bad), r"Not pushed: .*refused the token \(401"),
        (("alice/tiny-gan", ""), "Not pushed: .*needs a Hugging Face token"),  # no token, no HF_TOKEN
        (("alice", TOKEN), "Not pushed: .*not a valid Hub repo id"),
    ]:
        with pytest.raises(AppError, match=why) as e:
            ep.hub_push(lab, "tiny", *args)
        errors.append(str(e.value))
    out, err = capfd.readouterr()
    for text in (msg, loaded, *errors, out, err):
        assert TOKEN not in text and bad not in text


def test_space_push_needs_the_visitors_token(tmp_path):
    gan.save_model(contrasty_generator(), tmp_path / "weights" / "tiny")
    lab = make_lab(tmp_path, on_space=True, has_hf_token=True)
    with pytest.raises(AppError) as e:
        ep.hub_push(lab, "tiny", "alice/x", "")
    assert str(e.value) == (
        "Not pushed: paste your own write token: on this Space an empty box does not push with the owner's "
        "HF_TOKEN (the owner can allow that with GAN_ALLOW_OWNER_PUSH=1)"
    )


def test_hub_load_says_what_is_wrong(hub_lab):
    lab, hub = hub_lab
    hub.add_files("bob/pickles", {"pytorch_model.bin": b"\x80\x02"})
    hub.add_files("bob/notes", {"README.md": "just notes"})
    hub.add_files("bob/secret", {"config.json": "{}", "model.safetensors": b"x"}, private=True)
    for repo_id, why in [
        ("not a repo id", "Not loaded: .*not a valid Hub repo id"),
        ("alice/missing", "Not loaded: .*was not found on the Hub"),
        ("bob/secret", "Not loaded: .*was not found on the Hub .if it is private"),  # private looks like missing
        ("bob/pickles", "Not loaded: .*only pickle weights"),
        ("bob/notes", "Not loaded: .*not a GAN Lab model"),
    ]:
        with pytest.raises(AppError, match=why):
            ep.hub_load(lab, repo_id)


# ---- the package without the app ----------------------------------------------------------------------


def test_import_gan_never_loads_gradio():
    code = "import gan, gan.train, gan.sampling, gan.runlog, gan.recipes, sys; assert 'gradio' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_only_gan_ui_imports_gradio():
    root = Path(gan.__file__).parent
    for f in root.rglob("*.py"):
        if f.parent.name == "ui":
            continue
        text = f.read_text()
        assert "import gradio" not in text and "from gradio" not in text, f
        assert "gan.ui" not in text and "from .ui" not in text and "from . import ui" not in text, f


# ---- the wiring: a real server, driven by gradio_client -------------------------------------------------

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError as ClientError  # noqa: E402

API = {  # the README's API table: endpoint -> its keyword parameters, in order
    "/sample": ["model", "seed", "n", "truncation"],
    "/interpolate": ["model", "seed_a", "seed_b", "t", "mode", "truncation", "d1", "d2", "d3", "d4", "d5"],
    "/walk": [
        "model",
        "seed_a",
        "seed_b",
        "frames",
        "mode",
        "truncation",
        "fps",
        "loop",
        "d1",
        "d2",
        "d3",
        "d4",
        "d5",
    ],  # fmt: skip
    "/explore": ["model", "seed", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "truncation"],
    "/plane": ["model", "seed_tl", "seed_tr", "seed_bl", "seed_br", "u", "v", "mode", "truncation"],
    "/invert": ["model", "photo_a", "photo_b", "steps", "frames"],
    "/arithmetic": ["model", "seeds_a", "seeds_b", "seeds_c", "truncation"],
    "/hub_load": ["repo_id"],
    "/hub_push": ["model", "repo_id", "token", "private"],
    "/train": [
        "source",
        "files",
        "folder",
        "image_size",
        "channels",
        "steps",
        "batch_size",
        "lr",
        "loss",
        "augment",
        "ema",
        "precision",
        "g_width",
        "d_width",
        "z_dim",
        "xflip",
        "seed",
        "preview_every",
        "max_minutes",
        "cooldown",
    ],  # fmt: skip
    "/progress": ["since"],
    "/stop": ["key"],  # key: optional (issue 15), the run key a starting page keeps
    "/resume": ["run", "steps", "key"],
    "/share": ["shared", "key"],  # issue 32: the starter lets others watch the run live
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    gan.save_model(contrasty_generator(), root / "weights" / "tiny")
    demo = build_app(Settings(weights_dir=root / "weights", runs_dir=root / "runs", train_threads=1))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    yield demo, Client(f"http://127.0.0.1:{port}/", verbose=False)
    demo.lab.runner.shutdown()
    demo.close()


def test_the_queue_does_not_rebuild_its_analytics_table_after_every_event(served):
    """Gradio's default rebuilds a pandas table of 10,000 events after each event (15 % of the
    server's CPU under 20 clients, benchmarks/load.py): build_app turns that down."""
    q = served[0]._queue
    assert q.ANAYLTICS_CACHE_FREQUENCY >= 1000 and q.ANALYTICS_MAX_EVENTS <= 2000


def test_api_names_and_parameters_are_the_readmes(served):
    demo, client = served
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {name: [p["parameter_name"] for p in api[name]["parameters"]] for name in API} == API
    train = {p["parameter_name"]: p["parameter_default"] for p in api["/train"]["parameters"]}
    assert train["precision"] == "auto" and train["source"] == "synthetic" and train["steps"] == 1500
    assert set(api) == set(API)  # nothing else is public


def test_served_sample_explore_and_errors(served):
    demo, client = served
    a = client.predict(model="tiny", seed=7, n=4, truncation=1.0, api_name="/sample")
    assert np.array_equal(np.asarray(Image.open(a)), ep.sample(demo.lab, "tiny", 7, 4, 1.0))
    e = client.predict(model="tiny", seed=7, a1=2.0, api_name="/explore")
    assert np.array_equal(np.asarray(Image.open(e)), ep.explore(demo.lab, "tiny", 7, a1=2.0))
    with pytest.raises(ClientError, match=r"^Unknown model 'nope'\. Available: tiny\.$"):
        client.predict(model="nope", seed=0, n=4, truncation=1.0, api_name="/sample")
    with pytest.raises(ClientError, match=r"^seed=-5 is out of range; allowed 0\.\.4294967280$"):  # one message
        client.predict(model="tiny", seed=-5, n=16, truncation=1.0, api_name="/sample")
    with pytest.raises(ClientError, match=r"^a2=50 is out of range: direction amounts are in σ, within ±4$"):
        client.predict(model="tiny", seed=7, a2=50.0, api_name="/explore")


def test_served_invert_with_uploaded_photos(served, tmp_path):
    demo, client = served
    p = tmp_path / "a.png"
    Image.fromarray(ep.sample(demo.lab, "tiny", 21, 1, 1.0)).save(p)
    tgt, rec, err, tgt_b, rec_b, err_b, gif = client.predict(
        model="tiny", photo_a=handle_file(str(p)), steps=20, api_name="/invert"
    )
    assert Image.open(rec).size == (16, 16) and 0 <= err < 0.2 and gif is None


def test_served_train_progress_stop(served):
    demo, client = served
    msg = client.predict(**TINY_TRAIN, steps=100_000, api_name="/train")
    assert msg.startswith("Started `")
    t0 = time.time()
    while True:
        state, grid = client.predict(since=0, api_name="/progress")
        if state["step"] >= 3:
            break
        assert time.time() - t0 < 60, state
        time.sleep(0.1)
    assert client.predict(api_name="/stop").startswith("Stopping `")
    while state["status"] != "stopped":
        assert time.time() - t0 < 90, state
        state, grid = client.predict(since=0, api_name="/progress")
    assert state["model"] == "trained:" + state["run"]
