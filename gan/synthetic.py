"""Synthetic training data: coloured shapes on plain backgrounds (a small GAN learns them within a
minute on CPU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .arrays import _luma


def make_synthetic(n: int = 2048, size: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Coloured circles, squares and triangles on plain backgrounds: uint8 (n, C, size, size).

    Drawn at 2x and box-filtered down for smooth edges. The same seed gives the same set.
    """
    g = torch.Generator().manual_seed(seed)
    s2 = size * 2
    yy, xx = torch.meshgrid(torch.arange(s2), torch.arange(s2), indexing="ij")
    yy = (yy.float() + 0.5) / s2  # (s2, s2) in (0, 1)
    xx = (xx.float() + 0.5) / s2
    palette = torch.tensor(
        [[230, 57, 70], [244, 162, 97], [233, 196, 106], [42, 157, 143], [38, 70, 83],
         [69, 123, 157], [168, 218, 220], [241, 250, 238], [131, 56, 236], [255, 190, 11]],
        dtype=torch.float32,
    )  # fmt: skip
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for start in range(0, n, 256):
        b = min(256, n - start)
        bg_i = torch.randint(0, len(palette), (b,), generator=g)
        fg_i = (bg_i + torch.randint(1, len(palette), (b,), generator=g)) % len(palette)
        kind = torch.randint(0, 3, (b,), generator=g)
        cx, cy = (0.3 + 0.4 * torch.rand(2, b, 1, 1, generator=g)).unbind(0)
        r = 0.15 + 0.15 * torch.rand(b, 1, 1, generator=g)
        dx, dy = xx - cx, yy - cy  # (b, s2, s2)
        circle = dx**2 + dy**2 <= r**2
        square = (dx.abs() <= r * 0.85) & (dy.abs() <= r * 0.85)
        # upward triangle: below the two slanted edges, above the base
        tri = (dy <= r * 0.7) & (dy >= -r) & (dx.abs() <= (dy + r) * 0.6)
        mask = torch.where(kind.view(b, 1, 1) == 0, circle, torch.where(kind.view(b, 1, 1) == 1, square, tri))
        img = torch.where(mask[:, None], palette[fg_i].view(b, 3, 1, 1), palette[bg_i].view(b, 3, 1, 1))
        img = F.avg_pool2d(img, 2)  # (b, 3, s2, s2) -> (b, 3, size, size)
        out[start : start + b] = (img + 0.5).clamp(0, 255).to(torch.uint8)
    return _luma(out) if channels == 1 else out
