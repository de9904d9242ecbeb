"""Model and training configuration: dataclasses with defaults, validation and a JSON round trip.

A `ModelConfig` fully rebuilds the networks; a `TrainConfig` fully describes a run. Both are
validated on construction, so a bad value fails early with the field name and the allowed range,
before any tensor is allocated.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

G_STYLES = ("deconv", "upsample")
D_NORMS = ("batch", "spectral", "none")
LOSSES = ("bce", "hinge")
AUGMENTS = ("none", "classic", "diffaugment")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")
COMPILE = ("off", "on", "auto")
MAX_PARAMS = 150_000_000  # G + D; a 256 px model at width 64 has ~30M


class GanError(ValueError):
    """Any of GAN Lab's errors meant for the user as they are (bad config, data, model folder, Hub repo,
    checkpoint): the command line and the app catch this one type."""


class ConfigError(GanError):
    """A configuration value is out of range or of the wrong type."""


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {', '.join(choices)}")


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range; allowed {lo}..{hi}")


def _check_float(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if (value <= lo if lo_open else value < lo) or value > hi:
        bracket = "(" if lo_open else "["
        raise ConfigError(f"{name}={value} is out of range; allowed {bracket}{lo}, {hi}]")


class _JsonMixin:
    """to_dict / from_dict / to_json / from_json shared by both configs."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{cls.__name__}: not valid JSON ({e})") from None
        return cls.from_dict(d)

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class ModelConfig(_JsonMixin):
    """Architecture of the generator and discriminator (DCGAN family)."""

    image_size: int = 64  # power of two, 16..256; network depth follows it
    channels: int = 3  # 1 (grayscale) or 3 (RGB)
    z_dim: int = 100  # latent size
    g_width: int = 64  # ngf: channels of the generator's last hidden layer
    d_width: int = 64  # ndf: channels of the discriminator's first layer
    g_style: str = "deconv"  # deconv: ConvTranspose (pytorch/examples); upsample: nearest + conv
    d_norm: str = "batch"  # batch | spectral | none
    g_sle: bool = False  # skip-layer excitation in G (lightweight-gan / FastGAN): 4x4 -> 16x16, 8x8 -> 32x32, ...

    def __post_init__(self) -> None:
        _check_int("image_size", self.image_size, 16, 256)
        if self.image_size & (self.image_size - 1):
            raise ConfigError(f"image_size={self.image_size} must be a power of two: 16, 32, 64, 128 or 256")
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ConfigError(f"channels={self.channels!r} is not allowed; choose 1 or 3")
        _check_int("z_dim", self.z_dim, 2, 1024)
        _check_int("g_width", self.g_width, 4, 512)
        _check_int("d_width", self.d_width, 4, 512)
        _check_choice("g_style", self.g_style, G_STYLES)
        _check_choice("d_norm", self.d_norm, D_NORMS)
        if not isinstance(self.g_sle, bool):
            raise ConfigError(f"g_sle must be true or false, got {self.g_sle!r}")
        if self.g_sle and self.image_size < 32:
            raise ConfigError(
                f"g_sle needs image_size 32 or more (it gates 16x16 maps from 4x4 ones), got {self.image_size}"
            )
        n = self.n_params()
        if n > MAX_PARAMS:
            raise ConfigError(
                f"this model would have {n / 1e6:.0f}M parameters (g_width={self.g_width}, "
                f"d_width={self.d_width}, image_size={self.image_size}); the limit is {MAX_PARAMS / 1e6:.0f}M"
            )

    def n_params(self) -> int:
        """Parameter count of G + D, computed from the config alone (before any allocation)."""
        n = self.n_up
        gw = [self.g_width * min(2 ** (n - 1 - i), 8) for i in range(n)]
        k = 16 if self.g_style == "deconv" else 9
        g = self.z_dim * gw[0] * 16 + sum(a * b * k for a, b in zip(gw[:-1], gw[1:])) + gw[-1] * self.channels * k
        dw = [self.d_width * min(2**i, 8) for i in range(n)]
        d = self.channels * dw[0] * 16 + sum(a * b * 16 for a, b in zip(dw[:-1], dw[1:])) + dw[-1] * 16
        sle = sum(a * b * 16 + b * b for a, b in zip(gw, gw[2:])) if self.g_sle else 0
        return g + d + sle + 4 * (sum(gw) + sum(dw))

    def to_dict(self) -> dict[str, Any]:
        """The fields; `g_sle` only when on, so a plain DCGAN's config.json (and with it the weights
        hash that keys its cached directions and ONNX file) is what it was before the field existed."""
        d = super().to_dict()
        if not d["g_sle"]:
            del d["g_sle"]
        return d

    @property
    def n_up(self) -> int:
        """Number of 2x up-sampling stages from 4x4 to image_size."""
        return int(math.log2(self.image_size)) - 2


@dataclass(frozen=True)
class TrainConfig(_JsonMixin):
    """Everything about a training run except the architecture and the data."""

    batch_size: int = 64
    steps: int = 2000  # generator updates; the run stops here (epochs, if set, may stop it sooner)
    epochs: int | None = None
    max_minutes: float = 0.0  # stop after this much wall-clock training time; 0 = no limit
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    cooldown: float = 0.0  # the last fraction of `steps` (or of max_minutes, if first) at cooldown_lr x lr; 0 = off
    cooldown_lr: float = 0.25
    beta1: float = 0.5
    beta2: float = 0.999
    loss: str = "bce"  # bce (non-saturating) | hinge
    r1_gamma: float = 0.0  # R1 penalty gamma/2 * |grad D(x)|^2 on real images; 0 = off
    r1_every: int = 16  # lazy R1: every N steps, scaled by N (StyleGAN2)
    ema_decay: float = 0.999  # EMA of G's weights; 0 turns it off
    augment: str = "diffaugment"  # none | classic (flip, rotate, shift, zoom) | diffaugment
    xflip: bool = True  # mirror real images at random (off for digits and text)
    precision: str = "auto"  # auto (bf16 only where native and measured faster) | fp32 | bf16 (autocast)
    seed: int = 0
    sample_every: int = 100
    checkpoint_every: int = 500
    log_every: int = 10
    device: str = "auto"  # auto | cpu | cuda | mps
    compile: str = "off"  # torch.compile: off | on | auto (on for runs long enough to repay it)
    threads: int = 0  # CPU threads for torch; 0 = every core this process may use (set explicitly)
    n_sample: int = 64  # images in the fixed-noise sample grid
    metric_every: int = 0  # cheap SWD on a small sample every N steps; 0 = off
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (e.g. data source)

    def __post_init__(self) -> None:
        _check_int("batch_size", self.batch_size, 1, 4096)
        _check_int("steps", self.steps, 1, 10_000_000)
        if self.epochs is not None:
            _check_int("epochs", self.epochs, 1, 1_000_000)
        _check_float("max_minutes", self.max_minutes, 0.0, 1e6)
        _check_float("lr_g", self.lr_g, 0.0, 1.0, lo_open=True)
        _check_float("lr_d", self.lr_d, 0.0, 1.0, lo_open=True)
        _check_float("cooldown", self.cooldown, 0.0, 0.99)
        _check_float("cooldown_lr", self.cooldown_lr, 0.0, 1.0, lo_open=True)
        _check_float("beta1", self.beta1, 0.0, 0.999)
        _check_float("beta2", self.beta2, 0.0, 0.99999)
        _check_choice("loss", self.loss, LOSSES)
        _check_float("r1_gamma", self.r1_gamma, 0.0, 1e4)
        _check_int("r1_every", self.r1_every, 1, 1_000_000)
        _check_float("ema_decay", self.ema_decay, 0.0, 0.99999)
        _check_choice("augment", self.augment, AUGMENTS)
        if not isinstance(self.xflip, bool):
            raise ConfigError(f"xflip must be true or false, got {self.xflip!r}")
        _check_choice("precision", self.precision, PRECISIONS)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("sample_every", self.sample_every, 0, 10_000_000)
        _check_int("checkpoint_every", self.checkpoint_every, 0, 10_000_000)
        _check_int("log_every", self.log_every, 1, 10_000_000)
        _check_choice("device", self.device, DEVICES)
        _check_choice("compile", self.compile, COMPILE)
        _check_int("threads", self.threads, 0, 1024)
        _check_int("n_sample", self.n_sample, 1, 256)
        _check_int("metric_every", self.metric_every, 0, 10_000_000)
        if not isinstance(self.extra, dict):
            raise ConfigError("extra must be a JSON object")


def save_json(obj: dict[str, Any], path: str | Path) -> None:
    """Write JSON atomically (temporary name, then rename)."""
    from .fileio import atomic_write_json

    atomic_write_json(path, obj)
