"""The Gradio app, launched for real on 127.0.0.1 and driven through gradio_client.

One app for the module (a tiny 16-px model in a temporary weights folder, talking to a Hub-API
server on 127.0.0.1), plus a second one with no models at all. Training runs use a tiny model on
the built-in shapes and take a few seconds.
"""

from __future__ import annotations

import io
import os
import socket
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan

from hubserver import HubServer

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
    gan.save_model(contrasty_generator(), root / "weights" / "tiny")
    with HubServer(tokens={TOKEN: "alice"}) as hub, hub.patch_client(root / "hf_home"):  # the app's Hub
        demo, client = launch(root / "weights", root / "runs")
        yield demo, client, root, hub
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
    # its sliders are the first principal directions of the Explore tab
    assert (
        Path(moved).read_bytes() == Path(client.predict(model="tiny", seed=5, a1=2.0, api_name="/explore")).read_bytes()
    )


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
    assert state["metric_every"] == 10_000  # a cheap SWD every tenth of the run
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
        assert state["status"] == "idle" and grid is None and state["metrics"] == []
    finally:
        demo.close()


# ---- the Explore tab ----------------------------------------------------------------------------


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((a.astype(float) - b.astype(float)) / 255) ** 2)))


def test_explore_zero_is_the_seed_and_sliders_move_it(client):
    seed7 = client.predict(model="tiny", seed=7, n=1, truncation=1.0, api_name="/sample")
    zero = client.predict(model="tiny", seed=7, api_name="/explore")
    assert Path(zero).read_bytes() == Path(seed7).read_bytes()
    d1 = pixels(client.predict(model="tiny", seed=7, a1=2.0, api_name="/explore"))
    d3 = pixels(client.predict(model="tiny", seed=7, a3=-2.0, api_name="/explore"))
    assert d1.shape == (16, 16, 3)
    assert not np.array_equal(d1, pixels(zero)) and not np.array_equal(d3, pixels(zero))
    assert not np.array_equal(d1, d3)  # each slider has its own direction
    with pytest.raises(AppError, match="greater than maximum"):  # the slider's range: ±4 σ
        client.predict(model="tiny", seed=7, a2=50.0, api_name="/explore")


def test_plane_corners_are_their_seeds(client):
    corners = dict(seed_tl=3, seed_tr=4, seed_bl=5, seed_br=6)
    for (u, v), s in {(0, 0): 3, (1, 0): 4, (0, 1): 5, (1, 1): 6}.items():
        own = client.predict(model="tiny", seed=s, n=1, truncation=1.0, api_name="/sample")
        at = client.predict(model="tiny", **corners, u=u, v=v, api_name="/plane")
        assert np.array_equal(pixels(at), pixels(own)), (u, v)
    mid = pixels(client.predict(model="tiny", **corners, u=0.5, v=0.5, api_name="/plane"))
    assert mid.shape == (16, 16, 3) and not np.array_equal(mid, pixels(at))
    lin = pixels(client.predict(model="tiny", **corners, u=0.5, v=0.5, mode="bilinear", api_name="/plane"))
    assert not np.array_equal(mid, lin)  # bilinear shrinks |z| in the middle, slerp does not


def test_invert_finds_a_generated_image(client, tmp_path):
    a = client.predict(model="tiny", seed=21, n=1, truncation=1.0, api_name="/sample")
    b = client.predict(model="tiny", seed=22, n=1, truncation=1.0, api_name="/sample")
    t0 = time.time()
    tgt_a, rec_a, err_a, tgt_b, rec_b, err_b, gif = client.predict(
        model="tiny", photo_a=handle_file(a), photo_b=handle_file(b), steps=40, frames=6, api_name="/invert"
    )
    took = time.time() - t0
    assert Image.open(rec_a).size == Image.open(rec_b).size == (16, 16)
    assert np.array_equal(pixels(tgt_a), pixels(a))  # a 16-px photo is its own target
    apart = rms(pixels(a), pixels(b))  # how far two seeds' images are
    assert err_a < 0.06 and err_b < 0.06 and err_a < apart / 3, (err_a, err_b, apart)
    assert abs(rms(pixels(rec_a), pixels(a)) - err_a) < 1e-3  # the error is the RMS shown
    im = Image.open(gif)
    assert im.n_frames == 6 + 4 and im.size == (256, 256)  # there and back, upscaled x16
    # a photo of another size and shape is centre-cropped and resized; one photo makes no walk
    big = tmp_path / "photo.png"
    Image.fromarray(np.kron(pixels(a), np.ones((3, 5, 1), np.uint8))).save(big)  # 48 x 80
    tgt, rec, err, tgt_b, rec_b, err_b, gif = client.predict(
        model="tiny", photo_a=handle_file(str(big)), steps=10, api_name="/invert"
    )
    assert Image.open(tgt).size == Image.open(rec).size == (16, 16) and err < 0.5
    assert tgt_b is None and rec_b is None and gif is None
    with pytest.raises(AppError, match="Upload a photo"):
        client.predict(model="tiny", photo_a=None, api_name="/invert")
    assert took < 20, f"inverting two 16-px photos in 40 steps took {took:.1f} s"


def test_arithmetic_gives_four_images(client):
    out = client.predict(model="tiny", seeds_a="1, 2, 3", seeds_b="4-6", seeds_c="7 8", api_name="/arithmetic")
    assert [x["caption"] for x in out] == ["mean of A (3)", "mean of B (3)", "mean of C (2)", "A − B + C"]
    assert all(Image.open(x["image"]).size == (16, 16) for x in out)
    # one seed per group: 5 - 5 + 9 is seed 9 itself
    out = client.predict(model="tiny", seeds_a="5", seeds_b="5", seeds_c="9", api_name="/arithmetic")
    nine = client.predict(model="tiny", seed=9, n=1, truncation=1.0, api_name="/sample")
    assert np.array_equal(pixels(out[3]["image"]), pixels(nine))
    with pytest.raises(AppError, match="Seeds B: 'x' is not a seed"):
        client.predict(model="tiny", seeds_a="1", seeds_b="2, x", seeds_c="3", api_name="/arithmetic")
    with pytest.raises(AppError, match="Seeds C: give one or more seeds"):
        client.predict(model="tiny", seeds_a="1", seeds_b="2", seeds_c=" ", api_name="/arithmetic")


# ---- the Hub panel ---------------------------------------------------------------------------------


def test_push_then_load_back_without_leaking_the_token(lab, capfd):
    demo, client, root, hub = lab
    msg = client.predict(model="tiny", repo_id="alice/tiny-gan", token=TOKEN, private=False, api_name="/hub_push")
    assert msg.startswith("Pushed **tiny** to") and f"]({hub.repo_url('alice/tiny-gan')})" in msg
    assert {"config.json", "model.safetensors", "README.md"} <= set(hub.files("alice/tiny-gan"))
    loaded = client.predict(repo_id=" alice/tiny-gan ", api_name="/hub_load")
    assert loaded.startswith("Loaded **alice/tiny-gan** at commit")
    mine = client.predict(model="tiny", seed=3, n=4, truncation=1.0, api_name="/sample")
    theirs = client.predict(model="alice/tiny-gan", seed=3, n=4, truncation=1.0, api_name="/sample")
    assert Path(mine).read_bytes() == Path(theirs).read_bytes()
    bad = "hf_not_alices_token_42"
    with pytest.raises(AppError, match=r"refused the token \(401") as e1:
        client.predict(model="tiny", repo_id="alice/tiny-gan", token=bad, api_name="/hub_push")
    with pytest.raises(AppError, match="needs a Hugging Face token") as e2:  # no token, no HF_TOKEN
        client.predict(model="tiny", repo_id="alice/tiny-gan", token="", api_name="/hub_push")
    with pytest.raises(AppError, match="not a valid Hub repo id") as e3:
        client.predict(model="tiny", repo_id="alice", token=TOKEN, api_name="/hub_push")
    out, err = capfd.readouterr()
    for text in (msg, loaded, str(e1.value), str(e2.value), str(e3.value), out, err):
        assert TOKEN not in text and bad not in text


def test_hub_load_says_what_is_wrong(lab):
    demo, client, root, hub = lab
    hub.add_files("bob/pickles", {"pytorch_model.bin": b"\x80\x02"})
    hub.add_files("bob/notes", {"README.md": "just notes"})
    hub.add_files("bob/secret", {"config.json": "{}", "model.safetensors": b"x"}, private=True)
    for repo_id, why in [
        ("not a repo id", "not a valid Hub repo id"),
        ("alice/missing", "was not found on the Hub"),
        ("bob/secret", "was not found on the Hub .if it is private"),  # private looks like missing
        ("bob/pickles", "only pickle weights"),
        ("bob/notes", "not a GAN Lab model"),
    ]:
        with pytest.raises(AppError, match=why):
            client.predict(repo_id=repo_id, api_name="/hub_load")


# ---- training metrics --------------------------------------------------------------------------------


def test_metric_every_is_automatic():
    assert [app.auto_metric_every(s) for s in (20, 299, 300, 1500, 5000)] == [0, 0, 100, 150, 500]


def test_job_records_metrics_for_the_plot_and_the_api(tmp_path):
    job = app.Job("run", tmp_path, 300, 16, "", None, None, metric_every=100)
    for step, v in ((100, 40.0), (200, 25.5)):
        app.Trainer._apply(job, gan.Metric(step, "swd", v))
    snap = job.snapshot()
    assert snap["metric_every"] == 100 and snap["metrics"] == [{"step": 100, "swd": 40.0}, {"step": 200, "swd": 25.5}]
    assert job.snapshot(since=100)["metrics"] == [{"step": 200, "swd": 25.5}]
    assert app.metric_frame(snap["metrics"]).to_dict("list") == {"step": [100, 200], "swd": [40.0, 25.5]}
    assert app.metric_frame([]) is None
    job.status = "running"
    assert "SWD 25.5" in app.status_line(job, job.snapshot())


def test_space_limits(monkeypatch, tmp_path):
    """Limits a public Space needs: step budget, upload size, old run folders pruned."""
    monkeypatch.delenv("GAN_MAX_STEPS", raising=False)
    assert app.max_steps(on_space=True) == 20_000 and app.max_steps(on_space=False) == 1_000_000
    monkeypatch.setenv("GAN_MAX_STEPS", "300")
    assert app.max_steps(on_space=True) == 300
    monkeypatch.setenv("GAN_MAX_UPLOAD_MB", "50")
    assert app.max_upload() == "50mb"
    trainer = app.Trainer(tmp_path, None)
    for i in range(5):
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "app_run.json").write_text("{}")
        t = time.time() - 100 + i
        os.utime(d, (t, t))
    (tmp_path / "not-a-run").mkdir()
    gone = trainer.prune_runs(keep=3)
    assert gone == ["run0", "run1", "run2"]  # room for the next run: 2 old ones stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-run", "run3", "run4"]


def test_space_push_needs_the_visitors_token(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_owner_secret_123")
    monkeypatch.delenv("GAN_ALLOW_OWNER_PUSH", raising=False)
    weights = tmp_path / "w"
    gan.save_model(contrasty_generator(), weights / "tiny")
    demo = app.build_app(weights_dir=weights, runs_dir=tmp_path / "runs", on_space=True)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        with pytest.raises(AppError, match="paste your own write token") as e:
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
                "tiny", "alice/x", "", False, api_name="/hub_push"
            )
        assert "hf_owner_secret_123" not in str(e.value)
    finally:
        demo.close()
