"""Batch augmentations on the device, drawn from an explicit torch.Generator (so a run and its
resume draw the same): random x-flips, the classic real-image policy, and DiffAugment (colour,
translation, cutout) applied to everything D sees."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _rand(g: torch.Generator, *shape: int, device: torch.device) -> torch.Tensor:
    return torch.rand(*shape, generator=g, device=g.device).to(device)


def xflip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    flip = _rand(g, x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(flip, x.flip(3), x)


def augment_classic(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Real-image augmentation of the cat seeds: flip, rotate ±10°, shift ±6%, zoom 0.9-1.1."""
    b = x.shape[0]
    x = xflip(x, g)
    r = _rand(g, b, 4, device=x.device) * 2 - 1  # (b, 4) in [-1, 1]
    ang = r[:, 0] * (10 * torch.pi / 180)
    zoom = 1.0 + 0.1 * r[:, 1]
    cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, 0.12 * r[:, 2]], 1), torch.stack([sin, cos, 0.12 * r[:, 3]], 1)], 1
    )  # (b, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def diffaugment(x: torch.Tensor, g: torch.Generator, cutout: float = 0.5, shift: float = 0.125) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) color, translation and cutout; differentiable in x."""
    b, c, h, w = x.shape
    dev = x.device
    # color: brightness, saturation, contrast
    r = _rand(g, 3, b, 1, 1, 1, device=dev)
    x = x + (r[0] - 0.5)
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (r[1] * 2) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - m) * (r[2] + 0.5) + m
    # translation by up to shift*size pixels, zero padded
    sh, sw = int(h * shift + 0.5), int(w * shift + 0.5)
    ty = (_rand(g, b, 1, 1, device=dev) * (2 * sh + 1)).long() - sh
    tx = (_rand(g, b, 1, 1, device=dev) * (2 * sw + 1)).long() - sw
    gb, gy, gx = torch.meshgrid(
        torch.arange(b, device=dev), torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij"
    )
    gy = (gy + ty + 1).clamp(0, h + 1)
    gx = (gx + tx + 1).clamp(0, w + 1)
    xp = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (b, h+2, w+2, c)
    x = xp[gb, gy, gx].permute(0, 3, 1, 2)  # (b, h, w, c) -> (b, c, h, w)
    # cutout: one square of cutout*size zeroed per image
    ch, cw = int(h * cutout + 0.5), int(w * cutout + 0.5)
    oy = (_rand(g, b, 1, 1, device=dev) * (h + 1 - ch % 2)).long()
    ox = (_rand(g, b, 1, 1, device=dev) * (w + 1 - cw % 2)).long()
    yy = torch.arange(h, device=dev).view(1, h, 1)
    xx = torch.arange(w, device=dev).view(1, 1, w)
    inside = ((yy - oy + ch // 2) >= 0) & ((yy - oy + ch // 2) < ch)
    inside = inside & ((xx - ox + cw // 2) >= 0) & ((xx - ox + cw // 2) < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)
