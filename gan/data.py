"""Image sources -> one uint8 tensor (N, C, S, S) in memory, with a report of what was skipped.

Sources: a folder (recursive, any layout), a `.zip` (read in memory, never extracted), an `.npz`
with key `images`, MNIST IDX files (`*-idx3-ubyte[.gz]`), and `synthetic` (coloured shapes on
plain backgrounds, learned by a small GAN within a minute on CPU). Every image is converted to the
model's channels, centre-cropped to a square and resized with antialiasing. Unreadable files are
skipped and counted by reason; zero usable images is an error.

Augmentations work on whole float batches on the training device (no per-image PIL in the loop).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

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

    def skip(self, reason: str, name: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        ex = self.examples.setdefault(reason, [])
        if len(ex) < N_EXAMPLES:
            ex.append(name)

    def note(self, what: str, n: int = 1) -> None:
        self.notes[what] = self.notes.get(what, 0) + n

    @classmethod
    def merge(cls, reports: Sequence[DatasetReport], source: str) -> DatasetReport:
        """One report for several sources: counts added, a few examples kept per reason."""
        out = cls(source, n_ok=sum(r.n_ok for r in reports))
        for r in reports:
            for reason, n in r.skipped.items():
                out.skipped[reason] = out.skipped.get(reason, 0) + n
                ex = out.examples.setdefault(reason, [])
                ex.extend(r.examples.get(reason, [])[: N_EXAMPLES - len(ex)])
            for what, n in r.notes.items():
                out.note(what, n)
        return out

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


# Formats decoded: the common photo/web formats, all pure-Python/C decoders in Pillow. Anything else
# (EPS, which would run Ghostscript; PSD; ICNS; ...) is "not an image", whatever its name.
IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP", "TIFF", "PPM")


@functools.cache
def _open_formats() -> tuple[str, ...]:
    Image.init()  # registers every plugin once (Pillow does this itself on a first unknown format)
    return tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)


def decode_image(data: bytes, size: int, channels: int, max_pixels: int) -> tuple[np.ndarray | None, str | None, bool]:
    """bytes -> (uint8 (C, S, S) array, None, animated) or (None, skip reason, False).

    Thread-safe: no process-wide Pillow setting is read for limits or changed. The pixel limit is
    checked from the header before any pixel is decoded, and a truncated file fails `load()`
    (Pillow's default; this module never sets LOAD_TRUNCATED_IMAGES). EXIF orientation is applied,
    then the image is centre-cropped to a square and resized (ImageOps.fit, Lanczos).
    """
    if len(data) == 0:
        return None, "empty file (0 bytes)", False
    too_large = f"image too large (over {max_pixels:,} pixels; decompression bomb guard)"
    try:
        img = Image.open(io.BytesIO(data), formats=_open_formats())  # reads the header only
    except Image.DecompressionBombError:  # over twice Pillow's own limit: refused by Pillow itself
        return None, too_large, False
    except UnidentifiedImageError:
        return None, "not an image", False
    except Exception:  # a header that a plugin chokes on (struct.error, SyntaxError, ...)
        return None, "truncated or corrupt image", False
    try:
        with img:
            w, h = img.size
            if w <= 0 or h <= 0:
                return None, "truncated or corrupt image", False
            if w * h > max_pixels:
                return None, too_large, False
            animated = getattr(img, "n_frames", 1) > 1  # the first frame is used
            if img.format in ("JPEG", "MPO"):
                # decode at a reduced scale (DCT scaling) when the image is much larger than needed
                img.draft("RGB" if channels == 3 else "L", (size * 2, size * 2))
            img.load()  # raises OSError on a truncated file
            a = fit_image(img, size, channels)
    except Exception:  # decoders raise OSError, SyntaxError, ValueError, struct.error, EOFError, ...
        return None, "truncated or corrupt image", False
    return a, None, animated


def fit_image(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """A decoded PIL image -> uint8 (C, size, size): EXIF orientation applied (phone photos), mode
    converted, centre-cropped to a square and resized with Lanczos (ImageOps.fit)."""
    img = ImageOps.exif_transpose(img)  # the camera's rotation, applied; a copy when there is none
    img = ImageOps.fit(_to_mode(img, channels), (size, size), Image.Resampling.LANCZOS)
    a = np.asarray(img, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (S, S[, C]) -> (C, S, S)
    return np.array(a, order="C")  # a writable copy of PIL's read-only buffer


# ---------------------------------------------------------------------------------------------
# sources: each yields (name, bytes) after its own safety checks


def _is_system(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" or p in SYSTEM_NAMES or p.startswith("._") for p in parts)


def _zip_entries(path: Path, limits: Limits, report: DatasetReport) -> Iterator[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(path)
    except Exception:  # BadZipFile, or a damaged central directory (OSError, ValueError, EOFError, ...)
        raise DataError(f"{path.name} is not a valid zip archive") from None
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
                data = zf.read(i)  # at most i.file_size bytes (checked above), CRC verified
            except RuntimeError:  # "File ... is encrypted, password required"
                report.skip("encrypted zip entry", name)
                continue
            except Exception:  # BadZipFile (CRC), zlib.error, EOFError, NotImplementedError, ...
                report.skip("corrupt zip entry", name)
                continue
            yield name, data


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
    yield from _read_files(files, limits, report, name=lambda f: f.relative_to(path).as_posix(),
                           holds=f"{path} holds")  # fmt: skip


def _gunzip(data: bytes, limit: int, what: str) -> bytes:
    """Decompress gzip data, refusing more than `limit` bytes of output (a gzip bomb)."""
    d = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
    try:
        out = d.decompress(data, limit + 1)
        if len(out) > limit:
            raise DataError(f"{what} unpacks to over {limit:,} bytes; the limit (GAN_MAX_TOTAL_BYTES)")
        out += d.flush()
    except zlib.error:
        raise DataError(f"{what} is not valid gzip data (damaged or truncated)") from None
    if not d.eof:
        raise DataError(f"{what} is truncated (the gzip stream ends early)")
    return out


def read_idx(data: bytes, *, limit: int = 2 << 30, what: str = "IDX file") -> np.ndarray:
    """Parse an IDX file (MNIST format); gzip is detected. Returns the array (e.g. N, 28, 28).

    Any malformed input raises DataError: bad magic, a header shorter than its dimensions say,
    data shorter than the dimensions, a gzip stream that is damaged or unpacks past `limit`.
    """
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, limit, what)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{what} is not an unsigned-byte IDX file (its first bytes are not 00 00 08)")
    ndim = data[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{what}: an IDX image file has 3 or 4 dimensions, this header says {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{what}: the IDX header is truncated ({len(data)} bytes, {header} needed)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    n = math.prod(dims)  # Python ints: no overflow for absurd dimensions
    if len(data) < header + n:
        raise DataError(
            f"{what} is truncated: dimensions {dims} need {n:,} bytes of pixels, it has {len(data) - header:,}"
        )
    return np.frombuffer(data, np.uint8, n, header).reshape(dims)


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
    if a.shape[0] == 0:
        raise DataError(f"{what}: the images array is empty")
    if min(a.shape[2:]) < 1:
        raise DataError(f"{what}: images of size {a.shape[2]}x{a.shape[3]} pixels")
    if a.dtype != np.uint8:
        if a.dtype.fields is not None or not (
            np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating) or a.dtype == np.bool_
        ):
            raise DataError(f"{what}: images must be integers or floats, got dtype {a.dtype}")
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


HF_DATASET_PREFIX = "hf://datasets/"
ARCHIVE_SUFFIXES = (".zip", ".npz")


def load_images(
    source: str | os.PathLike,
    image_size: int,
    channels: int,
    *,
    limits: Limits | None = None,
    seed: int = 0,
    n_synthetic: int = 2048,
    token: str | bool | None = None,
) -> ImageData:
    """Read a source into memory: `synthetic`, a folder, a .zip, an .npz, an IDX file, or a Hub
    dataset `hf://datasets/user/name[@revision]` (`token` is used for that only: None = the
    huggingface_hub default, False = anonymous)."""
    limits = limits or Limits.from_env()
    if str(source) == "synthetic":
        imgs = make_synthetic(n_synthetic, image_size, channels, seed)
        return ImageData(imgs, DatasetReport("synthetic shapes", n_ok=len(imgs)))
    if isinstance(source, str) and source.startswith(HF_DATASET_PREFIX):
        from .hubdata import load_hub_dataset  # imported on use: data sits below the Hub code

        return load_hub_dataset(source, image_size, channels, token=token, limits=limits)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"data source {str(source)!r} does not exist")
    report = DatasetReport(path.name or str(path))
    if path.is_file() and path.suffix.lower() == ".npz":
        return _load_npz(path, image_size, channels, limits, report)
    if path.is_file() and _is_idx(path.name):
        if path.stat().st_size > limits.max_total_bytes:
            raise DataError(f"{path.name} is over {limits.max_total_bytes:,} bytes; the limit (GAN_MAX_TOTAL_BYTES)")
        idx = read_idx(path.read_bytes(), limit=limits.max_total_bytes, what=path.name)
        arr = _array_to_images(idx, image_size, channels, path.name)
        report.n_ok = min(len(arr), limits.max_images)
        if len(arr) > limits.max_images:
            report.skip(f"over the limit of {limits.max_images:,} images", path.name, len(arr) - limits.max_images)
        return ImageData(torch.from_numpy(arr[: limits.max_images]), report)
    if path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)):
        entries = _zip_entries(path, limits, report)
    elif path.is_dir():
        entries = _folder_entries(path, limits, report)
    elif path.is_file():
        raise DataError(f"{path.name} is not a folder, .zip, .npz or IDX file; give a folder or a zip of images")
    else:
        raise DataError(f"{path} is not a regular file or folder")
    return _decode_all(entries, image_size, channels, limits, report)


def load_files(
    paths: Sequence[str | os.PathLike],
    size: int,
    channels: int,
    limits: Limits | None = None,
    *,
    token: str | bool | None = None,
) -> ImageData:
    """Uploaded files -> one ImageData with one merged report.

    Each archive (.zip, .npz, IDX, a folder, an `hf://datasets/...` id) is read by `load_images`;
    all other files (loose images, and anything else, which is skipped and counted) are decoded
    together as "N uploaded files". A broken archive raises DataError naming it. The limits
    apply to the list as a whole: number of files, bytes of loose files, images kept.
    """
    limits = limits or Limits.from_env()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise DataError("no files given")
    if len(paths) > limits.max_files:
        raise DataError(f"{len(paths):,} files given; the limit is {limits.max_files:,}")
    archives: list[str | Path] = []
    loose: list[Path] = []
    for p in paths:
        if isinstance(p, str) and p.startswith(HF_DATASET_PREFIX):
            archives.append(p)
            continue
        q = Path(p).expanduser()
        if not q.exists():
            raise DataError(f"uploaded file {q.name!r} does not exist (any more)")
        if q.is_dir() or q.suffix.lower() in ARCHIVE_SUFFIXES or _is_idx(q.name):
            archives.append(q)
        else:
            loose.append(q)
    parts = [load_images(a, size, channels, limits=limits, token=token) for a in archives]
    if loose:
        report = DatasetReport(f"{len(loose)} uploaded file{'s' if len(loose) > 1 else ''}")
        entries = _read_files(loose, limits, report, name=lambda f: f.name, holds="the uploaded files hold")
        parts.append(_decode_all(entries, size, channels, limits, report))
    if len(parts) == 1:
        return parts[0]
    report = DatasetReport.merge([p.report for p in parts], " + ".join(p.report.source for p in parts))
    images = torch.cat([p.images for p in parts])
    if len(images) > limits.max_images:
        report.skip(f"over the limit of {limits.max_images:,} images", parts[-1].report.source,
                    len(images) - limits.max_images)  # fmt: skip
        images = images[: limits.max_images]
    report.n_ok = len(images)
    return ImageData(images, report)


def _read_files(
    files: list[Path], limits: Limits, report: DatasetReport, *, name, holds: str
) -> Iterator[tuple[str, bytes]]:
    """(name(f), bytes) of files, skipping (and counting) symlinks, system files and unreadable files,
    and stopping at limits.max_total_bytes in all ("<holds> over N bytes; the limit")."""
    total = 0
    for f in files:
        rel = name(f)
        if f.is_symlink():
            report.skip("symbolic link; not followed", rel)
            continue
        if _is_system(rel):
            report.skip("system file (__MACOSX, .DS_Store, ._*)", rel)
            continue
        try:
            total += f.stat().st_size
            if total > limits.max_total_bytes:
                raise DataError(f"{holds} over {limits.max_total_bytes:,} bytes; the limit")
            data = f.read_bytes()
        except OSError:
            report.skip("unreadable file (permission or I/O error)", rel)
            continue
        yield rel, data


def _load_npz(path: Path, size: int, channels: int, limits: Limits, report: DatasetReport) -> ImageData:
    arr = _array_to_images(read_npz_images(path, limits), size, channels, path.name)
    report.n_ok = min(len(arr), limits.max_images)
    if len(arr) > limits.max_images:
        report.skip(f"over the limit of {limits.max_images:,} images", path.name, len(arr) - limits.max_images)
    return ImageData(torch.from_numpy(arr[: limits.max_images]), report)


def read_npz_images(path: Path, limits: Limits) -> np.ndarray:
    """The `images` array of an .npz, checked before it is allocated: no pickles, its size within
    the limits, the shape in its header consistent with its bytes. Every fault is a DataError."""
    name = path.name
    try:
        zf = zipfile.ZipFile(path)
    except Exception:
        raise DataError(f"{name} is not a valid .npz (an .npz is a zip archive of .npy arrays)") from None
    with zf:
        names = [i.filename for i in zf.infolist()]
        if "images.npy" not in names:
            have = ", ".join(n.removesuffix(".npy") for n in names[:10]) or "nothing"
            raise DataError(f"{name} has no array named 'images' (it has: {have})")
        info = zf.getinfo("images.npy")
        if info.file_size > limits.max_total_bytes:
            raise DataError(
                f"{name}: 'images' is {info.file_size:,} bytes; "
                f"the limit is {limits.max_total_bytes:,} (GAN_MAX_TOTAL_BYTES)"
            )
        try:
            data = zf.read(info)
        except Exception:
            raise DataError(f"{name} is damaged: its 'images' array cannot be unpacked") from None
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except Exception:
        raise DataError(f"{name}: 'images' is not a valid .npy array (its header is damaged)") from None
    if dtype.hasobject:
        raise DataError(f"{name}: 'images' holds Python objects (pickles); GAN Lab reads numeric arrays only")
    need = math.prod(shape) * dtype.itemsize
    if need > len(data) - f.tell():
        raise DataError(
            f"{name}: 'images' is truncated (shape {shape} needs {need:,} bytes, it has {len(data) - f.tell():,})"
        )
    try:
        a = np.frombuffer(data, dtype, math.prod(shape), f.tell()).reshape(shape, order="F" if fortran else "C")
    except Exception as e:
        raise DataError(f"{name}: 'images' cannot be read ({type(e).__name__})") from None
    return a


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
                idx = read_idx(data, limit=limits.max_total_bytes, what="IDX file")
                imgs = _array_to_images(idx, size, channels, "IDX file")
            except DataError as e:
                report.skip(str(e), name)
                continue
            room = max(limits.max_images - len(arrays), 0)
            if len(imgs) > room:
                report.skip(f"over the limit of {limits.max_images:,} images", name, len(imgs) - room)
            arrays.extend(imgs[:room])
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
