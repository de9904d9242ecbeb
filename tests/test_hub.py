"""gan.hub against a Hub-API server on 127.0.0.1 (tests/hubserver.py), through the real huggingface_hub.

Push and pull models, revision pinning, the model card, refusals with clear messages, tokens that
never leak, the `push` command in a subprocess, and Hub dataset repos (image files, parquet) as
training data.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, snapshot_download
from PIL import Image
from safetensors.torch import save_file

from gan import (
    DataError,
    Done,
    Generator,
    ModelConfig,
    ModelLoadError,
    TrainConfig,
    fit,
    latents,
    load_files,
    load_images,
    sample,
    save_model,
)
from gan.data import DatasetReport, Limits
from gan.hub import HubError, check_repo_id, load_hub_dataset, load_model, push_to_hub

from hubserver import HubServer

ALICE = "hf_aliceSECRETtoken0123456789"
BOB = "hf_bobSECRETtoken9876543210"
ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(image_size=16, z_dim=16, g_width=8, d_width=8)


@pytest.fixture
def hub(tmp_path):
    with HubServer(tokens={ALICE: "alice", BOB: "bob"}, orgs={"gan-lab": ["alice"]}) as server:
        with server.patch_client(tmp_path / "hf_home"):
            yield server
        assert server.errors == [], server.errors[0]
        assert server.unhandled == []


def generator(seed: int) -> Generator:
    """A tiny untrained generator; the same seed gives the same weights."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Generator(TINY)


def png(seed: int, size=(20, 18)) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def assert_secret(err: BaseException, *tokens: str) -> None:
    """The token is in no part of the error: message, args, repr, and no chained error (the
    library's exception holds the request, whose Authorization header holds the token)."""
    text = "".join(traceback.format_exception_only(err)) + repr(err) + repr(err.args)
    assert err.__cause__ is None and err.__context__ is None
    for t in tokens or (ALICE, BOB):
        assert t not in text


def resolves(hub: HubServer) -> list[str]:
    return [p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p]


# ---------------------------------------------------------------------------------------------
# push and pull


def test_push_then_pull_gives_the_same_images(hub, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    G = generator(0)
    url = push_to_hub(G, "alice/tiny-gan", token=ALICE)
    assert url == hub.repo_url("alice/tiny-gan")
    files = hub.files("alice/tiny-gan")
    assert set(files) == {".gitattributes", "config.json", "model.safetensors", "README.md", "samples.png",
                          "model.onnx"}  # fmt: skip
    # model.onnx travels with the weights and computes the same images (onnxruntime, as a Hub user would)
    import onnxruntime as ort

    sess = ort.InferenceSession(files["model.onnx"], providers=["CPUExecutionProvider"])
    z = latents(range(4), G.z_dim)
    (img,) = sess.run(None, {"z": z.numpy()})
    with torch.no_grad():
        assert np.abs(img - G.eval()(z).numpy()).max() < 1e-3
    G2 = load_model("alice/tiny-gan")  # public: no token needed
    assert not (G2.folder / "model.onnx").exists()  # loading never downloads (or uses) it
    assert torch.equal(sample(G, range(8)), sample(G2, range(8)))
    assert G2.commit == hub.repo("alice/tiny-gan").branches["main"] and G2.source == "alice/tiny-gan"
    # the second load is served from the cache: no file is downloaded again
    n = len(resolves(hub))
    G3 = load_model("alice/tiny-gan")
    assert len(resolves(hub)) == n and G3.folder == G2.folder
    # ... even with the Hub unreachable
    hub.stop()
    G4 = load_model("alice/tiny-gan")
    assert torch.equal(sample(G4, range(8)), sample(G, range(8)))
    with pytest.raises(ModelLoadError, match=r"could not reach the Hub .* not in the local cache"):
        load_model("alice/never-downloaded")
    out = capsys.readouterr()
    for text in (out.out, out.err, caplog.text, url, G2.source, str(G2.folder)):
        assert ALICE not in text


def test_preloaded_files_serve_a_space_offline(hub, tmp_path):
    """What `preload_from_hub: - user/name config.json,model.safetensors` leaves in a Space's cache."""
    push_to_hub(generator(7), "alice/preloaded", token=ALICE)
    with hub.patch_client(tmp_path / "space_home"):
        snapshot_download("alice/preloaded", allow_patterns=["config.json", "model.safetensors"])
        hub.stop()
        G = load_model("alice/preloaded")
    assert torch.equal(sample(G, range(4)), sample(generator(7), range(4)))
    assert sorted(p.name for p in G.folder.iterdir()) == ["config.json", "model.safetensors"]


def test_pushed_card_has_metadata_and_samples(hub, tmp_path):
    folder = save_model(
        generator(1),
        tmp_path / "model",
        train_cfg=TrainConfig(steps=3, batch_size=8),
        report=DatasetReport("hf://datasets/alice/faces"),
        steps=3,
    )
    (folder / "metrics.json").write_text(json.dumps({"swd": 0.5}))
    push_to_hub(folder, "alice/faces-gan", token=ALICE)
    files = hub.files("alice/faces-gan")
    assert {"samples.png", "training.json", "metrics.json", "README.md"} <= set(files)
    assert Image.open(io.BytesIO(files["samples.png"])).format == "PNG"
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "gan-lab"
    assert card.data.pipeline_tag == "unconditional-image-generation"
    assert card.data.license == "mit"
    assert {"gan", "dcgan"} <= set(card.data.tags)
    assert card.data.datasets == ["alice/faces"]
    assert 'load_model("alice/faces-gan")' in card.text and "--model alice/faces-gan" in card.text
    assert "![samples](samples.png)" in card.text and "path/to/model" not in card.text
    info = HfApi().model_info("alice/faces-gan")
    assert info.pipeline_tag == "unconditional-image-generation" and info.library_name == "gan-lab"


def test_revision_pinning_and_stale_files(hub, tmp_path):
    first = save_model(generator(1), tmp_path / "first")
    save_file({"directions": torch.randn(4, 16)}, first / "directions.safetensors")
    push_to_hub(first, "gan-lab/pinned", token=ALICE, commit_message="first")  # an org alice is in
    sha1 = hub.repo("gan-lab/pinned").branches["main"]
    push_to_hub(generator(2), "gan-lab/pinned", token=ALICE)
    sha2 = hub.repo("gan-lab/pinned").branches["main"]
    assert sha1 != sha2
    assert "directions.safetensors" not in hub.files("gan-lab/pinned")  # stale: the new model has none
    assert "directions.safetensors" in hub.files("gan-lab/pinned", revision=sha1)
    old, new = load_model("gan-lab/pinned", revision=sha1), load_model("gan-lab/pinned")
    assert (old.commit, new.commit) == (sha1, sha2)
    assert torch.equal(sample(old, range(8)), sample(generator(1), range(8)))
    assert torch.equal(sample(new, range(8)), sample(generator(2), range(8)))
    assert (old.folder / "directions.safetensors").exists()
    with pytest.raises(ModelLoadError, match="revision 'v9' does not exist in Hub repo gan-lab/pinned"):
        load_model("gan-lab/pinned", revision="v9")


def test_push_copies_a_repo(hub):
    push_to_hub(generator(3), "alice/source", token=ALICE)
    url = push_to_hub("alice/source", "alice/copy", token=ALICE)
    assert url.endswith("/alice/copy")
    card = hub.files("alice/copy")["README.md"].decode()
    assert 'load_model("alice/copy")' in card and "alice/source" not in card
    assert torch.equal(sample(load_model("alice/copy"), range(4)), sample(generator(3), range(4)))


def test_private_push_needs_the_token_to_read(hub):
    push_to_hub(generator(4), "alice/secret", token=ALICE, private=True)
    assert hub.repo("alice/secret").private
    with pytest.raises(ModelLoadError, match="alice/secret was not found .*set HF_TOKEN") as err:
        load_model("alice/secret")
    assert_secret(err.value)
    assert load_model("alice/secret", token=ALICE).commit == hub.repo("alice/secret").branches["main"]
    push_to_hub(generator(4), "alice/open", token=ALICE)
    with pytest.raises(HubError, match="already exists and is public"):
        push_to_hub(generator(4), "alice/open", token=ALICE, private=True)


# ---------------------------------------------------------------------------------------------
# refusals and messages


def test_pickle_only_repo_is_refused(hub):
    hub.add_files("bob/pickles", {"pytorch_model.bin": b"\x80\x04K\x01.", "config.json": "{}"})
    with pytest.raises(ModelLoadError, match=r"only pickle weights \(pytorch_model.bin\).*arbitrary code"):
        load_model("bob/pickles")
    assert not [p for p in resolves(hub) if p.endswith(".bin")], "the pickle is never downloaded"


def test_not_a_gan_lab_model(hub):
    hub.add_files("bob/bert", {"config.json": '{"hidden_size": 768}', "model.safetensors": b"\x00" * 16})
    with pytest.raises(ModelLoadError, match="Hub repo bob/bert is not a GAN Lab model.*hidden_size"):
        load_model("bob/bert")
    hub.add_files("bob/notes", {"README.md": "# notes"})
    with pytest.raises(ModelLoadError, match="no model.safetensors; it is not a GAN Lab model"):
        load_model("bob/notes")


@pytest.mark.parametrize("bad", ["alice/bad name", "alice/a--b", "alice/x/y", "/alice", "alice/.hidden"])
def test_malformed_repo_ids(hub, bad):
    with pytest.raises(HubError, match="not a valid Hub repo id"):
        push_to_hub(generator(0), bad, token=ALICE)
    with pytest.raises(HubError, match="not a valid Hub repo id"):
        load_hub_dataset(bad, 16, 3)
    if bad.count("/") == 1 and not bad.startswith("/"):
        with pytest.raises(ModelLoadError, match="not a valid Hub repo id"):
            load_model(bad)
    assert hub.requests == [], "refused before any request"


def test_repo_id_that_is_a_token_is_not_echoed():
    with pytest.raises(HubError, match="looks like an access token") as err:
        check_repo_id(ALICE)
    assert_secret(err.value, ALICE)


def test_messages_for_missing_repo_and_tokens(hub, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    hub.add_files("alice/public", {"config.json": "{}"})
    cases = [
        (lambda: load_model("alice/nope"), ModelLoadError, "Hub repo alice/nope was not found on the Hub"),
        (lambda: load_model("alice/public", token="hf_wrong_token"), ModelLoadError, "401.*set HF_TOKEN"),
        (lambda: push_to_hub(generator(0), "alice/x"), HubError, "set HF_TOKEN or pass a token"),
        (lambda: push_to_hub(generator(0), "alice/x", token="hf_wrong_token"), HubError,
         r"refused the token \(401 Unauthorized\).*set HF_TOKEN or pass a token with write access"),
        (lambda: push_to_hub(generator(0), "alice/x", token=BOB), HubError,
         r"no write access to the namespace 'alice' \(403 Forbidden\)"),
        (lambda: push_to_hub(generator(0), "alice/x", token=" hf_bad\ntoken"), HubError, "control characters"),
        (lambda: load_hub_dataset("alice/nope", 16, 3, token=ALICE), HubError,
         "dataset repo alice/nope was not found"),
    ]  # fmt: skip
    for call, kind, pattern in cases:
        with pytest.raises(kind, match=pattern) as err:
            call()
        assert_secret(err.value, ALICE, BOB, "hf_wrong_token", "hf_bad")
    assert "alice/x" not in {r.repo_id for r in hub.repos.values()}
    out = capsys.readouterr()
    for secret in (ALICE, BOB, "hf_wrong_token"):
        assert secret not in out.out + out.err + caplog.text


def test_network_unreachable(tmp_path):
    server = HubServer(tokens={ALICE: "alice"}).start()
    with server.patch_client(tmp_path / "home"):
        server.stop()
        with pytest.raises(HubError, match=r"could not reach the Hub at http://127\.0\.0\.1:\d+") as err:
            push_to_hub(generator(0), "alice/offline", token=ALICE)
        assert_secret(err.value)
        with pytest.raises(ModelLoadError, match="could not reach the Hub"):
            load_model("alice/offline", token=ALICE)


def test_token_from_hf_token_env(hub, tmp_path):
    with hub.patch_client(tmp_path / "home2", token=ALICE):
        assert os.environ["HF_TOKEN"] == ALICE
        url = push_to_hub(generator(5), "alice/env-token")
    assert url.endswith("/alice/env-token") and ALICE not in url


def test_cli_push(hub, tmp_path, capsys):
    from gan.__main__ import main

    folder = save_model(generator(6), tmp_path / "model")
    args = ["push", "--model", str(folder), "--repo", "alice/cli-gan"]
    # a real child process: HF_ENDPOINT and HF_TOKEN come from its environment, as for a user
    env = {**hub.client_env(tmp_path / "child", token=ALICE), "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-m", "gan", *args], env=env, cwd=tmp_path, capture_output=True,
                        text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert f"pushed to {hub.url}/alice/cli-gan" in ok.stdout
    assert ALICE not in ok.stdout + ok.stderr
    assert torch.equal(sample(load_model("alice/cli-gan"), range(4)), sample(generator(6), range(4)))
    # the failure path in this process (one interpreter start is enough)
    with hub.patch_client(tmp_path / "home2", token="hf_wrong_token"):
        assert main(args) == 2
    out = capsys.readouterr()
    assert "error: the Hub refused the token (401 Unauthorized)" in out.err
    assert "hf_wrong_token" not in out.out + out.err


# ---------------------------------------------------------------------------------------------
# Hub datasets as training data


def test_hub_dataset_of_images_trains(hub, tmp_path):
    files = {f"train/{'cats' if i % 2 else 'dogs'}/{i:03d}.png": png(i) for i in range(10)}
    files["train/broken.png"] = b"\x89PNG\r\n\x1a\nnot really"
    files["README.md"] = "---\nlicense: mit\n---\n# faces\n"
    files["metadata.csv"] = "file_name\n"
    hub.add_files("alice/faces", files, repo_type="dataset")
    data = load_hub_dataset("hf://datasets/alice/faces", 16, 3)
    assert data.images.shape == (10, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.report.source == "hf://datasets/alice/faces"
    assert data.report.skipped == {"truncated or corrupt image": 1}
    assert not [p for p in resolves(hub) if p.endswith((".csv", ".md"))], "only images are downloaded"
    again = load_hub_dataset("datasets/alice/faces", 16, 1)  # the CLI's form, from the cache
    assert again.images.shape == (10, 1, 16, 16)
    events = list(fit(TINY, TrainConfig(steps=3, batch_size=8, sample_every=0, checkpoint_every=0), data,
                      out_dir=tmp_path / "run"))  # fmt: skip
    done = events[-1]
    assert isinstance(done, Done) and done.step == 3 and done.reason == "finished"
    # the trained model names its Hub dataset in the card it is pushed with
    push_to_hub(done.model_dir, "alice/faces-gan", token=ALICE)
    assert ModelCard(hub.files("alice/faces-gan")["README.md"].decode()).data.datasets == ["alice/faces"]


def test_hub_dataset_of_many_files_at_a_revision(hub):
    files = {f"img/{i:03d}.png": png(i, size=(8, 8)) for i in range(70)}
    files["img/._resource-fork.png"] = b"\x00\x05\x16\x07"  # macOS junk: not data
    sha = hub.add_files("alice/many-faces", files, repo_type="dataset")
    hub.add_files("alice/many-faces", {"later.png": png(100)}, repo_type="dataset")
    data = load_hub_dataset(f"hf://datasets/alice/many-faces@{sha}", 16, 3)
    assert len(data) == 70 and data.report.n_skipped == 0
    assert data.report.source == f"hf://datasets/alice/many-faces@{sha}"
    assert len(load_hub_dataset("alice/many-faces", 16, 3)) == 71


def test_hub_dataset_limits_and_empty_repo(hub):
    hub.add_files("alice/many", {f"{i}.png": png(i) for i in range(5)}, repo_type="dataset")
    with pytest.raises(DataError, match="has 5 files; the limit is 3"):
        load_hub_dataset("alice/many", 16, 3, limits=Limits(max_files=3))
    with pytest.raises(DataError, match="bytes of data; the limit is 100"):
        load_hub_dataset("alice/many", 16, 3, limits=Limits(max_total_bytes=100))
    assert resolves(hub) == [], "limits are checked before downloading"
    hub.add_files("alice/text", {"README.md": "# nothing", "data.csv": "a,b\n"}, repo_type="dataset")
    with pytest.raises(DataError, match="no image files .* and no parquet files"):
        load_hub_dataset("alice/text", 16, 3)
    hub.add_files("alice/private-faces", {"0.png": png(0)}, repo_type="dataset", private=True)
    with pytest.raises(HubError, match="not found.*HF_TOKEN"):
        load_hub_dataset("alice/private-faces", 16, 3)
    assert len(load_hub_dataset("alice/private-faces", 16, 3, token=ALICE)) == 1


def _parquet(table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_hub_dataset_parquet(hub):
    pa = pytest.importorskip("pyarrow")
    # what `datasets` writes for an Image feature: struct{bytes, path} + features in the metadata
    cells = [{"bytes": png(i), "path": f"{i}.png"} for i in range(4)]
    cells += [None, {"bytes": None, "path": "https://example.com/remote.png"}]
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    features = {"image": {"_type": "Image"}, "label": {"dtype": "int64", "_type": "Value"}}
    hf_table = pa.table({"label": pa.array(range(6)), "image": pa.array(cells, type=image_type)})
    hf_table = hf_table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    plain = pa.table({"name": ["a", "b", "c"], "png": pa.array([png(10), png(11), b"junk"], type=pa.binary())})
    hub.add_files(
        "alice/pq",
        {
            "data/train-00000-of-00001.parquet": _parquet(hf_table),
            "data/test-00000-of-00001.parquet": _parquet(plain),
            "assets/banner.png": png(99, size=(4, 4)),  # a README picture: smaller, so not the data
        },
        repo_type="dataset",
    )
    data = load_hub_dataset("alice/pq", 16, 3)
    assert len(data) == 6 and data.report.n_ok == 6
    assert data.report.skipped == {
        "empty image cell": 1,
        "image stored as a path or URL, not as bytes": 1,
        "not an image": 1,
    }
    assert not [p for p in resolves(hub) if p.endswith(".png")]


def test_parquet_without_pyarrow_says_so(hub, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if not installed
    hub.add_files("alice/pq2", {"data/train.parquet": b"PAR1" + bytes(64) + b"PAR1"}, repo_type="dataset")
    with pytest.raises(DataError, match=r"parquet files; reading them needs pyarrow \(pip install pyarrow\)"):
        load_hub_dataset("alice/pq2", 16, 3)


# ---------------------------------------------------------------------------------------------
# the mixin's own from_pretrained / save_pretrained / push_to_hub (issue 14)


def test_mixin_push_to_hub_and_from_pretrained(hub, tmp_path):
    G = generator(11)
    G.push_to_hub("alice/mixin-gan", token=ALICE)
    files = hub.files("alice/mixin-gan")
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert ModelConfig.from_json(files["config.json"].decode()) == TINY
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "gan-lab" and card.data.pipeline_tag == "unconditional-image-generation"
    assert {"gan", "dcgan", "gan-lab"} <= set(card.data.tags)
    assert 'Generator.from_pretrained("alice/mixin-gan")' in card.text and "samples.png" not in card.text
    G2 = Generator.from_pretrained("alice/mixin-gan")
    assert isinstance(G2, Generator) and not G2.training and G2.config == TINY
    assert torch.equal(sample(G, range(6)), sample(G2, range(6)))
    G3 = load_model("alice/mixin-gan")  # the checked loader reads the mixin's folder too
    assert torch.equal(sample(G3, range(6)), sample(G, range(6)))
    # a pushed GAN Lab folder loads through the mixin as well
    push_to_hub(generator(12), "alice/lab-gan", token=ALICE)
    assert torch.equal(sample(Generator.from_pretrained("alice/lab-gan"), range(4)), sample(generator(12), range(4)))


def test_mixin_from_pretrained_refuses_oversized_weights(hub):
    big = b"\0" * (Generator.safetensors_bound(TINY) + 1)
    hub.add_files("bob/fat", {"config.json": TINY.to_json(), "model.safetensors": big})
    with pytest.raises(ModelLoadError, match=r"model.safetensors of bob/fat is [\d,]+ bytes, but its config.json"):
        Generator.from_pretrained("bob/fat")
    assert not [p for p in resolves(hub) if p.endswith("model.safetensors")]


# ---------------------------------------------------------------------------------------------
# bounded, anonymous reads (issue 15, item 2)


def test_oversized_weights_are_refused_before_download(hub):
    bound = Generator.safetensors_bound(TINY)
    hub.add_files("bob/huge", {"config.json": TINY.to_json(), "model.safetensors": b"\0" * (bound + 1)})
    with pytest.raises(ModelLoadError) as err:
        load_model("bob/huge")
    assert str(err.value) == (
        f"Hub repo bob/huge: model.safetensors is {bound + 1:,} bytes, but its config.json (16px, widths "
        f"G 8 / D 8, z 16) implies at most {bound:,} bytes; not downloading it"
    )
    got = resolves(hub)
    assert any(p.endswith("/config.json") for p in got), "the config is read to size the weights"
    assert not [p for p in got if p.endswith("model.safetensors")], "the weights' bytes were never requested"
    # within the config's bound but over the caller's limit (GAN_MAX_MODEL_MB on a Space)
    push_to_hub(generator(1), "alice/ok", token=ALICE)
    size = len(hub.files("alice/ok")["model.safetensors"])
    with pytest.raises(ModelLoadError, match=r"alice/ok: model.safetensors is .*; the limit here is 1,000 bytes"):
        load_model("alice/ok", max_bytes=1000)
    assert not [p for p in resolves(hub) if "alice/ok" in p and p.endswith("model.safetensors")]
    assert load_model("alice/ok", max_bytes=size).config == TINY


def test_repos_with_many_or_oversized_files_are_refused(hub):
    push_to_hub(generator(2), "alice/base", token=ALICE)
    model = {k: v for k, v in hub.files("alice/base").items() if k in ("config.json", "model.safetensors")}
    hub.add_files("bob/crowded", {**model, **{f"extra/{i}.txt": "x" for i in range(70)}})
    with pytest.raises(ModelLoadError, match=r"bob/crowded has 7\d files; a GAN Lab model has a handful \(at most 64"):
        load_model("bob/crowded")
    hub.add_files("bob/bigcard", {**model, "README.md": "x" * (2 << 20)})
    msg = r"bob/bigcard: README.md is 2.1 MB \(2,097,152 bytes\); GAN Lab accepts at most 1.0 MB"
    with pytest.raises(ModelLoadError, match=msg):
        load_model("bob/bigcard")
    assert not [p for p in resolves(hub) if "bob/" in p]


def test_anonymous_reads_never_use_the_environment_token(hub, tmp_path):
    push_to_hub(generator(4), "alice/private-gan", token=ALICE, private=True)
    hub.add_files("alice/private-faces", {f"{i}.png": png(i) for i in range(3)}, repo_type="dataset", private=True)
    with hub.patch_client(tmp_path / "space", token=ALICE):  # the Space owner's HF_TOKEN secret
        assert load_model("alice/private-gan").config == TINY  # token=None: huggingface_hub's default
        with pytest.raises(ModelLoadError, match="alice/private-gan was not found on the Hub") as err:
            load_model("alice/private-gan", revision="main", token=False)
        assert_secret(err.value)
        with pytest.raises(HubError, match="dataset repo alice/private-faces was not found"):
            load_images("hf://datasets/alice/private-faces", 16, 3, token=False)
        assert len(load_images("hf://datasets/alice/private-faces", 16, 3)) == 3


def test_load_images_reads_hub_datasets(hub):
    hub.add_files("alice/faces2", {f"a/{i}.png": png(i) for i in range(4)} | {"bad.png": b"x"}, repo_type="dataset")
    data = load_images("hf://datasets/alice/faces2", 16, 3)
    assert len(data) == 4 and data.report.skipped == {"not an image": 1}
    assert data.report.source == "hf://datasets/alice/faces2"
    both = load_files(["hf://datasets/alice/faces2"], 16, 1)
    assert both.images.shape == (4, 1, 16, 16)


def test_exploring_a_hub_model_writes_nothing_into_the_hub_cache(hub, tmp_path, monkeypatch):
    import gan.latent as L

    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    push_to_hub(generator(9), "alice/explore", token=ALICE)
    G = load_model("alice/explore")
    before = sorted(p.name for p in G.folder.iterdir())
    dirs = L.load_or_compute_directions(G, k=3, n_samples=256)
    assert sorted(p.name for p in G.folder.iterdir()) == before
    assert L.directions_cache_path(G, 3, n_samples=256).is_file() and dirs.vectors.shape == (3, TINY.z_dim)


def test_prune_hub_cache_bounds_gan_lab_models_on_disk(hub, tmp_path):
    from gan.hub import prune_hub_cache

    names = ["alice/p0", "alice/p1", "alice/p2"]
    for i, name in enumerate(names):
        push_to_hub(generator(20 + i), name, token=ALICE)
    hub.add_files("bob/other-lib", {"config.json": '{"hidden_size": 8}', "model.safetensors": b"\0" * 4096})
    snapshot_download("bob/other-lib")  # another library's model: never counted or deleted
    folders = [load_model(n).folder for n in names]
    for age, folder in enumerate(folders):  # p0 used longest ago, p2 most recently
        for f in folder.iterdir():
            blob = f.resolve()
            os.utime(blob, (1_000_000 + age * 1000, blob.stat().st_mtime))
    one = sum(f.resolve().stat().st_size for f in folders[0].iterdir())
    assert prune_hub_cache(10 * one) == []
    assert prune_hub_cache(int(2.5 * one)) == ["alice/p0"]  # the least recently used
    assert prune_hub_cache(int(1.5 * one), keep=["alice/p1"]) == ["alice/p2"]  # p1 is in use: kept
    assert prune_hub_cache(0, keep=["alice/p1"]) == []
    assert [f.exists() for f in folders] == [False, True, False]
    assert Path(snapshot_download("bob/other-lib", local_files_only=True)).is_dir()
