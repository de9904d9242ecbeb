"""The shipped generators in weights/: they load, and each seed gives one finite image."""

import json
from pathlib import Path

import pytest
import torch

import gan.latent as L
from gan import load_model, sample

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = {"cats64": (3, 64), "mnist32": (1, 32)}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model(name, tmp_path, monkeypatch):
    folder = WEIGHTS / name
    assert {"config.json", "model.safetensors", "README.md", "samples.png"} <= {p.name for p in folder.iterdir()}
    assert sum(p.stat().st_size for p in folder.iterdir()) < 20 * 2**20
    G = load_model(folder)
    channels, size = SHIPPED[name]
    x = sample(G, [0, 1, 2, 3])
    assert x.shape == (4, channels, size, size) and x.dtype == torch.uint8
    assert x.float().std() > 10  # not a flat image
    assert torch.equal(sample(G, [2])[0], x[2])  # a seed gives its image whatever the batch
    with torch.no_grad():
        y = G(torch.randn(2, G.z_dim))
    assert torch.isfinite(y).all() and y.min() >= -1 and y.max() <= 1
    card = (folder / "README.md").read_text()
    assert "python -m gan train" in card and "python -m gan eval" in card and "swd_avg" in card
    assert json.loads((folder / "metrics.json").read_text())["swd_avg"] > 0
    # exploring uses the shipped directions: nothing is computed, and nothing is written anywhere
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}
    monkeypatch.setattr(L, "principal_directions", lambda *a, **kw: pytest.fail("directions were recomputed"))
    monkeypatch.setattr(L, "save_directions", lambda *a, **kw: pytest.fail("directions were written"))
    dirs = L.load_or_compute_directions(G, k=8)
    shipped = L._read_directions(folder / L.DIRECTIONS_FILE)
    assert shipped is not None and shipped.meta["weights"] == L.weights_hash(G)
    assert dirs.vectors.shape == (8, G.z_dim) and torch.equal(dirs.vectors, shipped.vectors)
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}
    assert after == before
    assert not list((tmp_path / "cache").rglob("*.safetensors"))
