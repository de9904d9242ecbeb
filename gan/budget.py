"""Budgets for training data, checked from listings and headers before the cost is paid.

Two budgets bound what one data source may cost, besides the per-file limits (entry count,
uncompressed bytes, compression ratio, pixels of one image):

- memory: the images kept, count x channels x size x size bytes at the training resolution,
  plus the largest source array held while it is converted (an `.npz` or IDX array), against
  `max_data_bytes`. Counted from zip and folder listings and from IDX and `.npy` headers before
  anything is decoded; an `ImagePile` checks it again as images arrive (a source whose listing
  said less, e.g. images without an image suffix, or a Hub dataset).
- CPU: the pixels decoded at the images' own resolution (after JPEG's reduced-scale decoding),
  added up from each image's header before its pixels are decoded, against `max_decode_pixels`.

`Limits()` holds the local defaults; `Limits.from_env(on_space=True)` (or SPACE_ID set) a public
Space's, which leave room for several visitors at once. 0 turns either budget off.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import GanError

MB = 1_000_000
SPACE_DATA_MB = 512  # GAN_MAX_DATA_MB on a Space: 16 GB of RAM shared by several visitors and their runs
LOCAL_DATA_SHARE = 4  # locally: a quarter of the machine's memory ...
LOCAL_DATA_MB = (512, 16_000)  # ... within these bounds
# One-colour PNGs decode at 25-50 megapixels/s per core here (RGBA and 16-bit at 15-30), resize included:
# 250 M pixels is 5-15 s of CPU, the most one upload may take on a Space. Locally ~1 h.
SPACE_DECODE_MPIX = 250  # GAN_MAX_DECODE_MPIX on a Space
LOCAL_DECODE_MPIX = 100_000  # GAN_MAX_DECODE_MPIX locally
BLOCK_BYTES = 16 << 20  # an ImagePile grows in blocks of this size


class DataError(GanError):
    """The data source cannot be used (missing, empty, unsafe or over a limit)."""


def _memory_bytes() -> int | None:
    """Physical memory, or the container's cgroup limit when that is lower; None when unknown."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        ram = None
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            cap = int(Path(f).read_text().strip())  # "max" (no limit) is not an integer
        except (OSError, ValueError):
            continue
        ram = min(ram, cap) if ram else cap
    return ram if ram and ram > 0 else None


def local_data_bytes() -> int:
    """The local data budget: a quarter of this machine's memory, between 512 MB and 16 GB."""
    ram = _memory_bytes()
    lo, hi = LOCAL_DATA_MB
    return int(min(max((ram or 8 << 30) // LOCAL_DATA_SHARE, lo * MB), hi * MB))


def _env_int(env: Mapping[str, str], name: str, default: int, *, unit: int = 1) -> int:
    """An integer environment variable times `unit`; `default` (already in units of 1) when unset."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DataError(f"environment variable {name} must be an integer") from None
    if value < 0:
        raise DataError(f"environment variable {name} must not be negative")
    return value * unit


@dataclass(frozen=True)
class Limits:
    """Bounds checked before any work. `Limits()`: local defaults; `from_env` reads the env vars."""

    max_files: int = 100_000  # GAN_MAX_FILES: entries in a folder or zip
    max_total_bytes: int = 2 << 30  # GAN_MAX_TOTAL_BYTES: uncompressed bytes read from a zip or folder
    max_ratio: int = 250  # GAN_MAX_ZIP_RATIO: a zip entry or .npz member expanding more is a bomb
    max_image_pixels: int = 40_000_000  # GAN_MAX_IMAGE_PIXELS: one decoded image (decompression bomb guard)
    max_images: int = 100_000  # GAN_MAX_IMAGES: usable images kept
    max_data_bytes: int = field(default_factory=local_data_bytes)  # GAN_MAX_DATA_MB: images in memory (0: none)
    max_decode_pixels: int = LOCAL_DECODE_MPIX * MB  # GAN_MAX_DECODE_MPIX: pixels decoded per load (0: none)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, on_space: bool | None = None) -> Limits:
        """Limits from `environ` (default os.environ) over the defaults of a public Space
        (`on_space=True`) or of this machine (False); None: a Space when SPACE_ID is set."""
        env = os.environ if environ is None else environ
        if on_space is None:
            on_space = bool(env.get("SPACE_ID"))
        d = cls.space() if on_space else cls()
        return cls(
            max_files=_env_int(env, "GAN_MAX_FILES", d.max_files),
            max_total_bytes=_env_int(env, "GAN_MAX_TOTAL_BYTES", d.max_total_bytes),
            max_ratio=_env_int(env, "GAN_MAX_ZIP_RATIO", d.max_ratio),
            max_image_pixels=_env_int(env, "GAN_MAX_IMAGE_PIXELS", d.max_image_pixels),
            max_images=_env_int(env, "GAN_MAX_IMAGES", d.max_images),
            max_data_bytes=_env_int(env, "GAN_MAX_DATA_MB", d.max_data_bytes, unit=MB),
            max_decode_pixels=_env_int(env, "GAN_MAX_DECODE_MPIX", d.max_decode_pixels, unit=MB),
        )

    @classmethod
    def space(cls) -> Limits:
        """The defaults of a public Space: budgets small enough for several visitors at once."""
        return cls(max_data_bytes=SPACE_DATA_MB * MB, max_decode_pixels=SPACE_DECODE_MPIX * MB)


def _size(n: int) -> str:
    return f"{n:,} bytes ({n / MB:,.0f} MB)" if n >= 10 * MB else f"{n:,} bytes ({n / MB:.1f} MB)"


def check_member(info: zipfile.ZipInfo, limits: Limits, what: str) -> None:
    """A zip entry or .npz member, from its listing: refuse a likely bomb (compression ratio)."""
    if info.file_size > 1 << 20 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise DataError(
            f"{what}: entry {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
            f"(limit {limits.max_ratio}x, GAN_MAX_ZIP_RATIO); refusing a likely zip bomb"
        )


def check_data_bytes(
    count: int, size: int, channels: int, limits: Limits, what: str, *, extra: int = 0, so_far: bool = False
) -> None:
    """Refuse `count` images of size x size x channels uint8 (+ `extra` bytes of a source array held
    while it is converted) over limits.max_data_bytes, saying how to get under the budget."""
    need = count * channels * size * size + extra
    if not limits.max_data_bytes or need <= limits.max_data_bytes:
        return
    held = f", plus {_size(extra)} for the source array while it is converted" if extra else ""
    ch = f"{channels} channel{'s' if channels > 1 else ''}"
    images = f"{count:,} images decoded so far" if so_far else f"{count:,} images"
    raise DataError(
        f"{what}: {images} at {size}x{size} ({ch}) need {_size(count * channels * size * size)} in memory{held}; "
        f"the data budget is {_size(limits.max_data_bytes)} (GAN_MAX_DATA_MB). Use fewer images, a smaller "
        "image size, or raise GAN_MAX_DATA_MB."
    )


class PixelBudget:
    """Pixels decoded at the images' own resolution, added up before each image's pixels are
    decoded; over limits.max_decode_pixels the whole source is refused (DataError)."""

    def __init__(self, limits: Limits, what: str) -> None:
        self.limit = limits.max_decode_pixels
        self.what = what
        self.spent = 0
        self.images = 0
        self._lock = threading.Lock()

    def spend(self, width: int, height: int) -> None:
        with self._lock:
            if self.limit and self.spent + width * height > self.limit:
                raise DataError(
                    f"{self.what}: its images hold over {self.limit / MB:,.0f} megapixels at their own resolution "
                    f"(the decode budget, GAN_MAX_DECODE_MPIX; {self.spent / MB:,.0f} M in {self.images:,} images "
                    f"decoded, the next is {width}x{height}). Use fewer or smaller images (resize them before "
                    "uploading), or raise GAN_MAX_DECODE_MPIX."
                )
            self.spent += width * height
            self.images += 1


class ImagePile:
    """uint8 (C, S, S) images gathered in blocks of BLOCK_BYTES, joined once at the end (memory:
    the images + one block, where a list + np.stack holds them twice), within limits.max_data_bytes."""

    def __init__(self, size: int, channels: int, limits: Limits, what: str) -> None:
        self.size, self.channels, self.limits, self.what = size, channels, limits, what
        self._per = channels * size * size
        self._blocks: list[np.ndarray] = []
        self._cur: np.ndarray | None = None
        self._fill = 0
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def _charge(self, k: int) -> None:
        check_data_bytes(self._n + k, self.size, self.channels, self.limits, self.what, so_far=True)
        self._n += k

    def add(self, img: np.ndarray) -> None:
        """One uint8 (C, S, S) image."""
        self._charge(1)
        if self._cur is None:
            rows = max(1, BLOCK_BYTES // self._per)
            self._cur = np.empty((rows, self.channels, self.size, self.size), np.uint8)  # pages touched as filled
        self._cur[self._fill] = img
        self._fill += 1
        if self._fill == len(self._cur):
            self._close()

    def add_array(self, images: np.ndarray) -> None:
        """uint8 (N, C, S, S) images, kept as they are (no copy until `array`)."""
        self._charge(len(images))
        self._close()
        self._blocks.append(images)

    def _close(self) -> None:
        if self._cur is not None and self._fill:
            part = self._cur[: self._fill]  # a partial block is copied: its unused rows are not kept
            self._blocks.append(part if self._fill == len(self._cur) else part.copy())
        self._cur, self._fill = None, 0

    def array(self) -> np.ndarray:
        """All images as one uint8 (N, C, S, S) array; the pile is empty afterwards."""
        self._close()
        blocks, self._blocks, self._n = self._blocks, [], 0
        if len(blocks) == 1:
            return blocks[0]
        out = np.empty((sum(len(b) for b in blocks), self.channels, self.size, self.size), np.uint8)
        i = 0
        for j in range(len(blocks)):
            b, blocks[j] = blocks[j], None  # each block is freed as soon as it is copied
            out[i : i + len(b)] = b
            i += len(b)
            del b
        return out
