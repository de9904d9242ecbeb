"""A public Space that one stranger cannot exhaust: Hub downloads, pushes and caches within budgets.

Against the loopback Hub (tests/hubserver.py), which counts the bytes of file content it serves:
a dataset download fetches exactly the files the loader reads (never `__MACOSX/`, hidden entries,
cards or other junk), a dataset over the byte limit is refused before any content is served, a
push over the model limit commits nothing, and the dataset cache and GAN Lab's own cache folder
are pruned least recently used first under a byte cap.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import snapshot_download
from PIL import Image

from gan import DataError, Generator, ModelConfig
from gan.data import Limits
from gan.fileio import cache_dir, prune_cache
from gan.hub import MODEL_FILES, HubError, load_hub_dataset, load_model, prune_dataset_cache, push_to_hub
from gan.hubdata import DATASET_MARK

from hubserver import HubServer

ALICE = "hf_aliceSECRETtoken0123456789"
TINY = ModelConfig(image_size=16, z_dim=16, g_width=8, d_width=8)
HUGE = 300_000  # bytes of each junk file: more than the byte limit the tests set
LIMIT = 100_000


@pytest.fixture
def hub(tmp_path):
    with HubServer(tokens={ALICE: "alice"}) as server:
        with server.patch_client(tmp_path / "hf_home"):
            yield server
        assert server.errors == [], server.errors[0]
        assert server.unhandled == []


def png(seed: int, size: int = 8) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def generator(seed: int) -> Generator:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Generator(TINY)


def commits(hub: HubServer) -> list[str]:
    return [p for m, p, _ in hub.requests if m == "POST" and "/commit/" in p]


def faces(n: int) -> dict[str, bytes]:
    return {f"train/{i:03d}.png": png(i) for i in range(n)}


# ---------------------------------------------------------------------------------------------
# exact dataset downloads


def test_dataset_download_is_exactly_the_selected_files(hub):
    images = faces(70)  # more than 64: the old code switched to suffix patterns (*.png) here
    junk = {
        "__MACOSX/huge.png": b"\x89PNG\r\n\x1a\n" + bytes(HUGE),
        ".hidden/huge.png": b"\x89PNG\r\n\x1a\n" + bytes(HUGE),
        "train/._001.png": b"\x00\x05\x16\x07" + bytes(HUGE),  # a macOS resource fork
        "train/.DS_Store": bytes(1000),
        "README.md": "---\nlicense: mit\n---\n# faces\n",
    }
    hub.add_files("alice/faces", {**images, **junk}, repo_type="dataset")
    want = sum(len(d) for d in images.values())
    assert want < LIMIT < HUGE
    # the junk is neither counted as files nor as bytes: 70 files and LIMIT bytes are enough
    data = load_hub_dataset("alice/faces", 16, 3, limits=Limits(max_files=70, max_total_bytes=LIMIT))
    assert len(data) == 70 and data.report.n_skipped == 0
    assert sorted(hub.served_paths("alice/faces")) == sorted(images), "only the selected files are served"
    assert hub.content_bytes("alice/faces") == want
    print(f"served {hub.content_bytes('alice/faces'):,} bytes of content for {want:,} bytes selected")
    # the cache holds exactly those files, and a second load is served from it
    local = Path(snapshot_download("alice/faces", repo_type="dataset", local_files_only=True))
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == sorted(images)
    assert len(load_hub_dataset("hf://datasets/alice/faces", 16, 1)) == 70
    assert hub.content_bytes() == want
    hub.stop()  # offline: the branch's snapshot is found through the ref the download recorded
    assert len(load_hub_dataset("alice/faces", 16, 3)) == 70


def test_dataset_over_the_byte_limit_is_refused_before_any_content(hub):
    images = faces(70)
    total = sum(len(d) for d in images.values())
    hub.add_files("alice/big", {**images, "__MACOSX/huge.png": bytes(HUGE)}, repo_type="dataset")
    msg = f"dataset repo alice/big holds {total:,} bytes of data; the limit is {total - 1:,} .GAN_MAX_TOTAL_BYTES."
    with pytest.raises(DataError, match=msg):
        load_hub_dataset("alice/big", 16, 3, limits=Limits(max_total_bytes=total - 1))
    with pytest.raises(DataError, match="has 70 files; the limit is 69"):
        load_hub_dataset("alice/big", 16, 3, limits=Limits(max_files=69))
    assert hub.content_bytes() == 0 and hub.served == [], "no file body was served"
    assert not [p for m, p, _ in hub.requests if "/resolve/" in p], "not even a HEAD"


def test_model_download_is_exactly_the_model_files(hub):
    push_to_hub(generator(1), "alice/gan", token=ALICE)
    model = hub.files("alice/gan")
    junk = {"__MACOSX/model.safetensors": bytes(HUGE), ".cache/huge.bin": bytes(HUGE), "notes/big.txt": bytes(HUGE)}
    hub.add_files("alice/gan", junk)
    before = hub.content_bytes()
    G = load_model("alice/gan")
    served = hub.served_paths("alice/gan")
    assert set(served) <= set(MODEL_FILES) and "model.safetensors" in served
    assert hub.content_bytes() - before == sum(len(model[f]) for f in set(served))
    assert sorted(p.name for p in G.folder.iterdir()) == sorted(set(served))


# ---------------------------------------------------------------------------------------------
# pushes under the same limits as loading


def test_push_over_the_model_limit_commits_nothing(hub, tmp_path, caplog):
    G = generator(2)
    with pytest.raises(HubError, match=r"model.safetensors is .* bytes; the limit for pushing here is 1,000 bytes "
                                       r"\(GAN_MAX_MODEL_MB\); nothing was uploaded"):  # fmt: skip
        push_to_hub(G, "alice/too-big", token=ALICE, max_bytes=1000)
    folder = tmp_path / "model"
    push_to_hub(G, "alice/ok", token=ALICE)  # no limit
    load_model("alice/ok").save_pretrained(folder)
    size = (folder / "model.safetensors").stat().st_size
    before = len(commits(hub))
    with pytest.raises(HubError, match=f"model.safetensors is {size:,} bytes; the limit for pushing here is "):
        push_to_hub(folder, "alice/too-big", token=ALICE, max_bytes=size - 1)
    assert ("model", "alice/too-big") not in hub.repos and len(commits(hub)) == before, "no repo, no commit"
    # within the limit it works, and only the model files go up (not a stray file in the folder)
    (folder / "notes.txt").write_text("private notes")
    (folder / ".env").write_text("HF_TOKEN=secret")
    push_to_hub(folder, "alice/fits", token=ALICE, max_bytes=size)
    uploaded = set(hub.files("alice/fits")) - {".gitattributes"}
    assert uploaded == {"config.json", "model.safetensors", "README.md", "samples.png"}
    assert "pushing without model.onnx: it is" in caplog.text  # the export adds its graph: over `size`
    assert load_model("alice/fits").config == TINY


# ---------------------------------------------------------------------------------------------
# bounded caches


def _age(repo_folder: Path, t: float) -> None:
    """Make a cached dataset repo look last used at time t (its mark and its blobs)."""
    for f in [repo_folder / DATASET_MARK, *(repo_folder / "blobs").iterdir()]:
        os.utime(f, (t, t))


def test_prune_dataset_cache_keeps_the_newest_and_the_kept(hub, tmp_path):
    names = ["alice/d0", "alice/d1", "alice/d2"]
    for i, name in enumerate(names):
        hub.add_files(name, {f"{j}.png": png(100 * i + j, 16) for j in range(4)}, repo_type="dataset")
        load_hub_dataset(name, 16, 3)
    hub.add_files("bob/other", {"data.bin": bytes(50_000)}, repo_type="dataset")
    other = Path(snapshot_download("bob/other", repo_type="dataset"))  # not GAN Lab's: never touched
    roots = [other.parents[1].parent / f"datasets--{n.replace('/', '--')}" for n in names]
    for age, root in enumerate(roots):  # d0 used longest ago, d2 most recently
        _age(root, 1_000_000 + 1000 * age)
    one = max(sum(f.stat().st_size for f in (r / "blobs").iterdir()) for r in roots)
    assert prune_dataset_cache(10 * one) == []
    assert prune_dataset_cache(int(2.5 * one)) == ["alice/d0"]
    assert prune_dataset_cache(int(1.5 * one), keep=["alice/d1"]) == ["alice/d2"]
    assert [r.exists() for r in roots] == [False, True, False]
    assert other.is_dir() and (other / "data.bin").is_file()
    # load_hub_dataset prunes after its download when given a cap, never the repo it just loaded
    data = load_hub_dataset("alice/d0", 16, 3, cache_max_bytes=0)
    assert len(data) == 4 and roots[0].exists() and not roots[1].exists()


def test_prune_cache_bounds_the_app_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    onnx, dirs = cache_dir("onnx"), cache_dir("directions")
    now = time.time()
    files = {
        onnx / "old.onnx": (5000, now - 500),
        onnx / "old.json": (100, now - 400),  # one entry with old.onnx, used at its newest file's time
        onnx / "mid.onnx": (5000, now - 300),
        onnx / "mid.json": (100, now - 300),
        dirs / "kept.safetensors": (3000, now - 900),
        dirs / "new.safetensors": (3000, now - 10),
        dirs / ".new2.safetensors.0123abcd.tmp": (3000, now - 5),  # being written: never deleted
    }
    for f, (size, t) in files.items():
        f.write_bytes(bytes(size))
        os.utime(f, (t, t))
    total = sum(size for size, _ in files.values())
    assert prune_cache(total) == []
    deleted = prune_cache(10_000, keep=[dirs / "kept.safetensors"])  # kept is the oldest, but in use
    assert sorted(p.name for p in deleted[:2]) == ["old.json", "old.onnx"]  # least recently used first
    assert sorted(p.name for p in deleted[2:]) == ["mid.json", "mid.onnx"]
    left = {p.name: p.stat().st_size for p in cache_dir().rglob("*") if p.is_file()}
    assert sorted(left) == [".new2.safetensors.0123abcd.tmp", "kept.safetensors", "new.safetensors"]
    assert sum(left.values()) <= 10_000
    assert prune_cache(0, keep=[dirs]) == []  # a kept folder keeps all inside it
    assert prune_cache(0, keep=[dirs / "kept.safetensors"]) == [dirs / "new.safetensors"]
    assert sum(p.stat().st_size for p in cache_dir().rglob("*") if p.is_file()) == 6000  # kept + being written
