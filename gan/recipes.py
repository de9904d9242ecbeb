"""Named training recipes: one place for the settings the app, the CLI (`--recipe`) and the
quality benchmark share.

    model_cfg, train_cfg = get_recipe("cpu").configs(image_size=64, channels=3, steps=3000)

A recipe is a set of ModelConfig and TrainConfig fields; everything it does not set keeps the
config's default, and keyword overrides win over the recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, ModelConfig, TrainConfig


def ema_decay_for(steps: int) -> float:
    """EMA decay for a run of `steps`: a half-life of a tenth of the run (0.9 .. 0.9999), so a
    short CPU run is not averaged with the noise of its first steps."""
    return float(min(0.9999, max(0.9, 0.5 ** (1.0 / max(1.0, steps / 10)))))


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    ema_auto: bool = False  # EMA decay from the run's length (ema_decay_for) unless given

    def configs(self, **overrides: Any) -> tuple[ModelConfig, TrainConfig]:
        """(ModelConfig, TrainConfig) of this recipe; overrides name fields of either config."""
        m_names = {f.name for f in dataclasses.fields(ModelConfig)}
        t_names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(overrides) - m_names - t_names)
        if unknown:
            raise ConfigError(f"unknown field(s) {', '.join(unknown)}")
        m = {**self.model, **{k: v for k, v in overrides.items() if k in m_names}}
        t = {**self.train, **{k: v for k, v in overrides.items() if k in t_names}}
        if self.ema_auto and "ema_decay" not in overrides:
            t["ema_decay"] = ema_decay_for(t.get("steps", TrainConfig.steps))
        return ModelConfig(**m), TrainConfig(**t)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "cpu",
            "GAN Lab's CPU recipe: a lighter DCGAN (widths 32), batch 32, DiffAugment, x-flips, "
            "EMA with a half-life of a tenth of the run, precision auto",
            model={"g_width": 32, "d_width": 32},
            train={"batch_size": 32, "augment": "diffaugment", "xflip": True, "precision": "auto"},
            ema_auto=True,
        ),
        Recipe(
            "textbook",
            "pytorch/examples dcgan: widths 64, batch 128, BCE, BatchNorm, Adam 2e-4 (0.5, 0.999), "
            "no augmentation, no EMA, fp32",
            model={"g_width": 64, "d_width": 64, "g_style": "deconv", "d_norm": "batch"},
            train={
                "batch_size": 128,
                "loss": "bce",
                "lr_g": 2e-4,
                "lr_d": 2e-4,
                "beta1": 0.5,
                "beta2": 0.999,
                "augment": "none",
                "xflip": False,
                "ema_decay": 0.0,
                "precision": "fp32",
            },  # fmt: skip
        ),
    )
}
DEFAULT_RECIPE = "cpu"


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"recipe {name!r} is unknown; choose one of {', '.join(RECIPES)}") from None


# ---------------------------------------------------------------------------------------------
# run-length policy: how often a run logs, previews, checkpoints and measures, from its length


def auto_every(steps: int, preview_every: int = 0) -> tuple[int, int, int]:
    """(log_every, sample_every, checkpoint_every) for a run of `steps`: 100+ plot points, about
    20 previews (or one every `preview_every` steps when that is > 0), about 10 checkpoints
    (100..1000 steps apart)."""
    log_every = max(1, min(10, steps // 100))
    sample_every = int(preview_every) if preview_every and int(preview_every) > 0 else max(5, steps // 20)
    checkpoint_every = min(1000, max(100, steps // 10))
    return log_every, sample_every, checkpoint_every


def auto_metric_every(steps: int) -> int:
    """Steps between the cheap SWD measurements of a run: about ten per run, at least 100 steps
    apart; none for runs under 300 steps (a few seconds of training: nothing to measure yet)."""
    return 0 if steps < 300 else max(100, steps // 10)


def schedule(steps: int, preview_every: int = 0) -> dict[str, int]:
    """The TrainConfig fields auto_every and auto_metric_every choose for a run of `steps`."""
    log_every, sample_every, checkpoint_every = auto_every(steps, preview_every)
    return {
        "log_every": log_every,
        "sample_every": sample_every,
        "checkpoint_every": checkpoint_every,
        "metric_every": auto_metric_every(steps),
    }


APP_RUN = {"image_size": 32, "steps": 1500, "lr": 2e-4, "z_dim": 100}
"""The app's first run besides the CPU recipe's fields: 32 px on the built-in shapes shows its first
shapes at about step 1,500 (2-3 minutes on 2 idle cores at fp32)."""
