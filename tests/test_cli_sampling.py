"""Sampling determinism, model folders, and the command line end to end."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan import (
    Generator,
    ModelLoadError,
    interpolation_frames,
    latents,
    load_model,
    make_grid,
    sample,
    save_gif,
    save_model,
    slerp,
)
from gan.sampling import generate, path_latents, seed_walk_frames, walk_latents

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return Generator(TINY).eval()


def test_same_seed_same_image(G):
    a, b = sample(G, [7, 8, 9]), sample(G, [7, 8, 9])
    assert a.dtype == torch.uint8 and a.shape == (3, 3, 16, 16)
    assert torch.equal(a, b)
    assert torch.equal(latents([8], 16)[0], latents([7, 8], 16)[1])  # a seed's z ignores its neighbours
    assert not torch.equal(a[0], a[1])


def test_truncation_and_interpolation(G):
    z = latents([1], 16)
    assert torch.allclose(latents([1], 16, truncation=0.5), z * 0.5)
    a, b = latents([1, 2], 16)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    assert abs(mid.norm() - (a.norm() + b.norm()) / 2) < 0.2 * a.norm()  # stays on the shell
    frames = interpolation_frames(G, 1, 2, n_frames=5)
    assert frames.shape == (5, 3, 16, 16)
    assert torch.equal(frames[0], sample(G, [1])[0]) and torch.equal(frames[-1], sample(G, [2])[0])


def test_grid_and_gif(G, tmp_path):
    grid = make_grid(sample(G, range(5)), nrow=3, padding=2)
    assert grid.shape == (2 * 18 + 2, 3 * 18 + 2, 3)
    p = save_gif(interpolation_frames(G, 0, 1, 4), tmp_path / "w.gif", scale=2)
    im = Image.open(p)
    assert im.n_frames == 4 and im.size == (32, 32)


def test_save_load_round_trip(G, tmp_path):
    save_model(G, tmp_path / "m")
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "samples.png"} <= files
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["g_width"] == 8 and cfg["image_size"] == 16
    card = (tmp_path / "m" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: gan-lab") and "pipeline_tag: unconditional-image-generation" in card
    G2 = load_model(tmp_path / "m")
    assert torch.equal(sample(G, range(6)), sample(G2, range(6)))
    assert all(p.dtype == torch.float32 for p in G2.parameters())


def test_load_refuses_pickle_and_bad_configs(G, tmp_path):
    d = tmp_path / "pickle_only"
    d.mkdir()
    torch.save(G.state_dict(), d / "pytorch_model.bin")
    (d / "config.json").write_text(json.dumps(TINY.to_dict()))
    with pytest.raises(ModelLoadError, match="only pickle weights .*arbitrary code"):
        load_model(d)
    save_model(G, tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({**TINY.to_dict(), "image_size": 4096}))
    with pytest.raises(ModelLoadError, match="image_size=4096 is out of range"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({**TINY.to_dict(), "g_width": 16}))
    with pytest.raises(ModelLoadError, match="does not match config.json"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("[1, 2")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="not a valid Hub repo id"):
        load_model("bad id/with space!")


def test_lerp_walk(G):
    frames = interpolation_frames(G, 3, 4, n_frames=5, mode="lerp")
    assert frames.shape == (5, 3, 16, 16) and torch.equal(frames[0], sample(G, [3])[0])
    za, zb = latents([3, 4], G.z_dim)
    assert torch.equal(frames[2], generate(G, (za + (zb - za) * 0.5)[None])[0])  # the middle: the formula's
    assert torch.equal(frames[1], generate(G, (za + (zb - za) * 0.25)[None])[0])


def test_walks_there_and_back_and_through_seeds(G):
    za, zb, zc = latents([3, 4, 5], G.z_dim)
    back = walk_latents(za, zb, 6, "slerp", loop=True)  # eased: t = 0, .25, .75, 1, .75, .25
    assert torch.equal(back[0], za) and torch.equal(back[3], zb) and torch.allclose(back[1], back[5])
    assert torch.allclose(back[1], slerp(za, zb, 0.25), atol=1e-6) and torch.allclose(back[2], back[4])
    path = path_latents(torch.stack([za, zb, zc]), 5, "lerp")  # 5 frames over two legs: a, ab, b, bc, c
    assert torch.equal(path[0], za) and torch.equal(path[2], zb) and torch.equal(path[4], zc)
    assert torch.allclose(path[3], (zb + zc) / 2)
    frames = seed_walk_frames(G, [3, 4, 5], 5, "lerp")
    assert torch.equal(frames, generate(G, path))
