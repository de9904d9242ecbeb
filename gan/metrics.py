"""Sample-quality metrics: SWD (no pretrained net needed), FID and KID (Inception-v3 weights).

All image inputs are uint8 tensors of shape (N, C, H, W) with C in {1, 3} and values 0..255.

- `swd` is the multi-scale Sliced Wasserstein Distance of Karras et al. 2018 (ProGAN,
  tkarras/progressive_growing_of_gans `sliced_wasserstein.py`), vectorised in torch.
- `frechet_distance` and `kid` are the pure math of FID and KID on any feature vectors.
- `fid_kid` / `inception_features` run the standard FID Inception-v3 (pool3, 2048-d) and need its
  weights as a local file; without them they raise `InceptionUnavailable`.
- `evaluate` computes SWD always and FID/KID when the weights are there.

Why torch-fidelity for the Inception network (an optional dependency, imported lazily):
- it loads the weights from a local file, no download attempted:
  `FeatureExtractorInceptionV3(..., feature_extractor_weights_path=...)`. pytorch-fid's
  `fid_inception_v3()` always goes through `load_state_dict_from_url` (offline only if the file
  is planted in the torch hub cache under its URL name);
- it is the lightest: a ~85 kB pure-Python wheel needing only torch, torchvision, numpy, pillow
  and tqdm (no scipy, unlike pytorch-fid); torchmetrics' FID wraps this very network and adds
  torchmetrics, lightning-utilities and scipy on top;
- it reproduces the TensorFlow FID graph (TF1-style bilinear resize to 299 px included), so the
  numbers compare with published ones. The FID/KID math lives here; only the network is borrowed.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# Input checks


def _check_images(x: torch.Tensor, name: str) -> None:
    """Raise ValueError unless `x` is a uint8 (N, C, H, W) tensor with C in {1, 3}."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 images (values 0..255), got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        shape = tuple(x.shape)
        raise ValueError(f"{name} must have shape (N, C, H, W) with C in {{1, 3}}, got {shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no images")


def _check_pair(real: torch.Tensor, fake: torch.Tensor) -> None:
    """Both sets valid and of the same channels and size."""
    _check_images(real, "real")
    _check_images(fake, "fake")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            "real and fake must have the same channels and size, got "
            f"(C, H, W) = {tuple(real.shape[1:])} vs {tuple(fake.shape[1:])}"
        )


# ----------------------------------------------------------------------------------------------
# Sliced Wasserstein Distance (Karras et al. 2018)

_BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)  # /16 per axis; the outer product is the 5x5 kernel /256
_CHUNK = 256  # images per Laplacian-pyramid step
_ROWS = 8192  # descriptors per step of the normalisation statistics


def _blur(x: torch.Tensor, step: int = 1) -> torch.Tensor:
    """5x5 binomial filter with mirror borders, keeping every `step`-th row and column.

    ProGAN's scipy 'mirror' border is torch's 'reflect'. Done separably as in-place weighted sums
    of shifted views, which on CPU beats a 1-channel or depthwise conv2d several times over.
    """
    h, w = x.shape[-2:]
    k = [v / 16.0 for v in _BINOMIAL_5]
    xp = F.pad(x, (2, 2, 2, 2), mode="reflect")  # (N, C, H+4, W+4)
    rows = xp[:, :, 0:h:step, :] * k[0]  # (N, C, H/step, W+4)
    for i in range(1, 5):
        rows.add_(xp[:, :, i : i + h : step, :], alpha=k[i])
    out = rows[:, :, :, 0:w:step] * k[0]  # (N, C, H/step, W/step)
    for i in range(1, 5):
        out.add_(rows[:, :, :, i : i + w : step], alpha=k[i])
    return out


def _pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur, keeping every other row and column (like cv2.pyrDown)."""
    return _blur(x, step=2)


def _upsample_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Double `dim` as zero-stuffing + mirror-bordered [1,4,6,4,1]/8 filtering does, polyphase:
    even outputs (x[j-1] + 6 x[j] + x[j+1]) / 8, odd outputs (x[j] + x[j+1]) / 2. Zero-stuffing
    makes the mirror border x[-1] = x[1] on the left and x[h] = x[h-1] on the right.
    """
    h = x.shape[dim]
    xp = torch.cat([x.narrow(dim, 1, 1), x, x.narrow(dim, h - 1, 1)], dim)  # (.., h+2, ..)
    left, mid, right = xp.narrow(dim, 0, h), xp.narrow(dim, 1, h), xp.narrow(dim, 2, h)
    even = (left + right).add_(mid, alpha=6.0).mul_(1 / 8)
    odd = (mid + right).mul_(0.5)
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)  # (.., 2h, ..)


def _pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Twice the size, cropped to `size`: zero-stuffing, 5x5 binomial with gain 4 (cv2.pyrUp)."""
    up = _upsample_axis(_upsample_axis(x, 2), 3)  # (N, C, 2H, 2W)
    return up[:, :, : size[0], : size[1]]


def _laplacian_pyramid(images: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Float32 Laplacian pyramid of uint8 images, finest first; the last level is the low-pass.

    Built `_CHUNK` images at a time so the temporaries stay small.
    """
    n, c = images.shape[:2]
    levels = [torch.empty(n, c, s, s) for s in sizes]  # (N, C, s, s) per level
    for i in range(0, n, _CHUNK):
        x = images[i : i + _CHUNK].float()
        for lod in range(len(sizes) - 1):
            down = _pyr_down(x)
            levels[lod][i : i + _CHUNK] = x - _pyr_up(down, x.shape[-2:])
            x = down
        levels[-1][i : i + _CHUNK] = x
    return levels


def _descriptors(
    level: torch.Tensor,
    n_patches: int,
    patch: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """`n_patches` random patch x patch neighbourhoods per image -> (N*n_patches, C*patch*patch)."""
    n, c, h, w = level.shape
    # top-left corners of patches fully inside the image (ProGAN: centres in [r, size - r))
    ys = torch.randint(0, h - patch + 1, (n, n_patches, 1, 1), generator=generator)
    xs = torch.randint(0, w - patch + 1, (n, n_patches, 1, 1), generator=generator)
    # each descriptor is C*patch runs of `patch` consecutive pixels: gather runs by start offset
    runs = level.reshape(-1).unfold(0, patch, 1)  # view (N*C*H*W - patch + 1, patch)
    corner = (torch.arange(n).view(n, 1, 1, 1) * c * h + ys) * w + xs  # (N, P, 1, 1)
    rows = (torch.arange(c).view(c, 1) * h + torch.arange(patch)) * w  # (C, patch)
    start = corner + rows  # (N, P, C, patch) flat offsets of the runs
    return runs.index_select(0, start.reshape(-1)).view(n * n_patches, c * patch * patch)


def _normalise_(desc: torch.Tensor, channels: int) -> torch.Tensor:
    """In place, per colour channel over all descriptors: subtract the mean, divide by the std.

    Two passes over row chunks, float64 accumulators: much faster than torch.var_mean here.
    """
    m, dim = desc.shape
    ones = torch.ones(min(m, _ROWS))
    total = torch.zeros(dim, dtype=torch.float64)
    for i in range(0, m, _ROWS):
        rows = desc[i : i + _ROWS]
        total += (ones[: len(rows)] @ rows).double()  # (D,) column sums
    per_chan = m * dim // channels
    mean = total.view(channels, -1).sum(1) / per_chan  # (C,)
    mean_cols = mean.float().repeat_interleave(dim // channels)  # (D,)
    sq = torch.zeros(dim, dtype=torch.float64)
    for i in range(0, m, _ROWS):
        centred = desc[i : i + _ROWS] - mean_cols
        sq += (ones[: len(centred)] @ centred.square_()).double()  # (D,) column sums of squares
    std = (sq.view(channels, -1).sum(1) / per_chan).sqrt().float()  # (C,)
    # a constant channel (e.g. a collapsed generator) has std 0: keep it finite instead of NaN
    desc.sub_(mean_cols).div_(std.clamp_min(1e-8).repeat_interleave(dim // channels))
    return desc


def _sliced_wasserstein(
    a: torch.Tensor,
    b: torch.Tensor,
    n_repeats: int,
    generator: torch.Generator,
    proj: tuple[torch.Tensor, torch.Tensor],
    pool: ThreadPoolExecutor,
) -> float:
    """Mean |sorted projection difference| over `n_repeats` x n_dirs random unit directions.

    `proj` are two reusable (n_dirs, M) buffers; their row count sets n_dirs.
    """
    n_dirs = proj[0].shape[0]
    total = 0.0
    for _ in range(n_repeats):
        dirs = torch.randn(n_dirs, a.shape[1], generator=generator)  # (n_dirs, D)
        dirs /= dirs.norm(dim=1, keepdim=True)
        torch.matmul(dirs, a.T, out=proj[0])  # (n_dirs, M)
        torch.matmul(dirs, b.T, out=proj[1])
        # numpy's SIMD sort is ~10x faster than torch.sort on CPU; sorts in place, GIL released
        list(pool.map(lambda p: p.numpy().sort(axis=1), proj))
        # sum() is cascaded; torch.dist(p=1) loses several % in float32 at this size
        total += proj[0].sub_(proj[1]).abs_().sum().item() / proj[0].numel()
    return total / n_repeats


def swd(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    seed: int = 0,
    n_patches: int = 128,
    patch: int = 7,
    n_dirs: int = 128,
    n_repeats: int = 4,
    min_res: int = 16,
) -> dict[str, float]:
    """Sliced Wasserstein Distance x1e3 per Laplacian-pyramid level, as in ProGAN.

    Levels go from the image size down to `min_res` by halving; for each, `n_patches` random
    `patch` x `patch` neighbourhoods per image are normalised per channel (separately for real
    and fake), projected on `n_dirs` random unit directions `n_repeats` times and compared
    sorted. Returns {"swd_<res>": ..., "swd_avg": ...}, finest level first. If the sets differ
    in size the larger is subsampled to the smaller. Deterministic for a given `seed`.

    As each set is normalised by its own statistics, a global per-channel brightness or contrast
    change of one whole set is invisible to SWD (FID does see it).
    """
    _check_pair(real, fake)
    n = min(len(real), len(fake))
    if n < 2:
        raise ValueError(f"SWD needs at least 2 images per set, got {len(real)} and {len(fake)}")
    c, h, w = real.shape[1:]
    if h != w:
        raise ValueError(f"SWD needs square images, got {h}x{w}")
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"patch must be a positive odd number, got {patch}")
    if min(n_patches, n_dirs, n_repeats) < 1:
        raise ValueError("n_patches, n_dirs and n_repeats must be >= 1")
    if min_res < 2:
        raise ValueError(f"min_res must be >= 2, got {min_res}")
    if h < min_res:
        raise ValueError(f"images of {h} px are smaller than min_res={min_res}")
    sizes = [h]
    while math.ceil(sizes[-1] / 2) >= min_res:
        sizes.append(math.ceil(sizes[-1] / 2))
    if patch > sizes[-1]:
        raise ValueError(f"patch={patch} is larger than the coarsest level ({sizes[-1]} px)")

    generator = torch.Generator().manual_seed(seed)
    pyramids = []
    for x in (real, fake):
        if len(x) > n:  # deterministic subsample of the larger set, kept in order
            x = x[torch.randperm(len(x), generator=generator)[:n].sort().values]
        pyramids.append(_laplacian_pyramid(x, sizes))

    m = n * n_patches
    proj = (torch.empty(n_dirs, m), torch.empty(n_dirs, m))  # reused by every level and repeat
    out: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=min(2, torch.get_num_threads())) as pool:
        for lod, size in enumerate(sizes):
            desc_real = _descriptors(pyramids[0][lod], n_patches, patch, generator)  # (M, C*k*k)
            desc_fake = _descriptors(pyramids[1][lod], n_patches, patch, generator)
            _normalise_(desc_real, c)
            _normalise_(desc_fake, c)
            dist = _sliced_wasserstein(desc_real, desc_fake, n_repeats, generator, proj, pool)
            out[f"swd_{size}"] = dist * 1e3
    out["swd_avg"] = sum(out.values()) / len(sizes)
    return out


# ----------------------------------------------------------------------------------------------
# FID and KID math


def _as_float64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 numpy copy/view of an array or tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _psd_factor(s: np.ndarray) -> np.ndarray:
    """F with s = F F^T: Cholesky when s is positive definite, else an eigen-decomposition
    V sqrt(L) with round-off negative eigenvalues clipped to 0 (singular covariances)."""
    try:
        return np.linalg.cholesky(s)
    except np.linalg.LinAlgError:
        evals, evecs = np.linalg.eigh(s)
        return evecs * np.sqrt(np.clip(evals, 0.0, None))


def frechet_distance(
    mu1: np.ndarray | torch.Tensor,
    sigma1: np.ndarray | torch.Tensor,
    mu2: np.ndarray | torch.Tensor,
    sigma2: np.ndarray | torch.Tensor,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr(sqrt(s1 s2)), without scipy: with s1 = F F^T the
    eigenvalues of s1 s2 are those of the symmetric PSD F^T s2 F, so tr(sqrt(s1 s2)) is the sum
    of the square roots of its (eigvalsh) eigenvalues, round-off negatives clipped to 0.
    """
    mu1, mu2 = _as_float64(mu1), _as_float64(mu2)
    s1, s2 = _as_float64(sigma1), _as_float64(sigma2)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        shapes = f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}"
        raise ValueError(f"expected mu of shape (D,) and sigma of shape (D, D), got {shapes}")
    s1 = (s1 + s1.T) / 2  # exact symmetry
    s2 = (s2 + s2.T) / 2
    f = _psd_factor(s1)
    m = f.T @ s2 @ f  # (D, D), same eigenvalues as s1 s2
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def _mmd2_poly(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic kernel k(a, b) = (a.b / D + 1)^3 (Binkowski et al. 2018)."""
    m, dim = x.shape
    k_xx = (x @ x.T / dim + 1.0) ** 3  # (m, m)
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(
    feats1: np.ndarray | torch.Tensor,
    feats2: np.ndarray | torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of the unbiased MMD^2 over random subsets.

    Same estimator and subset sampling (numpy RandomState(seed)) as torch-fidelity, so the same
    features and seed give the same numbers. Both sets need at least `subset_size` >= 2 rows.
    """
    f1, f2 = _as_float64(feats1), _as_float64(feats2)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be (N, D) with the same D, got {f1.shape} and {f2.shape}")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}")
    if len(f1) < subset_size or len(f2) < subset_size:
        raise ValueError(
            f"KID subset_size={subset_size} needs at least that many samples per set, "
            f"got {len(f1)} and {len(f2)}; pass a smaller subset_size"
        )
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        x = f1[rng.choice(len(f1), subset_size, replace=False)]
        y = f2[rng.choice(len(f2), subset_size, replace=False)]
        mmds[i] = _mmd2_poly(x, y)
    return float(mmds.mean()), float(mmds.std())


# ----------------------------------------------------------------------------------------------
# Inception-v3 features (torch-fidelity's port of the TensorFlow FID network)

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
_RELEASE = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
INCEPTION_WEIGHTS_URL = _RELEASE + INCEPTION_WEIGHTS_FILE
INCEPTION_WEIGHTS_ENV = "GAN_INCEPTION_WEIGHTS"


class InceptionUnavailable(RuntimeError):
    """FID/KID cannot run: the Inception-v3 weights file or torch-fidelity is missing."""


def default_inception_weights_path() -> Path:
    """Where torch-fidelity caches the weights: <torch hub dir>/checkpoints/<file>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def find_inception_weights(inception_weights: str | Path | None = None) -> Path:
    """The weights file from the argument, else $GAN_INCEPTION_WEIGHTS, else the torch hub cache.

    Raises InceptionUnavailable, saying where to put the file, when it does not exist.
    """
    if inception_weights is not None:
        path, source = Path(inception_weights), "the inception_weights argument"
    elif os.environ.get(INCEPTION_WEIGHTS_ENV):
        path, source = Path(os.environ[INCEPTION_WEIGHTS_ENV]), f"${INCEPTION_WEIGHTS_ENV}"
    else:
        path, source = default_inception_weights_path(), "the default cache path"
    path = path.expanduser()
    if not path.is_file():
        raise InceptionUnavailable(
            f"Inception-v3 weights not found at {path} (from {source}). FID/KID need "
            f"{INCEPTION_WEIGHTS_FILE} ({INCEPTION_WEIGHTS_URL}), which is not downloaded "
            f"automatically: copy it to {default_inception_weights_path()}, or set "
            f"{INCEPTION_WEIGHTS_ENV}=/path/to/{INCEPTION_WEIGHTS_FILE}, "
            "or pass inception_weights=<path>."
        )
    return path


def _load_inception(path: Path, device: torch.device | str) -> torch.nn.Module:
    """torch-fidelity's FID Inception-v3 from a local weights file, returning pool3 features."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as e:
        raise InceptionUnavailable(
            "FID/KID need the optional package torch-fidelity: pip install torch-fidelity"
        ) from e
    # torch-fidelity unpickles with weights_only=False; check first that the file holds plain
    # tensors only (a weights-only load refuses anything else), so no foreign code can run
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        model = FeatureExtractorInceptionV3(
            "inception-v3-compat",
            ["2048"],
            feature_extractor_weights_path=str(path),
        )
    except Exception as e:
        raise InceptionUnavailable(
            f"{path} is not a usable {INCEPTION_WEIGHTS_FILE} (torch-fidelity's Inception-v3): {e}"
        ) from e
    return model.to(device)


@torch.no_grad()
def _extract(
    model: torch.nn.Module,
    images: torch.Tensor,
    batch_size: int,
    device: torch.device | str,
) -> torch.Tensor:
    """Pool3 features (N, 2048) float64; grayscale is repeated to 3 channels."""
    feats = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 1, H, W) -> (B, 3, H, W)
        feats.append(model(x)[0].double().cpu())  # (B, 2048)
    return torch.cat(feats)


def inception_features(
    images: torch.Tensor,
    *,
    inception_weights: str | Path | None = None,
    batch_size: int = 50,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Inception-v3 pool3 features (N, 2048) float64 of uint8 images, resized to 299 px inside."""
    _check_images(images, "images")
    model = _load_inception(find_inception_weights(inception_weights), device)
    return _extract(model, images, batch_size, device)


def fid_kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    inception_weights: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 50,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """FID and KID on Inception-v3 pool3 features: {"fid", "kid_mean", "kid_std"}.

    KID uses 100 subsets of min(1000, N_real, N_fake) samples. Raises InceptionUnavailable when
    the weights or torch-fidelity are missing.
    """
    _check_pair(real, fake)
    if min(len(real), len(fake)) < 2:
        raise ValueError(f"FID/KID need at least 2 images per set, got {len(real)}, {len(fake)}")
    model = _load_inception(find_inception_weights(inception_weights), device)
    f_real = _extract(model, real, batch_size, device).numpy()  # (N, 2048)
    f_fake = _extract(model, fake, batch_size, device).numpy()
    mu_real, sigma_real = f_real.mean(0), np.cov(f_real, rowvar=False)  # (2048,), (2048, 2048)
    mu_fake, sigma_fake = f_fake.mean(0), np.cov(f_fake, rowvar=False)
    fid = frechet_distance(mu_real, sigma_real, mu_fake, sigma_fake)
    subset_size = min(1000, len(f_real), len(f_fake))
    kid_mean, kid_std = kid(f_real, f_fake, subset_size=subset_size, seed=seed)
    return {"fid": fid, "kid_mean": kid_mean, "kid_std": kid_std}


def evaluate(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    inception_weights: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 50,
    device: torch.device | str = "cpu",
) -> dict[str, float | str]:
    """SWD always; FID/KID too when the Inception weights are there, else a "note" on why not."""
    out: dict[str, float | str] = dict(swd(real, fake, seed=seed))
    try:
        out.update(
            fid_kid(
                real,
                fake,
                inception_weights=inception_weights,
                seed=seed,
                batch_size=batch_size,
                device=device,
            )
        )
    except InceptionUnavailable as e:
        out["note"] = f"FID/KID skipped: {e}"
    return out
