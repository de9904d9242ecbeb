"""DCGAN-family generator and discriminator.

Depth follows `image_size`: the generator starts from a 4x4 map and doubles it `n_up` times;
the discriminator halves the image `n_up` times down to 4x4, then one 4x4 conv gives a logit.
Channel widths follow pytorch/examples' DCGAN (ngf*8 ... ngf), capped at 8x the base width.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .card import CARD_METADATA, CARD_TAGS, model_card
from .config import ConfigError, GanError, ModelConfig


class ModelLoadError(GanError):
    """A model folder or repo cannot be loaded; the message says why and what to do."""


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


def skip_layer_excitation(cin: int, cout: int) -> nn.Sequential:
    """lightweight-gan's SLE: a small map (B, cin, s, s) -> channel gates (B, cout, 1, 1) in (0, 1),
    which multiply a map four times larger."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(4),  # (B, cin, s, s) -> (B, cin, 4, 4)
        nn.Conv2d(cin, cout, 4, 1, 0, bias=False),  # -> (B, cout, 1, 1)
        nn.LeakyReLU(0.1, True),
        nn.Conv2d(cout, cout, 1, 1, 0, bias=False),
        nn.Sigmoid(),
    )


def run_generator(layers: nn.Sequential, sle: nn.ModuleList, z: torch.Tensor, upto: int | None = None) -> torch.Tensor:
    """z (B, z_dim) -> the image, or with `upto` the output of ReLU block number `upto` (0 = 4x4).

    With skip-layer excitation, block i >= 2 is gated by SLE(block i - 2), as in lightweight-gan.
    Generator.forward, latent directions and the ONNX export (whose BatchNorms are folded into
    `layers`) all run G through this one function (a plain loop: torch.compile traces it whole).
    """
    h = z[:, :, None, None]  # (B, z) -> (B, z, 1, 1)
    blocks: list[torch.Tensor] = []  # the ReLU blocks' outputs, kept only when gates read them
    i = -1
    for m in layers:
        h = m(h)
        if isinstance(m, nn.ReLU):
            i += 1
            if len(sle) and i >= 2:
                h = h * sle[i - 2](blocks[i - 2])  # (B, c, s, s) * (B, c, 1, 1)
            if i == upto:
                return h
            if len(sle):
                blocks.append(h)
    return h


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


class Generator(nn.Module, PyTorchModelHubMixin, tags=list(CARD_TAGS), **CARD_METADATA):
    """z (B, z_dim) -> image (B, C, S, S) in [-1, 1].

    The config is validated before any layer is built, so an absurd config.json from someone else
    fails with a clear message instead of allocating memory.

    huggingface_hub's mixin gives `Generator.from_pretrained(folder or "user/name")`,
    `G.save_pretrained(folder)` and `G.push_to_hub("user/name")`: config.json is the ModelConfig,
    weights are model.safetensors only (never pickle, loaded strictly), and the card is GAN Lab's
    (gan.card). For repos from strangers prefer `gan.load_model`, which checks the repo's file
    sizes before downloading anything.
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
        # skip-layer excitation: gates for blocks 2.. (16x16 and up) from blocks 0.. (4x4 and up)
        self.sle = nn.ModuleList([skip_layer_excitation(a, b) for a, b in zip(w, w[2:])] if cfg.g_sle else [])
        self.apply(init_weights)

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    # --- huggingface_hub mixin hooks ---------------------------------------------------------

    @staticmethod
    def weights_bytes(cfg: ModelConfig) -> int:
        """Bytes of G's tensors in float32 (parameters and buffers), from the config alone: the
        generator is built on the `meta` device, which allocates nothing."""
        with torch.device("meta"):
            G = Generator(cfg)
        return sum(t.numel() * (4 if t.is_floating_point() else t.element_size()) for t in G.state_dict().values())

    @classmethod
    def safetensors_bound(cls, cfg: ModelConfig) -> int:
        """Largest model.safetensors a generator of `cfg` can have: float32 tensors, plus the JSON
        header (about 150 bytes a tensor) and a margin of 1% + 64 KiB."""
        return math.ceil(cls.weights_bytes(cfg) * 1.01) + (64 << 10)

    def _save_pretrained(self, save_directory: Path) -> None:
        """config.json (this ModelConfig) and model.safetensors (float32, CPU)."""
        from safetensors.torch import save_file

        (Path(save_directory) / "config.json").write_text(self.config.to_json() + "\n")
        state = {
            k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous()
            for k, v in self.state_dict().items()
        }
        save_file(state, str(Path(save_directory) / "model.safetensors"))

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """GAN Lab's card (gan.card.model_card); `repo_id` is put in its usage lines."""
        return ModelCard(model_card(self.config, samples=False, **kwargs))

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """The mixin's push (config.json, model.safetensors, README.md) with `repo_id` in the card."""
        card_kwargs = dict(kwargs.pop("model_card_kwargs", None) or {})
        card_kwargs.setdefault("repo_id", repo_id)
        return super().push_to_hub(repo_id, model_card_kwargs=card_kwargs, **kwargs)

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
        """Build from config.json (validated first), then load `model.safetensors` only (never
        pickle), strictly, on `map_location`.

        The mixin passes config.json both as `config` and as keyword fields (our __init__ takes
        **kwargs); the fields that repeat the config are dropped here, any other is an error.
        """
        from huggingface_hub import HfApi, hf_hub_download
        from safetensors.torch import load_model

        config = model_kwargs.pop("config", None)
        if isinstance(config, dict):
            config = {k: v for k, v in config.items() if not k.startswith("_")}
            for k in list(model_kwargs):
                if k in config and model_kwargs[k] == config[k] or k.startswith("_"):
                    del model_kwargs[k]
        fields = {f.name for f in dataclasses.fields(ModelConfig)}
        if config is not None and model_kwargs:
            clash = sorted(set(model_kwargs) & fields)
            raise TypeError(
                f"{', '.join(clash)} differ from config.json; a pretrained model keeps its config"
                if clash
                else f"unexpected arguments: {', '.join(sorted(model_kwargs))}"
            )
        cfg = _as_config(config, {} if config is not None else model_kwargs)
        if os.path.isdir(model_id):
            path = os.path.join(model_id, "model.safetensors")
            if not os.path.isfile(path):
                raise ModelLoadError(f"{model_id} has no model.safetensors (GAN Lab never loads pickle weights)")
            size = os.path.getsize(path)
        else:
            size = None
            if not local_files_only:  # the size from the Hub API, before the bytes
                infos = HfApi().get_paths_info(model_id, ["model.safetensors"], revision=revision, token=token)
                size = infos[0].size if infos else None
                if not infos:
                    raise ModelLoadError(f"{model_id} has no model.safetensors (GAN Lab never loads pickle weights)")
            bound = cls.safetensors_bound(cfg)
            if size is not None and size > bound:
                raise ModelLoadError(
                    f"model.safetensors of {model_id} is {size:,} bytes, but its config.json implies at most "
                    f"{bound:,}; not downloading it"
                )
            path = hf_hub_download(
                model_id, "model.safetensors", revision=revision, cache_dir=cache_dir,
                force_download=force_download, local_files_only=local_files_only, token=token,
            )  # fmt: skip
            size = os.path.getsize(path)
        if size > cls.safetensors_bound(cfg):
            raise ModelLoadError(f"model.safetensors of {model_id} is {size:,} bytes, more than config.json implies")
        model = cls(cfg)
        try:
            load_model(model, path, strict=strict, device=str(map_location))
        except RuntimeError as e:
            raise ConfigError(f"model.safetensors does not match config.json ({str(e).splitlines()[0]})") from None
        return model.eval()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"z must have shape (B, {self.config.z_dim}), got {tuple(z.shape)}")
        return run_generator(self.net, self.sle, z)  # (B, z) -> (B, C, S, S)


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
