"""Latent exploration: directions, their cache, edits, the seed plane, arithmetic, inversion."""

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from torch import nn

import gan.latent as L
from gan import Discriminator, Generator, latents, load_model, sample, save_model
from gan.sampling import generate

from conftest import TINY

N = 256  # PCA samples: plenty for z_dim 16


@pytest.fixture(scope="module")
def G():
    """A tiny untrained G whose images differ from seed to seed.

    Fresh BatchNorm running stats (0, 1) leave eval-mode activations tiny, so every z draws
    nearly the same grey square; calibrate the stats on one batch and widen the last layer.
    """
    torch.manual_seed(0)
    G = Generator(TINY)
    for m in G.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one batch sets the stats
    G.train()
    with torch.no_grad():
        G(torch.randn(512, TINY.z_dim, generator=torch.Generator().manual_seed(1)))
        G.net[-2].weight.mul_(10)
    G.eval()
    assert sample(G, range(16)).float().std(0).mean() > 20  # images really differ
    return G


@pytest.fixture(scope="module")
def dirs(G):
    return L.principal_directions(G, k=6, n_samples=N)


def test_directions_orthonormal_deterministic(G, dirs):
    v = dirs.vectors
    assert v.shape == (6, TINY.z_dim) and len(dirs) == 6
    torch.testing.assert_close(v @ v.T, torch.eye(6), atol=1e-5, rtol=0)
    assert (v.gather(1, v.abs().argmax(1, keepdim=True)) > 0).all()  # sign convention
    again = L.principal_directions(G, k=6, n_samples=N)
    assert torch.equal(v, again.vectors) and torch.equal(dirs.std, again.std)
    assert not torch.allclose(v, L.principal_directions(G, k=6, n_samples=N, seed=1).vectors)
    assert ((dirs.std > 0.8) & (dirs.std < 1.2)).all()  # one σ ≈ one unit of z for z ~ N(0, I)
    assert (dirs.explained[:-1] >= dirs.explained[1:]).all() and dirs.explained.sum() <= 1
    deeper = L.principal_directions(G, k=3, n_samples=N, layer=1)
    torch.testing.assert_close(deeper.vectors @ deeper.vectors.T, torch.eye(3), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="layer"):
        L.principal_directions(G, layer=2)
    with pytest.raises(ValueError, match="k must"):
        L.principal_directions(G, k=TINY.z_dim + 1)


def _snapshot(folder):
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}


def test_directions_cache(G, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = save_model(G, tmp_path / "m")
    G2 = load_model(folder)  # G2.folder is the model folder
    before = _snapshot(folder)
    computed = []
    real = L.principal_directions
    monkeypatch.setattr(L, "principal_directions", lambda *a, **kw: computed.append(1) or real(*a, **kw))

    first = L.load_or_compute_directions(G2, k=4, n_samples=N)
    path = L.directions_cache_path(G2, 4, n_samples=N)
    assert path.is_file() and path.parent == tmp_path / "cache" / "directions" and len(computed) == 1
    assert path.name.startswith(L.weights_hash(G2))
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["json"])
    assert meta["k"] == 4 and meta["n_samples"] == N and meta["layer"] == 0 and meta["seed"] == 0
    assert meta["weights"] == L.weights_hash(G2) == L.weights_hash(G)

    again = L.load_or_compute_directions(G2, k=4, n_samples=N)
    assert len(computed) == 1  # read from the cache
    assert torch.equal(first.vectors, again.vectors) and torch.equal(first.std, again.std)
    assert torch.equal(first.vectors, L.principal_directions(G2, k=4, n_samples=N).vectors)
    computed.clear()

    L.load_or_compute_directions(G2, k=3, n_samples=N)  # other arguments: recomputed
    assert len(computed) == 1
    with torch.no_grad():
        G2.net[0].weight.add_(0.05)  # other weights: another cache entry
    fresh = L.load_or_compute_directions(G2, k=3, n_samples=N)
    assert len(computed) == 2
    assert torch.equal(fresh.vectors, L.load_or_compute_directions(G2, k=3, n_samples=N).vectors)
    assert len(computed) == 2
    assert len(list(path.parent.iterdir())) == 3

    stale = L.directions_cache_path(G2, 3, n_samples=N)
    stale.write_bytes(b"not a safetensors file")  # corrupt: recomputed and rewritten
    L.load_or_compute_directions(G2, k=3, n_samples=N)
    assert len(computed) == 3 and L._read_directions(stale) is not None
    assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]

    G3 = copy.deepcopy(G)  # no folder: the same cache
    L.load_or_compute_directions(G3, k=4, n_samples=N)
    assert len(computed) == 3
    assert _snapshot(folder) == before, "nothing was written into the model folder"


def test_shipped_directions_are_read_not_rewritten(G, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = save_model(G, tmp_path / "m")
    G2 = load_model(folder)
    L.save_directions(L.principal_directions(G2, k=3, n_samples=N), folder / L.DIRECTIONS_FILE)  # "shipped"
    before = _snapshot(folder)
    monkeypatch.setattr(L, "principal_directions", lambda *a, **kw: pytest.fail("recomputed"))
    dirs = L.load_or_compute_directions(G2, k=3, n_samples=N)
    assert dirs.vectors.shape == (3, TINY.z_dim)
    assert not (tmp_path / "cache" / "directions").exists() or not list((tmp_path / "cache" / "directions").iterdir())
    with torch.no_grad():
        G2.net[0].weight.add_(0.05)  # the shipped file no longer matches: computed into the cache
    monkeypatch.undo()
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    L.load_or_compute_directions(G2, k=3, n_samples=N)
    assert L.directions_cache_path(G2, 3, n_samples=N).is_file()
    assert _snapshot(folder) == before, "the shipped file was neither rewritten nor joined by another"


def test_edit(G, dirs):
    z = latents([3, 4], TINY.z_dim)
    for zz in (z, z[0]):
        out = L.edit(zz, dirs, [0.0] * 6)
        assert torch.equal(out, zz) and out is not zz
    moved = L.edit(z, dirs, [2.0, 0, 0, 0, 0, -1.0])
    along = (moved - z) @ dirs.vectors.T  # (2, k)
    torch.testing.assert_close(along, (torch.tensor([2.0, 0, 0, 0, 0, -1.0]) * dirs.std).expand(2, -1))
    assert not torch.equal(generate(G, moved), generate(G, z))
    raw = L.edit(z[0], dirs.vectors, torch.tensor([0, 1.0, 0, 0, 0, 0]))  # raw tensor: one unit = length 1
    torch.testing.assert_close(raw, z[0] + dirs.vectors[1])
    with pytest.raises(ValueError, match="6 values"):
        L.edit(z, dirs, [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        L.edit(z, dirs, [float("nan")] * 6)


def test_direction_strips(G, dirs):
    strip = L.direction_strip(G, 7, dirs.step(2))
    assert strip.dtype == torch.uint8 and strip.shape == (5, 3, 16, 16)
    assert torch.equal(strip[2], sample(G, [7])[0])  # amount 0 is the seed itself
    assert not torch.equal(strip[0], strip[4])
    strips = L.direction_strips(G, 7, dirs)
    assert strips.shape == (6, 5, 3, 16, 16)
    assert (strips[2].int() - strip.int()).abs().max() <= 1  # same images, batched


def test_blend_corners_and_plane(G):
    seeds = [10, 11, 12, 13]
    z4 = latents(seeds, TINY.z_dim)
    for mode in ("slerp", "bilinear"):
        for i, (u, v) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
            z, img = L.blend_corners(G, seeds, u, v, mode=mode)
            torch.testing.assert_close(z, z4[i], atol=1e-5, rtol=1e-5)
            assert img.shape == (3, 16, 16) and img.dtype == torch.uint8
    mid_s, _ = L.blend_corners(G, seeds, 0.5, 0.5)
    mid_b, _ = L.blend_corners(G, seeds, 0.5, 0.5, mode="bilinear")
    torch.testing.assert_close(mid_b, z4.mean(0))
    assert mid_s.norm() > mid_b.norm()  # slerp keeps |z| typical; the plain average shrinks it
    grid = L.blend_plane(G, seeds, n=3)
    assert grid.shape == (3 * 18 + 2, 3 * 18 + 2, 3) and grid.dtype == np.uint8
    corner = sample(G, [13])[0].permute(1, 2, 0).numpy()  # bottom-right tile
    assert np.abs(grid[2 + 2 * 18 : 2 + 2 * 18 + 16, 2 + 2 * 18 : 2 + 2 * 18 + 16].astype(int) - corner).max() <= 1
    with pytest.raises(ValueError, match="4 corner seeds"):
        L.blend_corners(G, [1, 2, 3], 0.5, 0.5)
    with pytest.raises(ValueError, match="u and v"):
        L.blend_corners(G, seeds, 1.5, 0)


def test_arithmetic_and_walk(G):
    c = [5, 6, 7]
    torch.testing.assert_close(L.arithmetic(G, [1, 2], [1, 2], c), latents(c, TINY.z_dim).mean(0), atol=1e-6, rtol=0)
    z = L.arithmetic(G, [1, 2, 3], [4], c)
    zl = latents([1, 2, 3, 4, 5, 6, 7], TINY.z_dim)
    torch.testing.assert_close(z, zl[:3].mean(0) - zl[3] + zl[4:].mean(0))
    imgs = L.arithmetic_images(G, [1, 2, 3], [4], c)
    assert imgs.shape == (4, 3, 16, 16) and torch.equal(imgs[3], generate(G, z[None])[0])
    with pytest.raises(ValueError, match="empty"):
        L.arithmetic(G, [], [1], [2])

    from gan.sampling import walk_latents

    z1, z2 = latents([1, 2], TINY.z_dim)
    walk = walk_latents(z1, z2, 9)
    assert walk.shape == (9, TINY.z_dim)
    torch.testing.assert_close(walk[0], z1)
    torch.testing.assert_close(walk[-1], z2)
    torch.testing.assert_close(walk_latents(z1, z2, 3, "lerp")[1], (z1 + z2) / 2)


def test_prepare_image():
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 255))
    out = L.prepare_image(rgba, 16, 3)
    assert out.shape == (3, 16, 16) and out.dtype == torch.uint8 and out[0].min() == 255 and out[1].max() == 0
    hwc = np.zeros((20, 24, 3), np.uint8)
    assert L.prepare_image(hwc, 16, 1).shape == (1, 16, 16)
    assert L.prepare_image(torch.zeros(3, 32, 32, dtype=torch.uint8), 16, 3).shape == (3, 16, 16)
    assert L.prepare_image(np.zeros((8, 8), np.uint8), 16, 3).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="image must be"):
        L.prepare_image(np.zeros((2, 3, 4, 5), np.uint8), 16, 3)


STEPS = 100
MAX_ERROR = 0.02  # RMS in [0, 1] pixel units (5/255); measured 0.002-0.01 over four target seeds


def test_invert_known_z(G):
    z_true = latents([1234], TINY.z_dim)
    target = generate(G, z_true)[0]  # uint8 (3, 16, 16)
    seen = []
    res = L.invert(G, target, steps=STEPS, seed=0, callback=lambda s, loss: seen.append((s, loss)))
    assert res.z.shape == (TINY.z_dim,) and res.image.shape == (3, 16, 16) and torch.equal(res.target, target)
    assert [s for s, _ in seen] == list(range(1, STEPS + 1)) and len(res.history) == STEPS
    assert res.history[-1] < res.history[0]
    random = generate(G, latents(range(32), TINY.z_dim)).float()
    random_err = (random - target.float()).div(255).pow(2).mean((1, 2, 3)).sqrt().mean().item()
    assert res.error < MAX_ERROR, (res.error, random_err)
    assert res.error < 0.1 * random_err, (res.error, random_err)  # random z: ~0.25
    again = L.invert(G, target, steps=STEPS, seed=0)
    assert torch.equal(res.z, again.z) and res.error == again.error
    assert all(p.grad is None for p in G.parameters())


def test_invert_photo_inputs(G):
    """A photo at another size and layout, with discriminator features: runs and improves."""
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).resize((50, 40))
    res = L.invert(G, photo, steps=10, D=Discriminator(TINY), n_init=8, restarts=2)
    assert res.target.shape == (3, 16, 16) and np.isfinite(res.error)
    assert min(res.history) <= res.history[0]
    res0 = L.invert(G, np.asarray(photo), steps=0)  # best random start only
    assert res0.history == [] and torch.equal(res0.target, res.target)
    with pytest.raises(ValueError, match="match G"):
        L.invert(G, photo, steps=1, D=Discriminator(TINY.replace(image_size=32)))


def test_unwritable_cache_still_gives_directions(G, tmp_path, monkeypatch, caplog):
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache" / "sub"))
    with pytest.raises(OSError):
        L.directions_cache_path(G, 3, n_samples=N)
    dirs = L.load_or_compute_directions(copy.deepcopy(G), k=3, n_samples=N)
    assert dirs.vectors.shape == (3, TINY.z_dim)
    assert "no cache folder for directions" in caplog.text


def test_layer_features_follow_the_gated_forward():
    """With skip-layer excitation, the features the directions are found in are the gated ones:
    the last block's features run through G's remaining layers give G(z)."""
    from gan import ModelConfig

    torch.manual_seed(0)
    G = Generator(ModelConfig(image_size=32, z_dim=8, g_width=4, d_width=4, g_sle=True)).eval()
    with torch.no_grad():
        for p in G.sle.parameters():
            p.mul_(50)  # gates that vary with z
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    h = L._layer_features(G, z, L._n_blocks(G) - 1).reshape(3, 4, 16, 16)  # (3, c*s*s) -> (3, c, s, s)
    tail = G.net[max(i for i, m in enumerate(G.net) if isinstance(m, nn.ReLU)) + 1 :]
    with torch.no_grad():
        assert torch.allclose(tail(h), G(z), atol=1e-6)
