"""Seeds -> latents -> images; lerp / slerp; interpolation frames; grids; PNG, GIF and MP4.

One seed always gives the same latent (its own `torch.Generator`), so a seed shown in the app
can be carried anywhere. Images are uint8 (N, C, H, W) tensors on the CPU.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .data import to_uint8
from .fileio import atomic_path, atomic_write_bytes

MAX_SEED = 2**32 - 1


def latent(seed: int, z_dim: int) -> torch.Tensor:
    """One seed -> one z of shape (z_dim,), N(0, 1), independent of any global RNG state."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(z_dim, generator=g)


def latents(seeds: Sequence[int], z_dim: int, truncation: float = 1.0) -> torch.Tensor:
    """Seeds -> (N, z_dim). Truncation psi < 1 pulls z towards the mean (0): fewer odd samples."""
    if not 0.0 <= truncation <= 2.0:
        raise ValueError(f"truncation must be in 0..2, got {truncation}")
    return torch.stack([latent(s, z_dim) for s in seeds]) * truncation


def _device_of(G: nn.Module) -> torch.device:
    return next(G.parameters()).device


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """z (N, z_dim) -> uint8 images (N, C, H, W) on the CPU; G is put in eval mode."""
    G.eval()
    dev = _device_of(G)
    out = [to_uint8(G(chunk.to(dev))).cpu() for chunk in z.split(batch)]
    return torch.cat(out)


def sample(G: nn.Module, seeds: Sequence[int], truncation: float = 1.0) -> torch.Tensor:
    """Seeds -> uint8 images (N, C, H, W)."""
    return generate(G, latents(seeds, G.z_dim, truncation))


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Linear interpolation; a 1-D t of length T gives (T, z_dim)."""
    t = torch.as_tensor(t, dtype=a.dtype)
    if t.ndim == 1:
        t = t[:, None]  # (T,) -> (T, 1) to broadcast over z
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the last dim; falls back to lerp for (anti)parallel z."""
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    dot = (an * bn).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    t = torch.as_tensor(t, dtype=a.dtype)
    if t.ndim == 1:
        t = t[:, None]  # (T,) -> (T, 1) to broadcast over z
    small = so.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(so), so)
    out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe
    return torch.where(small, lerp(a, b, t), out)


def interpolate(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, mode: str = "slerp") -> torch.Tensor:
    """a -> b at t ((N, z_dim) or (z_dim,) ends; t a float or (T,)): slerp or lerp. The ends are
    exact: t = 0 gives a and t = 1 gives b bit for bit, so a walk starts and ends on its seeds."""
    if mode not in ("slerp", "lerp"):
        raise ValueError(f"mode must be 'slerp' or 'lerp', got {mode!r}")
    z = slerp(a, b, t) if mode == "slerp" else lerp(a, b, t)
    tt = torch.as_tensor(t, dtype=a.dtype)
    if tt.ndim == 1:
        tt = tt[:, None]  # (T,) -> (T, 1) to broadcast over z
    return torch.where(tt == 0, a, torch.where(tt == 1, b, z))


def walk_times(n_frames: int, *, loop: bool = False) -> torch.Tensor:
    """The t of each frame of a walk, (T,): evenly 0 -> 1 (both ends included), or with `loop`
    eased there and back, t = (1 - cos(2 pi k / T)) / 2: 0 -> 1 -> 0 with slow turns and no frame
    repeated where the animation wraps around."""
    if not 2 <= n_frames <= 10_000:
        raise ValueError(f"n_frames must be in 2..10000, got {n_frames}")
    if loop:
        return (1 - torch.cos(torch.linspace(0, 2 * math.pi, n_frames + 1)[:-1])) / 2
    return torch.linspace(0, 1, n_frames)


def path_latents(zs: torch.Tensor, n_frames: int = 32, mode: str = "slerp", *, loop: bool = False) -> torch.Tensor:
    """n_frames latents evenly along the path through the K latents zs (K, z_dim), each leg slerp or
    lerp, ending exactly on the last (with `loop`: eased there and back, see walk_times): (T, z_dim)."""
    if zs.ndim != 2 or len(zs) < 2:
        raise ValueError(f"give at least two latents as (K, z_dim), got {tuple(zs.shape)}")
    u = walk_times(n_frames, loop=loop) * (len(zs) - 1)  # (T,) position along the path, in legs
    leg = u.floor().long().clamp(max=len(zs) - 2)
    return interpolate(zs[leg], zs[leg + 1], u - leg, mode)  # (T, z) x (T,) -> (T, z)


def walk_latents(
    za: torch.Tensor, zb: torch.Tensor, n_frames: int = 32, mode: str = "slerp", *, loop: bool = False
) -> torch.Tensor:
    """The latents of a walk from za to zb (each (z_dim,)): (T, z_dim), see walk_times."""
    if za.shape != zb.shape or za.ndim != 1:
        raise ValueError(f"za and zb must both be (z_dim,), got {tuple(za.shape)} and {tuple(zb.shape)}")
    return path_latents(torch.stack([za, zb]), n_frames, mode, loop=loop)


def interpolation_frames(
    G: nn.Module,
    seed_a: int,
    seed_b: int,
    n_frames: int = 32,
    mode: str = "slerp",
    truncation: float = 1.0,
    *,
    loop: bool = False,
) -> torch.Tensor:
    """Frames of the walk from seed A to seed B (and eased back, if loop): uint8 (T, C, H, W)."""
    za, zb = latents([seed_a, seed_b], G.z_dim, truncation)
    return generate(G, walk_latents(za, zb, n_frames, mode, loop=loop))


def seed_walk_frames(
    G: nn.Module, seeds: Sequence[int], n_frames: int = 32, mode: str = "slerp", truncation: float = 1.0,
    *, loop: bool = False,
) -> torch.Tensor:  # fmt: skip
    """n_frames frames along the walk through several seeds (see path_latents): uint8 (T, C, H, W)."""
    return generate(G, path_latents(latents(list(seeds), G.z_dim, truncation), n_frames, mode, loop=loop))


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """uint8 (N, C, H, W) -> uint8 (H', W', C) numpy grid, nrow images per row (default: square),
    `padding` pixels of `pad_value` around each image (torchvision.utils.make_grid)."""
    from torchvision.utils import make_grid as tv_make_grid

    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    if n < max(nrow, 2):  # torchvision narrows a short row and returns one image unpadded: keep the frame
        blank = torch.full((max(nrow, 2) - n, c, h, w), pad_value, dtype=images.dtype)
        grid = tv_make_grid(torch.cat([images, blank]), nrow=max(nrow, 2), padding=padding, pad_value=pad_value)
        grid = grid[:, :, : nrow * (w + padding) + padding]
    else:
        grid = tv_make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)  # (3 or C, H', W')
    return grid[:c].permute(1, 2, 0).contiguous().numpy()  # grayscale comes back as 3 equal channels


def to_pil(a: np.ndarray | torch.Tensor) -> Image.Image:
    """(H, W, C) numpy or (C, H, W) tensor uint8 -> PIL image ('L' or 'RGB')."""
    if isinstance(a, torch.Tensor):
        a = a.permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)
    return Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)


def save_png(a: np.ndarray | torch.Tensor, path: str | Path) -> Path:
    path = Path(path)
    buf = io.BytesIO()
    to_pil(a).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_gif(frames: torch.Tensor, path: str | Path, fps: float = 16.0, scale: int = 1) -> Path:
    """uint8 (T, C, H, W) -> looping animated GIF (optionally upscaled by an integer factor)."""
    path = Path(path)
    ims = [to_pil(f) for f in frames]
    if scale > 1:
        ims = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in ims]
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_video(frames: torch.Tensor, path: str | Path, fps: float = 16.0, scale: int = 1) -> Path:
    """uint8 (T, C, H, W) -> H.264 MP4 through PyAV (an optional dependency)."""
    try:
        import av
    except ImportError:
        raise RuntimeError("MP4 export needs PyAV: pip install av (or save a .gif)") from None
    path = Path(path)
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    if scale > 1:
        frames = frames.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    h, w = frames.shape[-2:]
    pad_h, pad_w = h % 2, w % 2  # yuv420p wants even sides
    arr = frames.permute(0, 2, 3, 1).numpy()  # (T, C, H, W) -> (T, H, W, C)
    if pad_h or pad_w:
        arr = np.pad(arr, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), mode="w") as out:
        stream = out.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height = arr.shape[2], arr.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for a in arr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
