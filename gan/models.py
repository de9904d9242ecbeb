"""DCGAN-family generator and discriminator.

Depth follows `image_size`: the generator starts from a 4x4 map and doubles it `n_up` times;
the discriminator halves the image `n_up` times down to 4x4, then one 4x4 conv gives a logit.
Channel widths follow pytorch/examples' DCGAN (ngf*8 ... ngf), capped at 8x the base width.
"""

from __future__ import annotations

from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .config import ConfigError, ModelConfig

CARD_TAGS = ["gan", "dcgan", "pytorch", "unconditional-image-generation", "gan-lab"]


def _widths(base: int, n: int) -> list[int]:
    """Channel widths of n stages, widest first: base*min(2**(n-1-i), 8)."""
    return [base * min(2 ** (n - 1 - i), 8) for i in range(n)]


def init_weights(m: nn.Module) -> None:
    """DCGAN init: conv weights N(0, 0.02); BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _as_config(config: ModelConfig | dict[str, Any] | None, kwargs: dict[str, Any]) -> ModelConfig:
    if config is None:
        return ModelConfig(**kwargs)
    if kwargs:
        raise TypeError("pass either a config or keyword fields, not both")
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, dict):
        return ModelConfig.from_dict(config)
    raise ConfigError(f"config must be a ModelConfig or a dict, got {type(config).__name__}")


class Generator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gan-lab",
    tags=CARD_TAGS,
    pipeline_tag="unconditional-image-generation",
    license="mit",
):
    """z (B, z_dim) -> image (B, C, S, S) in [-1, 1].

    The config is validated before any layer is built, so an absurd config.json from someone else
    fails with a clear message instead of allocating memory.
    """

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__()
        cfg = _as_config(config, kwargs)
        self.config = cfg
        w = _widths(cfg.g_width, cfg.n_up)
        layers: list[nn.Module] = []
        if cfg.g_style == "deconv":
            # (B, z, 1, 1) -> (B, w0, 4, 4)
            layers += [nn.ConvTranspose2d(cfg.z_dim, w[0], 4, 1, 0, bias=False)]
            layers += [nn.BatchNorm2d(w[0]), nn.ReLU(True)]
            for cin, cout in zip(w[:-1], w[1:]):
                # (B, cin, s, s) -> (B, cout, 2s, 2s)
                layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]
                layers += [nn.BatchNorm2d(cout), nn.ReLU(True)]
            # (B, w[-1], S/2, S/2) -> (B, C, S, S)
            layers += [nn.ConvTranspose2d(w[-1], cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        else:  # upsample: nearest 2x + 3x3 conv; no checkerboard from overlapping strides
            layers += [nn.ConvTranspose2d(cfg.z_dim, w[0], 4, 1, 0, bias=False)]
            layers += [nn.BatchNorm2d(w[0]), nn.ReLU(True)]
            for cin, cout in zip(w[:-1], w[1:]):
                layers += [nn.Upsample(scale_factor=2, mode="nearest")]
                layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]
                layers += [nn.BatchNorm2d(cout), nn.ReLU(True)]
            layers += [nn.Upsample(scale_factor=2, mode="nearest")]
            layers += [nn.Conv2d(w[-1], cfg.channels, 3, 1, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: Any,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> Generator:
        """Load `model.safetensors` only (never pickle), strictly, on `map_location`."""
        import os

        from huggingface_hub import hf_hub_download
        from safetensors.torch import load_model

        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            path = os.path.join(model_id, "model.safetensors")
        else:
            path = hf_hub_download(
                model_id, "model.safetensors", revision=revision, cache_dir=cache_dir,
                force_download=force_download, local_files_only=local_files_only, token=token,
            )  # fmt: skip
        try:
            load_model(model, path, strict=strict, device=map_location)
        except RuntimeError as e:
            raise ConfigError(f"model.safetensors does not match config.json ({str(e).splitlines()[0]})") from None
        return model.eval()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"z must have shape (B, {self.config.z_dim}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])  # (B, z, 1, 1) -> (B, C, S, S)


class Discriminator(nn.Module):
    """image (B, C, S, S) in [-1, 1] -> logits (B,). No sigmoid: losses take logits."""

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__()
        cfg = _as_config(config, kwargs)
        self.config = cfg
        w = _widths(cfg.d_width, cfg.n_up)[::-1]  # narrowest first
        sn = spectral_norm if cfg.d_norm == "spectral" else (lambda m: m)
        layers: list[nn.Module] = []
        # (B, C, S, S) -> (B, w0, S/2, S/2); no norm on the first layer, as in DCGAN
        layers += [sn(nn.Conv2d(cfg.channels, w[0], 4, 2, 1, bias=False)), nn.LeakyReLU(0.2, True)]
        for cin, cout in zip(w[:-1], w[1:]):
            # (B, cin, s, s) -> (B, cout, s/2, s/2)
            layers += [sn(nn.Conv2d(cin, cout, 4, 2, 1, bias=False))]
            if cfg.d_norm == "batch":
                layers += [nn.BatchNorm2d(cout)]
            layers += [nn.LeakyReLU(0.2, True)]
        # (B, w[-1], 4, 4) -> (B, 1, 1, 1)
        layers += [sn(nn.Conv2d(w[-1], 1, 4, 1, 0, bias=False))]
        self.net = nn.Sequential(*layers)
        if cfg.d_norm == "spectral":
            # init the underlying weights; the parametrization normalises them on use
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.parametrizations.weight.original, 0.0, 0.02)
        else:
            self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()  # (B, 1, 1, 1) -> (B,)
