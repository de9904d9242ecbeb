"""The app on a public Space: the run belongs to who started it, Hub reads never borrow the owner's
token, bounded downloads and caches (issue 15). Endpoints as plain functions, as in test_app.py,
whose helpers this file uses.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

import gan

from hubserver import HubServer

pytest.importorskip("gradio")
from test_app import TINY, TINY_TRAIN, TOKEN, contrasty_generator, make_lab, pytestmark, wait_for  # noqa: E402, F401

from gan.ui import Settings, build_app  # noqa: E402
from gan.ui import endpoints as ep  # noqa: E402
from gan.ui.common import AppError  # noqa: E402
from gan.ui.jobs import JobRunner  # noqa: E402

# ---- a public Space: the run belongs to who started it; Hub reads never borrow the owner's token (issue 15) ----


def test_only_the_starter_may_stop_or_resume_on_a_space(tmp_path):
    from gan.ui.ownership import NotOwner

    lab = make_lab(tmp_path, on_space=True, max_minutes=30)
    msg = ep.train(lab, **TINY_TRAIN, steps=10_000, session="A")  # a Space allows 20,000
    assert "(at most 30 minutes on this server)" in msg and lab.runner.job.max_minutes == 30
    key = lab.runner.claim_key("A")
    assert key and lab.runner.claim_key("A") is None  # handed to the starting page once
    assert key not in (tmp_path / "runs" / lab.runner.job.name / "app_run.json").read_text()  # only its hash
    state = wait_for(lab, lambda s: s["status"] == "running" and s["step"] > 0)
    for session, k in (("B", None), ("B", ""), ("B", "not-the-key"), (None, None)):
        with pytest.raises(NotOwner) as e:
            ep.stop(lab, key=k, session=session)
        assert str(e.value).startswith("This run was started by another visitor; only they can stop or resume it.")
        assert re.search(r"It ends at step 10,000 or after 30 minutes \(in (29|30) min \d\d s\)\.$", str(e.value))
    assert lab.runner.job.alive and not lab.runner.job.stop.is_set()
    assert ep.stop(lab, key=key, session="A-after-a-reload").startswith(f"Stopping `{state['run']}`")
    state = wait_for(lab, lambda s: s["status"] == "stopped")
    run, step = state["run"], state["step"]
    assert lab.runner.resumable("B", None, shared=True) == []  # another visitor is not offered the run
    assert [name for _, name in lab.runner.resumable("C", key, shared=True)] == [run]
    with pytest.raises(NotOwner):
        ep.resume(lab, run, step + 5000, session="B")
    assert ep.resume(lab, run, step + 5000, key=key, session="C").startswith(f"Resuming `{run}` from step {step}")
    assert lab.runner.claim_key("C") is None  # the resumed run keeps its key: the page has it already
    wait_for(lab, lambda s: s["status"] == "running")
    with pytest.raises(NotOwner):
        ep.stop(lab, session="B")
    ep.stop(lab, session="C")  # the resuming session (an API client keeps its session)
    wait_for(lab, lambda s: s["status"] == "stopped")
    lab.runner.owners.clear()  # after an app restart: the key's hash in app_run.json still rules
    with pytest.raises(NotOwner):
        ep.resume(lab, run, step + 6000, session="B")
    assert lab.runner.may_control(run, None, key, shared=True)
    assert "Last run (before this app started)" in JobRunner(tmp_path / "runs").last_run()


def test_the_browser_state_secret_outlives_a_restart(tmp_path):
    """The page keeps its run key encrypted with this secret: after an app restart (a new process,
    same runs folder) it must be the same, or the starter could no longer resume their run."""
    from gan.ui.ownership import SECRET_NAME, browser_secret

    first = browser_secret(tmp_path / "runs")
    assert browser_secret(tmp_path / "runs") == first and len(first) >= 32
    assert (tmp_path / "runs" / SECRET_NAME).stat().st_mode & 0o777 == 0o600
    assert browser_secret(tmp_path / "other") != first
    (tmp_path / "runs" / SECRET_NAME).write_text("")  # cut short by a crash: replaced, not used
    assert len(browser_secret(tmp_path / "runs")) >= 32
    demo = build_app(Settings(weights_dir=tmp_path / "weights", runs_dir=tmp_path / "runs"))
    import gradio as gr

    states = [b for b in demo.blocks.values() if isinstance(b, gr.BrowserState)]
    assert [b.secret for b in states] == [browser_secret(tmp_path / "runs")]
    demo.lab.runner.shutdown()


def test_anyone_may_stop_a_local_run(tmp_path):
    lab = make_lab(tmp_path)
    ep.train(lab, **TINY_TRAIN, steps=100_000, max_minutes=0, session="A")
    assert lab.runner.job.max_minutes == 0  # no time limit locally (GAN_MAX_MINUTES unset)
    wait_for(lab, lambda s: s["status"] == "running")
    assert ep.stop(lab, session="B").startswith("Stopping `")
    wait_for(lab, lambda s: s["status"] == "stopped")


def test_space_settings_for_strangers():
    s = Settings.from_env({"SPACE_ID": "me/gan-lab"})
    assert (s.max_minutes, s.max_model_mb, s.hub_cache_mb, s.hub_token) == (30, 50, 500, False)
    s = Settings.from_env({"SPACE_ID": "x", "GAN_ALLOW_OWNER_READ": "1", "GAN_MAX_MINUTES": "5",
                           "GAN_MAX_MODEL_MB": "2", "GAN_HUB_CACHE_MB": "0"})  # fmt: skip
    assert (s.max_minutes, s.max_model_bytes, s.hub_cache_bytes, s.hub_token) == (5, 2_000_000, None, None)
    s = Settings.from_env({})
    assert (s.max_minutes, s.max_model_bytes, s.hub_cache_bytes, s.hub_token) == (0, None, None, None)
    assert Settings.from_env({"GAN_MAX_MINUTES": "-3"}).max_minutes == 0  # ignored, with a warning


def test_space_hub_reads_are_anonymous_and_bounded(tmp_path):
    from gan.ui.hub_panel import check_choice

    gan.save_model(contrasty_generator(), tmp_path / "weights" / "tiny")
    with HubServer(tokens={TOKEN: "alice"}) as hub, hub.patch_client(tmp_path / "hf_home", token=TOKEN):
        gan.push_to_hub(contrasty_generator(), "alice/private-gan", token=TOKEN, private=True)
        png = io.BytesIO()
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(png, "PNG")
        hub.add_files("alice/private-faces", {"0.png": png.getvalue()}, repo_type="dataset", private=True)
        space = make_lab(tmp_path, on_space=True, has_hf_token=True)  # HF_TOKEN is the owner's secret
        with pytest.raises(AppError, match="Not loaded: .*alice/private-gan was not found on the Hub"):
            ep.hub_load(space, "alice/private-gan")
        problem, panel = check_choice(space, "alice/private-gan")  # typed into the model picker
        assert problem == panel and "was not found on the Hub" in problem
        with pytest.raises(gan.ModelLoadError, match="not found"):
            ep.sample(space, "alice/private-gan", 0, 1, 1.0)
        with pytest.raises(gan.HubError, match="dataset repo alice/private-faces was not found"):
            ep.train(space, **{**TINY_TRAIN, "source": "hub"}, folder="alice/private-faces", steps=5)
        assert check_choice(space, "nobody/nothing")[0].startswith("**Not loaded** `nobody/nothing`:")
        assert check_choice(space, "tiny") == (None, None)  # a shipped model: nothing to check
        # the owner's opt-in lends HF_TOKEN to reads
        lent = make_lab(tmp_path, on_space=True, has_hf_token=True, allow_owner_read=True)
        assert ep.hub_load(lent, "alice/private-gan").startswith("Loaded **alice/private-gan**")
        # model.safetensors larger than its config implies, or than GAN_MAX_MODEL_MB: refused before its bytes
        big = gan.ModelConfig(image_size=32, z_dim=64, g_width=64, d_width=8)
        gan.push_to_hub(gan.Generator(big), "alice/big", token=TOKEN)
        bound = gan.Generator.safetensors_bound(TINY)
        hub.add_files("bob/fat", {"config.json": TINY.to_json(), "model.safetensors": b"\0" * (bound + 1)})
        hub.requests.clear()
        with pytest.raises(AppError, match=r"Not loaded: Hub repo alice/big: model.safetensors is [\d.]+ MB .*the "
                           r"limit here is 1.0 MB \(1,000,000 bytes\) \(GAN_MAX_MODEL_MB\)"):  # fmt: skip
            ep.hub_load(make_lab(tmp_path, on_space=True, max_model_mb=1), "alice/big")
        with pytest.raises(AppError, match="implies at most .*; not downloading it"):
            ep.hub_load(space, "bob/fat")
        fetched = [p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p]
        assert not [p for p in fetched if p.endswith("model.safetensors")], fetched
        assert ep.hub_load(space, "alice/big").startswith("Loaded **alice/big**")  # within the Space's 50 MB


def test_loaded_models_are_bounded_in_memory_and_on_disk(tmp_path):
    with HubServer(tokens={TOKEN: "alice"}) as hub, hub.patch_client(tmp_path / "hf_home"):
        for i in range(3):
            gan.push_to_hub(contrasty_generator(), f"alice/m{i}", token=TOKEN)
        lab = make_lab(tmp_path, hub_cache_mb=0)
        one = sum(f.stat().st_size for f in lab.models.get("alice/m0").folder.iterdir())
        lab.models.cache_size = 2
        lab.models.hub_cache_bytes = int(2.5 * one)  # room for two models on disk
        lab.models.get("alice/m1")
        lab.models.get("alice/m2")
        assert [k[0] for k in lab.models.cache] == ["alice/m1", "alice/m2"]  # the least recently used went
        cached = sorted(p.name for p in (tmp_path / "hf_home" / "hub").iterdir() if p.name.startswith("models--"))
        assert cached == ["models--alice--m1", "models--alice--m2"]  # ... from the disk cache too
        lab.models.cache_bytes = 1  # bytes bound: only the newest model stays
        lab.models.get("alice/m0")
        assert [k[0] for k in lab.models.cache] == ["alice/m0"]
