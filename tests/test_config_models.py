import pytest
import torch

from gan import ConfigError, Discriminator, Generator, ModelConfig, TrainConfig


@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("style", ["deconv", "upsample"])
def test_generator_and_discriminator_shapes(size, channels, style):
    cfg = ModelConfig(image_size=size, channels=channels, z_dim=8, g_width=4, d_width=4, g_style=style)
    G, D = Generator(cfg), Discriminator(cfg)
    x = G(torch.randn(3, 8))
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (3,)


@pytest.mark.parametrize("norm", ["batch", "spectral", "none"])
def test_discriminator_returns_logits(norm):
    cfg = ModelConfig(image_size=16, z_dim=8, g_width=4, d_width=4, d_norm=norm)
    D = Discriminator(cfg)
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(50)  # large weights: a sigmoid output would saturate inside [0, 1]
        out = D(torch.rand(8, 3, 16, 16) * 2 - 1)
    assert out.dtype == torch.float32 and out.shape == (8,)
    assert (out < 0).any() or (out > 1).any(), "D must return logits, not probabilities"


def test_dcgan_init():
    G = Generator(ModelConfig(image_size=32, g_width=32))
    w = G.net[3].weight
    assert abs(w.std().item() - 0.02) < 0.003 and abs(w.mean().item()) < 0.002


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"image_size": 100}, "power of two"),
        ({"image_size": 8}, "16..256"),
        ({"channels": 2}, "choose 1 or 3"),
        ({"g_style": "pixelshuffle"}, "deconv, upsample"),
        ({"z_dim": "100"}, "must be an integer"),
        ({"d_norm": "layer"}, "batch, spectral, none"),
        ({"g_sle": 1}, "true or false"),
        ({"g_sle": True, "image_size": 16}, "needs image_size 32"),
    ],
)
def test_model_config_errors_name_the_field(kw, words):
    with pytest.raises(ConfigError) as e:
        ModelConfig(**kw)
    assert list(kw)[0] in str(e.value) and words in str(e.value)


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"steps": -5}, "steps=-5 is out of range"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"lr_g": 0.0}, "lr_g=0.0 is out of range"),
        ({"lr_d": float("nan")}, "lr_d must be finite"),
        ({"loss": "wgan"}, "bce, hinge"),
        ({"precision": "fp16"}, "fp32, bf16"),
        ({"augment": "mixup"}, "none, classic, diffaugment"),
    ],
)
def test_train_config_errors(kw, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**kw)


def test_skip_layer_excitation_gates_the_larger_maps(tmp_path):
    """g_sle: blocks 16x16 and 32x32 are gated from 4x4 and 8x8; the gates change the image, their
    parameters are counted by n_params (the size bound of a stranger's weights), and a saved model
    loads back with them."""
    from gan import load_model, save_model

    cfg = ModelConfig(image_size=64, z_dim=8, g_width=4, d_width=4, g_sle=True)
    plain = ModelConfig(image_size=64, z_dim=8, g_width=4, d_width=4)
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    with torch.no_grad():
        for m in G.net:
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.mul_(10)  # a fresh G in eval mode draws flat grey; larger weights give real images
    assert len(G.sle) == 2 and len(Generator(plain).sle) == 0
    n_sle = sum(p.numel() for p in G.sle.parameters())
    assert n_sle > 0 and cfg.n_params() - plain.n_params() == n_sle
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = G(z)
        G.sle[1][-2].weight.mul_(100)  # the 32x32 block's gates, far from their start
        assert (G(z) - out).abs().max() > 1e-3
        G.sle[1][-2].weight.div_(100)
    # written only when on: a plain DCGAN's config.json, and so its weights hash, is as before
    assert '"g_sle": true' in cfg.to_json() and "g_sle" not in plain.to_json()
    save_model(G, tmp_path / "m")
    H = load_model(tmp_path / "m")
    assert H.config.g_sle and torch.equal(H(z), out)


def test_json_round_trip_and_unknown_fields():
    m = ModelConfig(image_size=32, channels=1, g_style="upsample", d_norm="spectral")
    assert ModelConfig.from_json(m.to_json()) == m
    t = TrainConfig(steps=7, loss="hinge", epochs=3, extra={"data": "x"})
    assert TrainConfig.from_json(t.to_json()) == t
    with pytest.raises(ConfigError, match="unknown field"):
        ModelConfig.from_dict({"image_size": 32, "bogus": 1})
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.from_json("{nope")
