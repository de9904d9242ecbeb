"""Image sources -> one uint8 tensor (N, C, S, S) in memory, with a report of what was skipped.

Sources: a folder (recursive, any layout), a `.zip` (read in memory, never extracted), an `.npz`
with key `images`, MNIST IDX files (`*-idx3-ubyte[.gz]`), and `synthetic` (coloured shapes on
plain backgrounds, learned by a small GAN within a minute on CPU). Every image is converted to the
model's channels, centre-cropped to a square and resized with antialiasing. Unreadable files are
skipped and counted by reason; zero usable images is an error.

Augmentations work on whole float batches on the training device (no per-image PIL in the loop).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, UnidentifiedImageError

SYSTEM_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
N_EXAMPLES = 3


class DataError(ValueError):
    """The data source cannot be used (missing, empty, unsafe or over a limit)."""


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise DataError(f"environment variable {name} must be an integer") from None


@dataclass(frozen=True)
class Limits:
    """Bounds checked before any work; defaults suit a public Space. Env vars override them."""

    max_files: int = 100_000  # entries in a folder or zip
    max_total_bytes: int = 2 << 30  # uncompressed bytes read from a zip or folder
    max_ratio: int = 250  # zip entry compression ratio above which it is a zip bomb
    max_image_pixels: int = 40_000_000  # one decoded image (PIL decompression-bomb guard)
    max_images: int = 100_000  # usable images kept

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            max_files=_env_int("GAN_MAX_FILES", d.max_files),
            max_total_bytes=_env_int("GAN_MAX_TOTAL_BYTES", d.max_total_bytes),
            max_ratio=_env_int("GAN_MAX_ZIP_RATIO", d.max_ratio),
            max_image_pixels=_env_int("GAN_MAX_IMAGE_PIXELS", d.max_image_pixels),
            max_images=_env_int("GAN_MAX_IMAGES", d.max_images),
        )


@dataclass
class DatasetReport:
    """What a source gave: images used, files skipped by reason, a few example names each."""

    source: str
    n_ok: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # used, but worth knowing (e.g. animated)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, name: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < N_EXAMPLES:
            ex.append(name)

    def note(self, what: str) -> None:
        self.notes[what] = self.notes.get(what, 0) + 1

    def details(self) -> list[str]:
        """One line per skip reason (most frequent first, with example names), then the notes."""
        lines = [
            f"skipped {n}: {reason} (e.g. {', '.join(self.examples.get(reason, []))})"
            for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1])
        ]
        return lines + [f"note {n}: {what}" for what, n in sorted(self.notes.items())]

    def summary(self) -> str:
        head = f"{self.n_ok} images used from {self.source}; {self.n_skipped} files skipped"
        return "\n".join([head] + ["  " + line for line in self.details()])


@dataclass
class ImageData:
    """The training set: uint8 images (N, C, S, S) and the report of how they were read."""

    images: torch.Tensor
    report: DatasetReport

    def __len__(self) -> int:
        return self.images.shape[0]

    def fingerprint(self) -> str:
        """sha256 of shape + bytes, first 16 hex digits; stored in checkpoints."""
        h = hashlib.sha256(str(tuple(self.images.shape)).encode())
        h.update(self.images.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# decoding one image


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any PIL mode -> 'L' or 'RGB'. Alpha is composited on white; 16-bit is scaled to 8-bit."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB" if channels == 3 else "L")


def _center_square_resize(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    img = img.crop((left, top, left + s, top + s))
    if s != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


def decode_image(data: bytes, size: int, channels: int, max_pixels: int) -> tuple[np.ndarray | None, str | None, bool]:
    """bytes -> (uint8 (C, S, S) array, None, animated) or (None, skip reason, False)."""
    if len(data) == 0:
        return None, "empty file (0 bytes)", False
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
            try:
                img = Image.open(io.BytesIO(data))
                w, h = img.size
                if w * h > max_pixels:
                    return None, f"image too large (over {max_pixels:,} pixels)", False
                animated = getattr(img, "n_frames", 1) > 1  # the first frame is used
                if img.format == "JPEG":
                    img.draft("RGB" if channels == 3 else "L", (size * 2, size * 2))
                img.load()
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, f"decompression bomb (over {max_pixels:,} pixels)", False
    except UnidentifiedImageError:
        return None, "not an image", False
    except (OSError, SyntaxError, ValueError, struct.error, EOFError):
        return None, "truncated or corrupt image", False
    img = _center_square_resize(_to_mode(img, channels), size)
    a = np.asarray(img, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (S, S[, C]) -> (C, S, S)
    return np.ascontiguousarray(a), None, animated


# ---------------------------------------------------------------------------------------------
# sources: each yields (name, bytes) after its own safety checks


def _is_system(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" or p in SYSTEM_NAMES or p.startswith("._") for p in parts)


def _zip_entries(path: Path, limits: Limits, report: DatasetReport) -> Iterator[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{path.name} is not a valid zip file") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if not infos:
            raise DataError(f"{path.name} is an empty zip (no files inside)")
        if len(infos) > limits.max_files:
            raise DataError(f"{path.name} has {len(infos):,} files; the limit is {limits.max_files:,}")
        total = sum(i.file_size for i in infos)
        if total > limits.max_total_bytes:
            raise DataError(
                f"{path.name} would unpack to {total:,} bytes; the limit is {limits.max_total_bytes:,} (zip bomb guard)"
            )
        for i in infos:
            if i.file_size > 1 << 20 and i.file_size > limits.max_ratio * max(i.compress_size, 1):
                raise DataError(
                    f"{path.name}: entry {i.filename!r} expands {i.file_size / max(i.compress_size, 1):.0f}x "
                    f"(limit {limits.max_ratio}x); refusing a likely zip bomb"
                )
        for i in infos:
            name = i.filename
            p = PurePosixPath(name.replace("\\", "/"))
            if p.is_absolute() or ".." in p.parts or (len(name) > 1 and name[1] == ":"):
                report.skip("unsafe path in zip (absolute or '..'); not read", name)
                continue
            if _is_system(name):
                report.skip("system file (__MACOSX, .DS_Store, ._*)", name)
                continue
            try:
                yield name, zf.read(i)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
                report.skip("corrupt zip entry", name)


def _folder_entries(path: Path, limits: Limits, report: DatasetReport) -> Iterator[tuple[str, bytes]]:
    files: list[Path] = []
    for root, dirs, names in os.walk(path, followlinks=False):
        dirs.sort()
        for n in sorted(names):
            files.append(Path(root) / n)
            if len(files) > limits.max_files:
                raise DataError(f"{path} has over {limits.max_files:,} files; the limit")
    if not files:
        raise DataError(f"folder {path} has no files")
    total = 0
    for f in files:
        rel = f.relative_to(path).as_posix()
        if f.is_symlink():
            report.skip("symbolic link; not followed", rel)
            continue
        if _is_system(rel):
            report.skip("system file (__MACOSX, .DS_Store, ._*)", rel)
            continue
        total += f.stat().st_size
        if total > limits.max_total_bytes:
            raise DataError(f"{path} holds over {limits.max_total_bytes:,} bytes; the limit")
        yield rel, f.read_bytes()


def read_idx(data: bytes) -> np.ndarray:
    """Parse an IDX file (MNIST format); gzip is detected. Returns the array (e.g. N, 28, 28)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError("not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    n = int(np.prod(dims))
    if len(data) < 4 + 4 * ndim + n:
        raise DataError("IDX file is truncated")
    return np.frombuffer(data, np.uint8, n, 4 + 4 * ndim).reshape(dims)


def _is_idx(name: str) -> bool:
    return "idx3-ubyte" in name


def _array_to_images(a: np.ndarray, size: int, channels: int, what: str) -> np.ndarray:
    """(N, H, W) / (N, H, W, C) / (N, C, H, W) uint8 or float -> uint8 (N, C, S, S)."""
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3, 4):
        a = a.transpose(0, 3, 1, 2)
    if a.ndim != 4 or a.shape[1] not in (1, 3, 4):
        raise DataError(f"{what}: expected images shaped (N,H,W), (N,H,W,C) or (N,C,H,W); got {a.shape}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number):
            raise DataError(f"{what}: images must be numeric, got dtype {a.dtype}")
        f = a.astype(np.float32)
        lo, hi = float(np.nanmin(f)), float(np.nanmax(f))
        if lo >= -1.0 and hi <= 1.0:
            f = (f + 1.0) * 127.5 if lo < 0 else f * 255.0
        a = np.clip(np.nan_to_num(f) + 0.5, 0, 255).astype(np.uint8)
    if a.shape[1] == 4:  # RGBA: composite on white
        alpha = a[:, 3:4].astype(np.float32) / 255.0
        a = (a[:, :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    x = torch.from_numpy(np.array(a, copy=not a.flags.writeable or not a.flags.c_contiguous))
    if channels == 1 and x.shape[1] == 3:
        x = _luma(x)
    elif channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return resize_batch(x, size).numpy()


def _luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return ((x.float() * w).sum(1, keepdim=True) + 0.5).clamp(0, 255).to(torch.uint8)


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> centre square crop -> uint8 (N, C, size, size), antialiased."""
    h, w = x.shape[-2:]
    s = min(h, w)
    x = x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    if s == size:
        return x.contiguous()
    out = []
    for chunk in x.split(1024):
        y = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True)
        out.append((y + 0.5).clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# synthetic shapes


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


# ---------------------------------------------------------------------------------------------
# the one entry point


def load_images(
    source: str | os.PathLike,
    image_size: int,
    channels: int,
    *,
    limits: Limits | None = None,
    seed: int = 0,
    n_synthetic: int = 2048,
) -> ImageData:
    """Read a source into memory: `synthetic`, a folder, a .zip, an .npz or an IDX file."""
    limits = limits or Limits.from_env()
    if str(source) == "synthetic":
        imgs = make_synthetic(n_synthetic, image_size, channels, seed)
        return ImageData(imgs, DatasetReport("synthetic shapes", n_ok=len(imgs)))
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"data source {str(source)!r} does not exist")
    report = DatasetReport(path.name or str(path))
    if path.is_file() and path.suffix.lower() == ".npz":
        return _load_npz(path, image_size, channels, limits, report)
    if path.is_file() and _is_idx(path.name):
        arr = _array_to_images(read_idx(path.read_bytes()), image_size, channels, path.name)
        report.n_ok = len(arr)
        return ImageData(torch.from_numpy(arr[: limits.max_images]), report)
    if path.is_file() and zipfile.is_zipfile(path):
        entries = _zip_entries(path, limits, report)
    elif path.is_dir():
        entries = _folder_entries(path, limits, report)
    elif path.is_file():
        raise DataError(f"{path.name} is not a folder, .zip, .npz or IDX file; give a folder or a zip of images")
    else:
        raise DataError(f"{path} is not a regular file or folder")
    return _decode_all(entries, image_size, channels, limits, report)


def _load_npz(path: Path, size: int, channels: int, limits: Limits, report: DatasetReport) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise DataError(f"{path.name} has no array named 'images' (it has: {', '.join(z.files)})")
            a = z["images"]
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path.name} is not a readable .npz without pickled objects ({e})") from None
    arr = _array_to_images(a[: limits.max_images], size, channels, path.name)
    if len(arr) == 0:
        raise DataError(f"{path.name}: the 'images' array is empty")
    report.n_ok = len(arr)
    return ImageData(torch.from_numpy(arr), report)


def _decode_all(
    entries: Iterator[tuple[str, bytes]], size: int, channels: int, limits: Limits, report: DatasetReport
) -> ImageData:
    arrays: list[np.ndarray] = []
    for name, data in entries:
        if "idx1-ubyte" in name:
            report.skip("IDX label file (labels, not images)", name)
            continue
        if _is_idx(name):
            try:
                arrays.extend(_array_to_images(read_idx(data), size, channels, name))
            except DataError as e:
                report.skip(f"bad IDX file ({e})", name)
            continue
        if len(arrays) >= limits.max_images:
            report.skip(f"over the limit of {limits.max_images:,} images", name)
            continue
        arr, reason, animated = decode_image(data, size, channels, limits.max_image_pixels)
        if arr is None:
            report.skip(reason or "unreadable", name)
            continue
        if animated:
            report.note("animated image: first frame used")
        arrays.append(arr)
    arrays = arrays[: limits.max_images]
    report.n_ok = len(arrays)
    if not arrays:
        detail = "; ".join(f"{n} {r}" for r, n in report.skipped.items()) or "no files"
        raise DataError(f"no usable images in {report.source} ({detail})")
    return ImageData(torch.from_numpy(np.stack(arrays)), report)


# ---------------------------------------------------------------------------------------------
# augmentation on float batches in [-1, 1], shape (B, C, H, W); randomness from `g`


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return ((x.float().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8)


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
