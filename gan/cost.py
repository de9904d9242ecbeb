"""What a training step costs, before a run starts: multiply-accumulates counted from the model's
shapes (on PyTorch's `meta` device: no memory, no compute), scaled by a step of a small reference
model timed once per process on this machine. The app refuses settings that cannot make their
steps within a Space's time limit, and warns about runs that the limit will cut short.

    est = StepCost.measure()           # ~0.3 s, once
    est.seconds(model_cfg, batch=64)   # seconds per step on one thread (an estimate)
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig, TrainConfig
from .models import Discriminator, Generator

REFERENCE = ModelConfig(image_size=32, channels=3, z_dim=100, g_width=32, d_width=32)  # the app's first run
REFERENCE_BATCH = 32


def forward_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of `module` on `x` (convolutions and linear layers)."""
    total = 0

    def hook(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.ConvTranspose2d):
            total += inputs[0].numel() * m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Conv2d):
            total += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return total


@functools.lru_cache(maxsize=64)
def step_macs(cfg: ModelConfig, batch: int) -> int:
    """Multiply-accumulates of one training step (one D and one G update) at `batch`: a backward
    pass costs about two forwards; D sees real and fake images in its step and fakes in G's."""
    with torch.device("meta"):
        G, D = Generator(cfg), Discriminator(cfg)
        g = forward_macs(G, torch.zeros(1, cfg.z_dim))
        d = forward_macs(D, torch.zeros(1, cfg.channels, cfg.image_size, cfg.image_size))
    return batch * (3 * g + 3 * 3 * d)


@dataclass(frozen=True)
class StepCost:
    """Seconds per multiply-accumulate of a training step on one thread of this machine."""

    s_per_mac: float

    @classmethod
    def measure(cls, steps: int = 3) -> StepCost:
        """Time the reference step on one thread (after a warm-up step); about 0.3 s."""
        from .train import Trainer

        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            tr = Trainer(REFERENCE, TrainConfig(batch_size=REFERENCE_BATCH, ema_decay=0.0, precision="fp32"),
                         torch.device("cpu"))  # fmt: skip
            real = torch.randint(0, 256, (REFERENCE_BATCH, 3, 32, 32), dtype=torch.uint8)
            tr.step(real)
            t0 = time.perf_counter()
            for _ in range(steps):
                tr.step(real)
            dt = (time.perf_counter() - t0) / steps
        finally:
            torch.set_num_threads(old)
        return cls(dt / step_macs(REFERENCE, REFERENCE_BATCH))

    def seconds(self, cfg: ModelConfig, batch: int) -> float:
        return self.s_per_mac * step_macs(cfg, batch)


@functools.cache
def machine_cost() -> StepCost:
    """This machine's StepCost, measured on first use."""
    return StepCost.measure()
