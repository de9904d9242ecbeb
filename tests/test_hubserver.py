"""The real huggingface_hub client against tests/hubserver.py (see its docstring for the setup)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import HfApi, ModelCard, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

try:
    from hubserver import GITATTRIBUTES, HubServer
except ImportError:  # tests/ imported as a package
    from tests.hubserver import GITATTRIBUTES, HubServer

ALICE, BOB = "hf_alice_token", "hf_bob_token"

README = b"""---
license: mit
library_name: gan-lab
tags:
- dcgan
- unconditional-image-generation
---

# tiny DCGAN

A generator trained on 16 px faces.
"""


@pytest.fixture
def hub(tmp_path):
    with HubServer(tokens={ALICE: "alice", BOB: "bob"}, orgs={"gan-lab": ["alice"]}) as server:
        with server.patch_client(tmp_path / "hf_home"):
            yield server
        assert server.errors == [], server.errors[0]
        assert server.unhandled == []


@pytest.fixture
def model_folder(tmp_path) -> Path:
    folder = tmp_path / "model"
    (folder / "samples").mkdir(parents=True)
    (folder / "README.md").write_bytes(README)
    (folder / "config.json").write_text(json.dumps({"z_dim": 16, "image_size": 16}))
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 40 + b"\x00\xff" * 7)
    (folder / "samples" / "grid.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    return folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_client_points_at_server(hub):
    from huggingface_hub import constants

    assert constants.ENDPOINT == hub.url
    assert constants.HF_HUB_DISABLE_XET
    assert huggingface_hub.hf_api.api.endpoint == hub.url
    assert HfApi().whoami(token=ALICE)["name"] == "alice"


def test_create_repo_and_exist_ok(hub):
    api = HfApi()
    url = api.create_repo("alice/tiny-gan", token=ALICE)
    assert url.repo_id == "alice/tiny-gan" and url == f"{hub.url}/alice/tiny-gan"
    again = api.create_repo("alice/tiny-gan", token=ALICE, exist_ok=True)
    assert again.repo_id == "alice/tiny-gan"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("alice/tiny-gan", token=ALICE)
    assert err.value.response.status_code == 409
    # org namespace the user belongs to, and a namespace they do not own
    assert api.create_repo("gan-lab/shared", token=ALICE).repo_id == "gan-lab/shared"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("alice/stolen", token=BOB)
    assert err.value.response.status_code == 403
    assert api.list_repo_files("alice/tiny-gan") == [".gitattributes"]


def test_upload_folder_and_download_bit_identical(hub, model_folder, tmp_path):
    api = HfApi()
    api.create_repo("alice/tiny-gan", token=ALICE)
    info = api.upload_folder(repo_id="alice/tiny-gan", folder_path=model_folder, token=ALICE)
    expected = _tree(model_folder)
    assert hub.files("alice/tiny-gan") == {".gitattributes": GITATTRIBUTES, **expected}
    assert ("POST", "/api/validate-yaml", 200) in hub.requests

    assert sorted(api.list_repo_files("alice/tiny-gan")) == sorted([".gitattributes", *expected])
    model = api.model_info("alice/tiny-gan", files_metadata=True)
    assert model.sha == info.oid
    assert {s.rfilename: s.size for s in model.siblings}["model.safetensors"] == len(expected["model.safetensors"])
    assert model.card_data.library_name == "gan-lab" and "dcgan" in model.tags

    for name, content in expected.items():
        assert Path(hf_hub_download("alice/tiny-gan", name)).read_bytes() == content
    snapshot = Path(snapshot_download("alice/tiny-gan"))
    assert _tree(snapshot) == {".gitattributes": GITATTRIBUTES, **expected}
    local = Path(snapshot_download("alice/tiny-gan", local_dir=tmp_path / "copy"))
    assert {k: v for k, v in _tree(local).items() if not k.startswith(".cache/")} == _tree(snapshot)


def test_revision_pinning_after_second_commit(hub, model_folder):
    api = HfApi(endpoint=hub.url)  # an explicit endpoint works as well
    api.create_repo("alice/tiny-gan", token=ALICE)
    first = api.upload_folder(repo_id="alice/tiny-gan", folder_path=model_folder, token=ALICE).oid
    second = api.upload_file(
        path_or_fileobj=b'{"z_dim": 32}',
        path_in_repo="config.json",
        repo_id="alice/tiny-gan",
        token=ALICE,
        commit_message="bigger z",
    ).oid
    assert first != second and len(second) == 40

    old = Path(hf_hub_download("alice/tiny-gan", "config.json", revision=first)).read_text()
    new = Path(hf_hub_download("alice/tiny-gan", "config.json")).read_text()
    assert json.loads(old)["z_dim"] == 16 and json.loads(new)["z_dim"] == 32
    assert api.model_info("alice/tiny-gan", revision=first).sha == first
    assert api.model_info("alice/tiny-gan").sha == second
    pinned = Path(snapshot_download("alice/tiny-gan", revision=first))
    assert pinned.name == first and json.loads((pinned / "config.json").read_text())["z_dim"] == 16
    assert [c.title for c in api.list_repo_commits("alice/tiny-gan")][:2] == [
        "bigger z",
        "Upload folder using huggingface_hub",
    ]
    # an unchanged file is recognised through the preupload "oid" and not committed again
    same = api.upload_file(
        path_or_fileobj=b'{"z_dim": 32}',
        path_in_repo="config.json",
        repo_id="alice/tiny-gan",
        token=ALICE,
    )
    assert same.oid == second
    api.delete_file("samples/grid.png", "alice/tiny-gan", token=ALICE)
    assert "samples/grid.png" not in api.list_repo_files("alice/tiny-gan")
    assert "samples/grid.png" in api.list_repo_files("alice/tiny-gan", revision=second)


def test_tree_listing(hub, model_folder):
    hub.add_files("alice/tiny-gan", _tree(model_folder))
    api = HfApi()
    top = {e.path: type(e).__name__ for e in api.list_repo_tree("alice/tiny-gan")}
    assert top["samples"] == "RepoFolder" and top["README.md"] == "RepoFile"
    assert "samples/grid.png" not in top
    deep = [e.path for e in api.list_repo_tree("alice/tiny-gan", recursive=True)]
    assert "samples/grid.png" in deep
    assert [e.path for e in api.list_repo_tree("alice/tiny-gan", "samples")] == ["samples/grid.png"]
    assert api.file_exists("alice/tiny-gan", "samples/grid.png")
    assert not api.file_exists("alice/tiny-gan", "nope.bin")
    info = api.get_paths_info("alice/tiny-gan", ["config.json", "samples", "missing"])
    assert [e.path for e in info] == ["config.json", "samples"]


def test_missing_repo_entry_and_revision(hub):
    hub.add_files("alice/tiny-gan", {"config.json": b"{}"})
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/does-not-exist", "config.json")
    with pytest.raises(RepositoryNotFoundError):  # right name, wrong repo type
        api.dataset_info("alice/tiny-gan")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("alice/tiny-gan", "model.safetensors")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("alice/tiny-gan", "config.json", revision="v9")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("alice/tiny-gan", revision="0" * 40)
    assert not api.repo_exists("alice/does-not-exist")
    assert api.repo_exists("alice/tiny-gan")


def test_bad_token_is_401(hub):
    hub.add_files("alice/tiny-gan", {"config.json": b"{}"})
    api = HfApi()
    for call in (
        lambda: api.whoami(token="hf_wrong"),
        lambda: api.create_repo("alice/x", token="hf_wrong"),
        lambda: hf_hub_download("alice/tiny-gan", "config.json", token="hf_wrong"),
        lambda: api.model_info("alice/tiny-gan", token="hf_wrong"),
    ):
        with pytest.raises(HfHubHTTPError) as err:
            call()
        assert err.value.response.status_code == 401
        assert not isinstance(err.value, RepositoryNotFoundError)
    with pytest.raises(HfHubHTTPError) as err:  # no token at all for a write
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/tiny-gan", token=False)
    assert err.value.response.status_code == 401


def test_private_repo_is_invisible_without_token(hub, tmp_path):
    api = HfApi()
    api.create_repo("alice/secret", private=True, token=ALICE)
    api.upload_file(path_or_fileobj=b"weights", path_in_repo="w.bin", repo_id="alice/secret", token=ALICE)
    assert api.model_info("alice/secret", token=ALICE).private is True
    for token in (None, BOB):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info("alice/secret", token=token)
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download("alice/secret", "w.bin", token=token, cache_dir=tmp_path / "c")
        with pytest.raises(RepositoryNotFoundError):
            api.list_repo_files("alice/secret", token=token)
    assert Path(hf_hub_download("alice/secret", "w.bin", token=ALICE)).read_bytes() == b"weights"
    # bob can read alice's public repos but not write to them
    hub.add_files("alice/public", {"a.txt": "a"})
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/public", token=BOB)
    assert err.value.response.status_code == 403


def test_implicit_token_and_gated_repo(hub, tmp_path):
    hub.add_files("alice/gated", {"w.bin": b"w"}, gated="auto")
    with pytest.raises(GatedRepoError):
        hf_hub_download("alice/gated", "w.bin", token=BOB)
    with hub.patch_client(tmp_path / "home2", token=ALICE):  # HF_TOKEN picked up implicitly
        assert HfApi().whoami()["name"] == "alice"
        assert Path(hf_hub_download("alice/gated", "w.bin")).read_bytes() == b"w"


def test_dataset_repo_upload_and_download(hub, tmp_path):
    images = tmp_path / "faces"
    images.mkdir()
    for i in range(3):
        (images / f"{i:03d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + hashlib.sha256(bytes([i])).digest())
    api = HfApi()
    api.create_repo("alice/faces", repo_type="dataset", token=ALICE)
    commit = api.upload_folder(
        repo_id="alice/faces",
        repo_type="dataset",
        folder_path=images,
        path_in_repo="train",
        token=ALICE,
    )
    assert "/datasets/alice/faces/commit/" in commit.commit_url
    assert api.dataset_info("alice/faces").sha == commit.oid
    with pytest.raises(RepositoryNotFoundError):  # it is not a model repo
        api.model_info("alice/faces")
    local = Path(snapshot_download("alice/faces", repo_type="dataset", allow_patterns="train/*"))
    assert _tree(local) == {f"train/{k}": v for k, v in _tree(images).items()}
    one = hf_hub_download("alice/faces", "train/001.png", repo_type="dataset")
    assert Path(one).read_bytes() == (images / "001.png").read_bytes()


def test_bytes_served_are_counted(hub):
    hub.add_files("alice/counted", {"a.png": b"a" * 1000, "big/b.png": b"b" * 5000}, repo_type="dataset")
    assert hub.content_bytes() == 0 and hub.served == []
    before = hub.bytes_served
    HfApi().dataset_info("alice/counted", files_metadata=True)  # JSON only: no file content
    assert hub.content_bytes() == 0 and hub.bytes_served > before
    assert Path(hf_hub_download("alice/counted", "a.png", repo_type="dataset")).read_bytes() == b"a" * 1000
    assert hub.content_bytes("alice/counted") == 1000 and hub.served_paths() == ["a.png"]
    hf_hub_download("alice/counted", "a.png", repo_type="dataset")  # cached: HEAD only, no content
    assert hub.content_bytes("alice/counted", "dataset") == 1000 and hub.content_bytes("alice/other") == 0
    snapshot_download("alice/counted", repo_type="dataset")
    assert sorted(hub.served_paths("alice/counted")) == [".gitattributes", "a.png", "big/b.png"]  # threads: any order
    assert hub.content_bytes() == 6000 + len(GITATTRIBUTES)


def test_seeded_repo_and_module_level_functions(hub, tmp_path):
    sha = hub.add_files("bob/pickle-only", {"pytorch_model.bin": b"\x80\x04pickle"})
    assert huggingface_hub.list_repo_files("bob/pickle-only") == [
        ".gitattributes",
        "pytorch_model.bin",
    ]
    assert huggingface_hub.model_info("bob/pickle-only").sha == sha
    # module-level functions are bound to an import-time HfApi; patch_client repoints it too
    huggingface_hub.create_repo("alice/card", token=ALICE)
    card = ModelCard(README.decode())
    card.push_to_hub("alice/card", token=ALICE)
    assert ModelCard.load("alice/card").data.library_name == "gan-lab"


def test_subprocess_uses_hf_endpoint(hub, tmp_path):
    hub.add_files("alice/tiny-gan", {"config.json": b'{"z_dim": 8}'})
    script = textwrap.dedent(
        """
        import os, sys
        from huggingface_hub import HfApi, hf_hub_download
        assert os.environ["HF_ENDPOINT"].startswith("http://127.0.0.1:")
        print(HfApi().whoami()["name"])
        print(open(hf_hub_download("alice/tiny-gan", "config.json")).read())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=hub.client_env(tmp_path / "child_home", token=ALICE),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["alice", '{"z_dim": 8}']
    assert (tmp_path / "child_home" / "hub" / "models--alice--tiny-gan").is_dir()


def test_tokens_are_never_logged(hub, capfd):
    api = HfApi()
    api.create_repo("alice/tiny-gan", token=ALICE)
    with pytest.raises(HfHubHTTPError):
        api.whoami(token="hf_wrong")
    captured = capfd.readouterr()
    assert ALICE not in captured.out + captured.err and "hf_wrong" not in captured.out + captured.err
    assert "Authorization" not in repr(hub.requests)
    assert ("GET", "/api/whoami-v2", 401) in hub.requests
