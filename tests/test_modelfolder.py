"""Model folders on disk: atomic saves under concurrent readers, safe reads, the mixin on folders."""

from __future__ import annotations

import threading

import pytest
import torch
from huggingface_hub import ModelCard

from gan import Generator, ModelConfig, ModelLoadError, fileio, load_model, save_model
from gan.card import CARD_TAGS
from gan.modelfolder import load_folder

A = ModelConfig(image_size=16, z_dim=16, g_width=8, d_width=8)
B = ModelConfig(image_size=16, z_dim=16, g_width=16, d_width=8)  # other shapes: a mix of A and B cannot load


def gen(cfg: ModelConfig, seed: int) -> Generator:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Generator(cfg).eval()


def test_readers_see_the_old_model_or_the_new_never_half(tmp_path):
    folder = tmp_path / "model"
    models = [gen(A, 1), gen(B, 2)]
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = [m(z) for m in models]
    save_model(models[0], folder)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen = [0, 0]

    def read() -> None:
        while not stop.is_set():
            try:
                G = load_model(folder)
                with torch.no_grad():
                    out = G(z)
                which = [i for i, e in enumerate(expected) if e.shape == out.shape and torch.equal(e, out)]
                assert which, "a model that is neither the old nor the new one"
                seen[which[0]] += 1
            except BaseException as e:  # noqa: BLE001 - any failure of a reader is the finding
                errors.append(e)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(16):
            save_model(models[i % 2], folder)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, f"{type(errors[0]).__name__}: {errors[0]}"
    assert seen[0] > 0 and seen[1] > 0, seen
    # replaced versions wait OLD_GRACE_S for readers still inside them, then the next save sweeps them
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left[-1] == "model" and all(n.startswith(".model.") and n.endswith(".old") for n in left[:-1]), left
    assert not list(tmp_path.glob("*.tmpdir")), "no temporary folders left behind"
    fileio.OLD_GRACE_S = -1
    try:
        save_model(Generator(ModelConfig(image_size=16, channels=3, z_dim=16, g_width=8)), tmp_path / "model")
    finally:
        fileio.OLD_GRACE_S = 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "samples.png"]


def test_save_model_never_replaces_a_folder_of_other_files(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="holds files that are not part of a model folder \\(checkpoint.pt\\)"):
        save_model(gen(A, 0), tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == b"precious"


def test_local_weights_larger_than_the_config_implies_are_refused(tmp_path):
    save_model(gen(A, 0), tmp_path / "m")
    with open(tmp_path / "m" / "model.safetensors", "ab") as f:
        f.write(b"\0" * (Generator.safetensors_bound(A) + 1))
    with pytest.raises(ModelLoadError, match=r"model.safetensors in folder .* implies at most [\d,]+; refusing"):
        load_folder(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"image_size": 16, "g_width": 1000000}')
    with pytest.raises(ModelLoadError, match="is not a GAN Lab model: its config.json does not fit"):
        load_model(tmp_path / "m")


def test_safetensors_bound_is_close_to_real_files(tmp_path):
    for cfg in (A, B, ModelConfig()):  # the default is 64 px, widths 64
        G = Generator(cfg)
        G.save_pretrained(tmp_path / "x")
        size = (tmp_path / "x" / "model.safetensors").stat().st_size
        assert size <= Generator.safetensors_bound(cfg) <= size * 1.02 + (64 << 10)


def test_mixin_save_and_from_pretrained_on_folders(tmp_path):
    G = gen(A, 5)
    G.save_pretrained(tmp_path / "mixin")
    assert sorted(p.name for p in (tmp_path / "mixin").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert ModelConfig.from_json((tmp_path / "mixin" / "config.json").read_text()) == A
    card = ModelCard.load(tmp_path / "mixin" / "README.md")
    assert card.data.library_name == "gan-lab" and set(CARD_TAGS) <= set(card.data.tags)
    for folder in (tmp_path / "mixin", save_model(G, tmp_path / "lab")):
        G2 = Generator.from_pretrained(folder)
        assert isinstance(G2, Generator) and G2.config == A and not G2.training
        z = torch.randn(3, 16)
        with torch.no_grad():
            assert torch.equal(G(z), G2(z))
        assert load_model(folder).config == A
    with pytest.raises(TypeError, match="g_width differ from config.json"):
        Generator.from_pretrained(tmp_path / "mixin", g_width=32)


def test_generator_from_pretrained_shipped_weights():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "weights" / "cats64"
    G = Generator.from_pretrained(shipped)
    G2 = load_model(shipped)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = G(z)
        assert img.shape == (2, 3, 64, 64) and torch.equal(img, G2(z))
    assert img.std() > 0.1  # trained weights, not a fresh init's near-constant output


def test_card_names_every_training_setting_that_is_on():
    from gan.card import model_card
    from gan.config import ModelConfig, TrainConfig

    def line(**kw):
        return next(ln for ln in model_card(ModelConfig(), train_cfg=TrainConfig(**kw)).splitlines() if "- batch" in ln)

    on = line(cooldown=0.25, cooldown_lr=0.25, r1_gamma=0.1, xflip=True)
    assert "x0.25 over the last 25% of the steps" in on and "R1 gamma 0.1 every 16 steps" in on and "x-flips" in on
    capped = line(cooldown=0.25, max_minutes=30)
    assert "x0.25 over the last 25% of the steps or of the time limit, whichever came first" in capped
    off = line(xflip=False)
    assert "last" not in off and "R1" not in off and "x-flips" not in off
