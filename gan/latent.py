"""Latent exploration: principal directions, edits, a 2-D seed plane, inversion, vector arithmetic.

    dirs = load_or_compute_directions(G, k=8)        # shipped with the model, or cached by weights hash
    z = edit(latents([7], G.z_dim), dirs, [2, 0, -1, 0, 0, 0, 0, 0])   # amounts in σ units
    res = invert(G, Image.open("me.jpg"), steps=200)  # res.z, res.image, res.error

Principal directions follow GANSpace (Härkönen et al. 2020): sample z, take an early layer's
activations, find their top principal components, and map each component back to z by least
squares regression, so every direction is a z-space vector a slider can move along. Inversion
optimises z with Adam against a pixel + multi-scale loss (optionally discriminator features), from
the best of several random starts. Every random choice comes from a `torch.Generator` seeded by
the caller, so the same arguments give the same result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .data import _array_to_images, fit_image, to_float
from .fileio import atomic_path, cache_dir
from .models import Discriminator, run_generator
from .sampling import generate, interpolate, latents, make_grid

log = logging.getLogger(__name__)
DIRECTIONS_FILE = "directions.safetensors"
DIRECTIONS_FORMAT = "gan-lab-directions/1"
N_SAMPLES = 2048  # z samples for the PCA; enough for stable top components of a DCGAN's first layer


def _device(G: nn.Module) -> torch.device:
    return next(G.parameters()).device


def weights_hash(G: nn.Module) -> str:
    """sha256 of the config and every parameter and buffer (names, dtypes, shapes, bytes); 16 hex digits."""
    G = getattr(G, "_orig_mod", G)  # a torch.compile'd G hashes like its module
    h = hashlib.sha256(G.config.to_json().encode())
    for name, t in sorted(G.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# principal directions (GANSpace)


@dataclass(frozen=True)
class Directions:
    """k orthonormal z-space directions and the size of one slider unit ("σ") along each."""

    vectors: torch.Tensor  # (k, z_dim), orthonormal rows, sign fixed: largest |component| positive
    std: torch.Tensor  # (k,), std of random z projected on each direction: one σ step, in z units
    explained: torch.Tensor  # (k,), fraction of the layer's activation variance per component
    meta: dict[str, Any] = field(default_factory=dict)  # k, n_samples, layer, seed, z_dim, weights

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def step(self, i: int) -> torch.Tensor:
        """Direction i scaled to one σ: (z_dim,)."""
        return self.vectors[i] * self.std[i]


def _n_blocks(G: nn.Module) -> int:
    return sum(isinstance(m, nn.ReLU) for m in G.net)


@torch.no_grad()
def _layer_features(G: nn.Module, z: torch.Tensor, layer: int, batch: int = 512) -> torch.Tensor:
    """z (N, z_dim) -> the output of G's ReLU block number `layer` (0 = first), flattened: (N, F)."""
    dev = _device(G)
    out = []
    for chunk in z.split(batch):
        h = run_generator(G.net, G.sle, chunk.to(dev), upto=layer)
        out.append(h.flatten(1).float().cpu())  # (b, c, s, s) -> (b, c*s*s)
    return torch.cat(out)


def _top_components(X: torch.Tensor, k: int, g: torch.Generator, n_iter: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Centered X (N, F) -> PCA coefficients (N, k) and singular values (k,).

    Randomized subspace iteration (Halko et al. 2011) with the caller's generator, because
    torch.pca_lowrank draws from the global RNG. Coefficients = X V_k = U_k S_k.
    """
    n, f = X.shape
    q = min(k + 8, n, f)  # oversampled subspace
    Q, _ = torch.linalg.qr(X @ torch.randn(f, q, generator=g))  # (N, q)
    for _ in range(n_iter):
        Q, _ = torch.linalg.qr(X.T @ Q)  # (F, q)
        Q, _ = torch.linalg.qr(X @ Q)  # (N, q)
    Ub, S, _ = torch.linalg.svd(Q.T @ X, full_matrices=False)  # (q, F) = Ub diag(S) Vh
    U = Q @ Ub[:, :k]  # (N, k)
    return U * S[:k], S[:k]


@torch.no_grad()
def principal_directions(
    G: nn.Module, k: int = 8, n_samples: int = N_SAMPLES, layer: int = 0, seed: int = 0
) -> Directions:
    """GANSpace directions in z: PCA of ReLU block `layer`'s activations, regressed back onto z.

    G is put in eval mode. The same (weights, k, n_samples, layer, seed) always give the same result.
    """
    z_dim = G.z_dim
    n_blocks = _n_blocks(G)
    if not 0 <= layer < n_blocks:
        raise ValueError(f"layer must be in 0..{n_blocks - 1} (G has {n_blocks} ReLU blocks), got {layer}")
    if not 1 <= k <= z_dim:
        raise ValueError(f"k must be in 1..{z_dim} (z_dim), got {k}")
    if not max(4 * k, 64) <= n_samples <= 1_000_000:
        raise ValueError(f"n_samples must be in {max(4 * k, 64)}..1000000 for k={k}, got {n_samples}")
    G.eval()
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n_samples, z_dim, generator=g)  # (N, z_dim)
    feats = _layer_features(G, z, layer)  # (N, F)
    X = feats - feats.mean(0)
    if k > min(X.shape):
        raise ValueError(f"k={k} is more than the layer's {X.shape[1]} features allow")
    coef, s = _top_components(X, k, g)  # (N, k), (k,)
    explained = s**2 / (X**2).sum().clamp_min(1e-12)
    # least squares: coef @ U ≈ z - mean(z), U (k, z_dim) maps each component's coefficient to z
    zc = z - z.mean(0)
    U = torch.linalg.lstsq(coef.double(), zc.double()).solution  # (k, z_dim)
    Q, _ = torch.linalg.qr(U.T)  # (z_dim, k): Gram-Schmidt in component order
    vectors = Q.T.contiguous()  # (k, z_dim)
    vectors = vectors / vectors.norm(dim=1, keepdim=True)
    idx = vectors.abs().argmax(dim=1, keepdim=True)  # (k, 1)
    vectors = (vectors * vectors.gather(1, idx).sign()).float()  # largest component positive
    # one σ: the spread of fresh z along each direction (≈ 1 for z ~ N(0, I)); fresh samples, because
    # the directions were fitted to the first ones and overstate their spread there (by 15% at z_dim 100)
    z_new = torch.randn(n_samples, z_dim, generator=g)  # (N, z_dim)
    std = (z_new @ vectors.T).std(0)  # (k,)
    meta = {"format": DIRECTIONS_FORMAT, "k": k, "n_samples": n_samples, "layer": layer, "seed": int(seed),
            "z_dim": z_dim, "weights": weights_hash(G)}  # fmt: skip
    return Directions(vectors, std.float(), explained.float(), meta)


def _read_directions(path: Path) -> Directions | None:
    """A cached file, or None when it is missing, unreadable or of another format."""
    try:
        with safe_open(str(path), "pt") as f:
            header = f.metadata() or {}
            if header.get("format") != DIRECTIONS_FORMAT:
                return None
            meta = json.loads(header["json"])
            t = {name: f.get_tensor(name) for name in ("vectors", "std", "explained")}
    except (OSError, ValueError, KeyError, SafetensorError):
        return None
    k, z_dim = meta.get("k"), meta.get("z_dim")
    if t["vectors"].shape != (k, z_dim) or t["std"].shape != (k,) or t["explained"].shape != (k,):
        return None
    return Directions(t["vectors"], t["std"], t["explained"], meta)


def save_directions(dirs: Directions, path: str | Path) -> Path:
    """Write directions as safetensors with the metadata as JSON in the header; atomic rename."""
    path = Path(path)
    tensors = {"vectors": dirs.vectors.contiguous(), "std": dirs.std.contiguous(),
               "explained": dirs.explained.contiguous()}  # fmt: skip
    with atomic_path(path) as tmp:  # unique temporary name: concurrent writers never collide
        save_file(tensors, str(tmp), metadata={"format": DIRECTIONS_FORMAT, "json": json.dumps(dirs.meta)})
    return path


def directions_cache_path(
    G: nn.Module, k: int, *, n_samples: int = N_SAMPLES, layer: int = 0, seed: int = 0, weights: str | None = None
) -> Path:
    """Where computed directions of G are cached: GAN Lab's cache folder ($GAN_CACHE_DIR, else
    ~/.cache/gan-lab) / directions / <weights hash>-<arguments>.safetensors."""
    name = f"{weights or weights_hash(G)}-k{k}-n{n_samples}-l{layer}-s{int(seed)}.safetensors"
    return cache_dir("directions") / name


def load_or_compute_directions(
    G: nn.Module,
    k: int = 8,
    folder: str | Path | None = None,
    *,
    n_samples: int = N_SAMPLES,
    layer: int = 0,
    seed: int = 0,
) -> Directions:
    """Directions for G: read from `folder/directions.safetensors` (default: `G.folder`) when a
    file shipped with the model matches these arguments and G's weights; else from the cache
    (`directions_cache_path`); else computed and written to the cache.

    Nothing is ever written into the model folder: it may be the repository's `weights/` or a
    snapshot in the huggingface_hub cache. A cache that cannot be written only costs a log line
    (logging, not `warnings`: callers in server threads need no `catch_warnings`).
    """
    folder = folder if folder is not None else getattr(G, "folder", None)
    h = weights_hash(G)
    want = {"format": DIRECTIONS_FORMAT, "k": k, "n_samples": n_samples, "layer": layer, "seed": int(seed),
            "z_dim": G.z_dim, "weights": h}  # fmt: skip
    try:
        cached_path: Path | None = directions_cache_path(G, k, n_samples=n_samples, layer=layer, seed=seed, weights=h)
    except OSError as e:  # the cache folder cannot be created
        log.warning("no cache folder for directions (%s)", e)
        cached_path = None
    shipped = Path(folder) / DIRECTIONS_FILE if folder is not None else None
    for path in (shipped, cached_path):
        if path is not None and path.is_file():
            cached = _read_directions(path)
            if cached is not None and all(cached.meta.get(key) == v for key, v in want.items()):
                return cached
    dirs = principal_directions(G, k=k, n_samples=n_samples, layer=layer, seed=seed)
    try:
        if cached_path is not None:
            save_directions(dirs, cached_path)
    except OSError as e:
        log.warning("directions not cached in %s (%s)", cached_path.parent, e)  # logging: thread-safe
    return dirs


# ---------------------------------------------------------------------------------------------
# editing along directions


def _unpack(directions: Directions | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(directions, Directions):
        return directions.vectors, directions.std
    if directions.ndim != 2:
        raise ValueError(f"directions must be (k, z_dim), got {tuple(directions.shape)}")
    return directions, torch.ones(directions.shape[0])


def edit(
    z: torch.Tensor, directions: Directions | torch.Tensor, amounts: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """z (B, z_dim) or (z_dim,) moved by amounts (k,) along the directions, in σ units.

    A raw (k, z_dim) tensor counts one unit as length 1. All-zero amounts return an exact copy of z.
    """
    vectors, std = _unpack(directions)
    k, z_dim = vectors.shape
    a = torch.as_tensor(amounts, dtype=torch.float32).flatten()
    if a.shape[0] != k:
        raise ValueError(f"amounts must have {k} values (one per direction), got {a.shape[0]}")
    if not torch.isfinite(a).all():
        raise ValueError("amounts must be finite")
    if z.shape[-1] != z_dim or z.ndim not in (1, 2):
        raise ValueError(f"z must have shape (B, {z_dim}) or ({z_dim},), got {tuple(z.shape)}")
    if not (a != 0).any():
        return z.clone()
    delta = (a * std.float()) @ vectors.float()  # (k,) @ (k, z_dim) -> (z_dim,)
    return z + delta.to(z.device, z.dtype)


def direction_strip(
    G: nn.Module,
    seed: int,
    direction: torch.Tensor,
    amounts: Sequence[float] = (-3, -1.5, 0, 1.5, 3),
    *,
    truncation: float = 1.0,
) -> torch.Tensor:
    """Seed's image moved by each amount along `direction` (z_dim,), e.g. `dirs.step(i)` for σ
    units: uint8 (T, C, H, W). The amount 0 gives exactly the seed's own image."""
    z = latents([seed], G.z_dim, truncation)  # (1, z_dim)
    a = torch.as_tensor(amounts, dtype=torch.float32)[:, None]  # (T,) -> (T, 1)
    return generate(G, z + a * direction.float().cpu()[None])  # (T, z_dim) -> (T, C, H, W)


def direction_strips(
    G: nn.Module,
    seed: int,
    directions: Directions,
    amounts: Sequence[float] = (-3, -1.5, 0, 1.5, 3),
    *,
    truncation: float = 1.0,
) -> torch.Tensor:
    """`direction_strip` for every direction in one batch: uint8 (k, T, C, H, W)."""
    z = latents([seed], G.z_dim, truncation)  # (1, z_dim)
    a = torch.as_tensor(amounts, dtype=torch.float32)  # (T,)
    steps = directions.vectors * directions.std[:, None]  # (k, z_dim)
    zs = z[None] + a[None, :, None] * steps[:, None, :]  # (k, T, z_dim)
    imgs = generate(G, zs.reshape(-1, G.z_dim))  # (k*T, z_dim) -> (k*T, C, H, W)
    return imgs.reshape(len(directions), len(a), *imgs.shape[1:])  # -> (k, T, C, H, W)


# ---------------------------------------------------------------------------------------------
# a 2-D plane between four seeds


def _blend(z4: torch.Tensor, u: torch.Tensor, v: torch.Tensor, mode: str) -> torch.Tensor:
    """Corners z4 (4, z_dim) = (top-left, top-right, bottom-left, bottom-right); u, v (M,) -> (M, z_dim)."""
    tl, tr, bl, br = z4
    if mode == "bilinear":
        u, v = u[:, None], v[:, None]  # (M,) -> (M, 1)
        return (1 - u) * (1 - v) * tl + u * (1 - v) * tr + (1 - u) * v * bl + u * v * br
    if mode == "slerp":  # slerp along the top and bottom edges, then between them: keeps |z| typical
        return interpolate(interpolate(tl, tr, u, "slerp"), interpolate(bl, br, u, "slerp"), v, "slerp")
    raise ValueError(f"mode must be 'slerp' or 'bilinear', got {mode!r}")


def _corners(G: nn.Module, seeds4: Sequence[int], truncation: float) -> torch.Tensor:
    if len(seeds4) != 4:
        raise ValueError(f"give 4 corner seeds (top-left, top-right, bottom-left, bottom-right), got {len(seeds4)}")
    return latents(list(seeds4), G.z_dim, truncation)  # (4, z_dim)


def blend_corners(
    G: nn.Module,
    seeds4: Sequence[int],
    u: float,
    v: float,
    *,
    mode: str = "slerp",
    truncation: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The point (u, v) in [0, 1]^2 of the plane spanned by four corner seeds (top-left, top-right,
    bottom-left, bottom-right; u runs left to right, v top to bottom) -> z (z_dim,), uint8 (C, H, W)."""
    if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
        raise ValueError(f"u and v must be in [0, 1], got ({u}, {v})")
    z = _blend(_corners(G, seeds4, truncation), torch.tensor([float(u)]), torch.tensor([float(v)]), mode)
    return z[0], generate(G, z)[0]


def blend_plane(
    G: nn.Module, seeds4: Sequence[int], n: int = 5, *, mode: str = "slerp", truncation: float = 1.0
) -> np.ndarray:
    """The whole plane as an n x n grid image, uint8 (H', W', C): rows v = 0..1, columns u = 0..1."""
    if not 2 <= n <= 16:
        raise ValueError(f"n must be in 2..16, got {n}")
    t = torch.linspace(0, 1, n)
    v, u = torch.meshgrid(t, t, indexing="ij")  # (n, n) each, row-major
    z = _blend(_corners(G, seeds4, truncation), u.flatten(), v.flatten(), mode)  # (n*n, z_dim)
    return make_grid(generate(G, z), nrow=n)


# ---------------------------------------------------------------------------------------------
# vector arithmetic and walks


def arithmetic(
    G: nn.Module, a_seeds: Sequence[int], b_seeds: Sequence[int], c_seeds: Sequence[int], *, truncation: float = 1.0
) -> torch.Tensor:
    """mean z(a) − mean z(b) + mean z(c): (z_dim,). The DCGAN paper's "man with glasses − man + woman"."""
    means = []
    for name, seeds in (("a", a_seeds), ("b", b_seeds), ("c", c_seeds)):
        if len(seeds) == 0:
            raise ValueError(f"seed group {name} is empty")
        means.append(latents(list(seeds), G.z_dim, truncation).mean(0))
    return means[0] - means[1] + means[2]


def arithmetic_images(
    G: nn.Module, a_seeds: Sequence[int], b_seeds: Sequence[int], c_seeds: Sequence[int], *, truncation: float = 1.0
) -> torch.Tensor:
    """uint8 (4, C, H, W): the images of mean z(a), mean z(b), mean z(c), and of a − b + c."""
    z = torch.stack(
        [latents(list(s), G.z_dim, truncation).mean(0) for s in (a_seeds, b_seeds, c_seeds)]
        + [arithmetic(G, a_seeds, b_seeds, c_seeds, truncation=truncation)]
    )  # (4, z_dim)
    return generate(G, z)


# ---------------------------------------------------------------------------------------------
# inversion: find z whose image matches a photo


@dataclass
class InversionResult:
    z: torch.Tensor  # (z_dim,) float32 on the CPU
    image: torch.Tensor  # uint8 (C, S, S): G(z)
    error: float  # RMS difference between image and target, in [0, 1] pixel units
    history: list[float]  # the objective per Adam step (best restart)
    target: torch.Tensor  # uint8 (C, S, S): the photo as the model sees it (cropped, resized)


def prepare_image(image: Image.Image | np.ndarray | torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """A PIL image, or an array/tensor (H, W), (H, W, C) or (C, H, W), of any size -> uint8
    (channels, size, size), converted, centre-cropped and resized as a training image file is.

    uint8 arrays go through PIL, so an upload gives the same target as a numpy array or a PIL image.
    """
    if not isinstance(image, Image.Image):
        a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        layout_ok = a.ndim == 2 or (a.ndim == 3 and (a.shape[0] in (1, 3, 4) or a.shape[-1] in (1, 3, 4)))
        if not layout_ok or a.size == 0:
            raise ValueError(f"image must be (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4; got {a.shape}")
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
            a = a.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
        if a.dtype != np.uint8:  # floats in [0, 1] or [-1, 1], wider ints: scaled by gan.data
            return torch.from_numpy(_array_to_images(a[None], size, channels, "image")[0])  # -> (C, S, S)
        image = Image.fromarray(np.ascontiguousarray(a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a))
    return torch.from_numpy(fit_image(image, size, channels))  # (C, S, S), a writable copy


def _pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """x (B, C, S, S) -> [x, blur+down(x), ...]: a Gaussian pyramid of levels + 1 images."""
    c = x.shape[1]
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device) / 16.0  # binomial ≈ Gaussian
    k2 = k1[:, None] * k1[None, :]  # (5,) x (5,) -> (5, 5)
    w = k2.expand(c, 1, 5, 5)  # depthwise
    out = [x]
    for _ in range(levels):
        x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), w, stride=2, groups=c)  # (B, C, s, s) -> (B, C, s/2, s/2)
        out.append(x)
    return out


def _d_features(D: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The discriminator's hidden activations (each LeakyReLU output)."""
    feats = []
    for m in D.net:
        x = m(x)
        if isinstance(m, nn.LeakyReLU):
            feats.append(x)
    return feats


class _Objective:
    """Per-sample loss (B,) of images against one target: pixel MSE + multi-scale MSE
    (+ relative D-feature distance) + a small prior keeping |z|² near z_dim."""

    def __init__(self, target: torch.Tensor, D: nn.Module | None, ms_weight: float, d_weight: float, prior: float):
        self.levels = max(1, int(math.log2(target.shape[-1])) - 2)  # down to 4x4
        self.t_pyr = _pyramid(target, self.levels)
        self.D, self.ms_weight, self.d_weight, self.prior = D, ms_weight, d_weight, prior
        if D is not None:
            with torch.no_grad():
                self.t_feats = [f.clone() for f in _d_features(D, target)]
                self.t_scale = [f.pow(2).mean().clamp_min(1e-8) for f in self.t_feats]

    def __call__(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        pyr = _pyramid(x, self.levels)
        loss = (pyr[0] - self.t_pyr[0]).pow(2).mean((1, 2, 3))
        ms = [(p - t).pow(2).mean((1, 2, 3)) for p, t in zip(pyr[1:], self.t_pyr[1:])]
        loss = loss + self.ms_weight * torch.stack(ms).mean(0)
        if self.D is not None:
            fd = [
                (f - t).pow(2).mean((1, 2, 3)) / s
                for f, t, s in zip(_d_features(self.D, x), self.t_feats, self.t_scale)
            ]
            loss = loss + self.d_weight * torch.stack(fd).mean(0)
        z_dim = z.shape[1]
        return loss + self.prior * (z.pow(2).sum(1) / z_dim - 1).pow(2)


def invert(
    G: nn.Module,
    image: Image.Image | np.ndarray | torch.Tensor,
    steps: int = 200,
    lr: float = 0.1,
    seed: int = 0,
    callback: Callable[[int, float], Any] | None = None,
    D: Discriminator | None = None,
    *,
    n_init: int = 32,
    restarts: int = 2,
    ms_weight: float = 1.0,
    d_weight: float = 0.1,
    prior: float = 0.005,
) -> InversionResult:
    """Find z whose image matches `image` (PIL, or uint8 array/tensor at any size).

    The best `restarts` of `n_init` random z (by the objective) are optimised together with Adam
    for `steps` steps (cosine learning-rate decay; |z| kept below √z_dim + 3); the best z seen
    wins. `callback(step, loss)` is called after each step (step = 1..steps). G (and D) are put
    in eval mode; their weights get no gradients. The same arguments give the same result.
    """
    if not 0 <= steps <= 10_000:
        raise ValueError(f"steps must be in 0..10000, got {steps}")
    if not 1 <= restarts <= n_init <= 4096:
        raise ValueError(f"need 1 <= restarts ({restarts}) <= n_init ({n_init}) <= 4096")
    cfg = G.config
    if D is not None and (D.config.image_size != cfg.image_size or D.config.channels != cfg.channels):
        raise ValueError("D must match G's image_size and channels")
    G.eval()
    if D is not None:
        D.eval()
    dev = _device(G)
    target_u8 = prepare_image(image, cfg.image_size, cfg.channels)  # (C, S, S)
    target = to_float(target_u8)[None].to(dev)  # (1, C, S, S) in [-1, 1]
    objective = _Objective(target, D, ms_weight, d_weight, prior)
    g = torch.Generator().manual_seed(int(seed))

    # good starts: the lowest-loss `restarts` of n_init random z
    cand = torch.randn(n_init, G.z_dim, generator=g).to(dev)  # (n_init, z_dim)
    with torch.no_grad():
        init_loss = torch.cat([objective(G(c), c) for c in cand.split(64)])
    order = torch.argsort(init_loss, stable=True)[:restarts]
    z = cand[order].clone().requires_grad_(True)  # (R, z_dim)
    best_loss, best_z = init_loss[order].clone(), z.detach().clone()

    opt = torch.optim.Adam([z], lr=lr)
    max_norm = math.sqrt(G.z_dim) + 3.0  # a χ(z_dim) radius beyond ~4 standard deviations
    history: list[float] = []
    for step in range(steps):
        for group in opt.param_groups:  # cosine decay to 10% of lr
            group["lr"] = lr * (0.1 + 0.45 * (1 + math.cos(math.pi * step / max(steps, 1))))
        loss = objective(G(z), z)  # (R,)
        (z.grad,) = torch.autograd.grad(loss.sum(), [z])  # G's weights get no .grad
        with torch.no_grad():
            better = loss < best_loss
            best_loss = torch.where(better, loss, best_loss)
            best_z[better] = z[better]
        history.append(float(loss.detach().min()))
        opt.step()
        with torch.no_grad():
            n = z.norm(dim=1, keepdim=True)
            z.mul_((max_norm / n).clamp(max=1.0))
        if callback is not None:
            callback(step + 1, history[-1])
    with torch.no_grad():  # the last update has not been scored yet
        loss = objective(G(z), z)
        better = loss < best_loss
        best_loss = torch.where(better, loss, best_loss)
        best_z[better] = z[better]
    zb = best_z[int(torch.argmin(best_loss))].detach().float().cpu()  # (z_dim,)
    img = generate(G, zb[None])[0]
    err = float((img.float() - target_u8.float()).div(255).pow(2).mean().sqrt())
    return InversionResult(zb, img, err, history, target_u8)
