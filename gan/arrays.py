"""Image arrays: MNIST IDX files and `.npz` arrays, read from their headers first, and whole arrays
converted to uint8 (N, C, S, S) in chunks (a float array never costs more than itself + the output).
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F

from .budget import DataError, Limits, check_member

CHUNK_BYTES = 32 << 20  # float32 bytes of source pixels converted at once
READ_BYTES = 16 << 20  # bytes read from a stream at once


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


def idx_dims(f: BinaryIO) -> tuple[int, ...] | None:
    """The dimensions in an IDX file's header (gzip or not), read from the start of a stream; None
    when it is not a readable unsigned-byte IDX header (read_idx says why when the file is read)."""
    try:
        head = f.read(64)
        if head[:2] == b"\x1f\x8b":
            d = zlib.decompressobj(wbits=31)
            out = d.decompress(head, 20)
            for _ in range(1024):  # a gzip header may carry a long name or comment: 64 KB at most
                if len(out) >= 20 or d.eof:
                    break
                more = f.read(64)
                if not more:
                    break
                out += d.decompress(d.unconsumed_tail + more, 20 - len(out))
            head = out
    except Exception:  # zlib.error, a zip entry that is encrypted or damaged, OSError
        return None
    if len(head) < 4 or head[:3] != b"\0\0\x08" or not 1 <= head[3] <= 4 or len(head) < 4 + 4 * head[3]:
        return None
    return tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(head[3]))


def is_idx(name: str) -> bool:
    return "idx3-ubyte" in name


# ---------------------------------------------------------------------------------------------
# .npz: the header first, then the array


@dataclass(frozen=True)
class NpyHeader:
    """The `images` member of an .npz, from its listing and .npy header (nothing allocated)."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int  # bytes of the .npy header before the array

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def count(self) -> int:
        return self.shape[0]


def npz_header(path: Path, limits: Limits) -> NpyHeader:
    """The `images` array's header, checked before any of it is read: its declared size and
    compression ratio, no pickles, a numeric dtype, an image shape, and shape x itemsize equal to
    the member's declared size. Only the header is decompressed. Every fault is a DataError."""
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
        check_member(info, limits, name)
        try:
            with zf.open(info) as f:  # streamed: only the header is decompressed
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
                offset = f.tell()
        except Exception:
            raise DataError(f"{name}: 'images' is not a valid .npy array (its header is damaged)") from None
    if dtype.hasobject:
        raise DataError(f"{name}: 'images' holds Python objects (pickles); GAN Lab reads numeric arrays only")
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise DataError(f"{name}: images must be integers or floats, got dtype {dtype}")
    nchw_shape(shape, name)
    head = NpyHeader(info, tuple(shape), dtype, fortran, offset)
    if head.nbytes != info.file_size - offset:
        word = "truncated" if head.nbytes > info.file_size - offset else "inconsistent"
        raise DataError(
            f"{name}: 'images' is {word} (shape {head.shape} needs {head.nbytes:,} bytes, "
            f"it has {info.file_size - offset:,} bytes)"
        )
    return head


def npz_array(path: Path, head: NpyHeader) -> np.ndarray:
    """The array whose header `npz_header` checked, read into one writable buffer of its size."""
    buf = np.empty(head.nbytes, np.uint8)
    view, pos = memoryview(buf), 0
    try:
        with zipfile.ZipFile(path) as zf, zf.open(head.info) as f:
            f.read(head.offset)
            while pos < head.nbytes:
                k = f.readinto(view[pos : pos + READ_BYTES])
                if not k:
                    break
                pos += k
            f.read(1)  # at the end: the CRC is checked
    except MemoryError:  # a memory cap (a child process's): not damage
        raise
    except Exception:
        raise DataError(f"{path.name} is damaged: its 'images' array cannot be unpacked") from None
    if pos < head.nbytes:
        raise DataError(f"{path.name}: 'images' is truncated ({pos:,} of {head.nbytes:,} bytes)")
    return buf.view(head.dtype).reshape(head.shape, order="F" if head.fortran else "C")


# ---------------------------------------------------------------------------------------------
# whole arrays -> uint8 (N, C, S, S)


def nchw_shape(shape: tuple[int, ...], what: str) -> tuple[int, int, int, int, bool]:
    """An image array's shape -> (N, C, H, W, channels last); a DataError for anything else."""
    if len(shape) == 3:
        n, h, w = shape
        c, last = 1, False
    elif len(shape) == 4 and shape[-1] in (1, 3, 4) and shape[1] not in (1, 3, 4):
        n, h, w, c = shape
        last = True
    elif len(shape) == 4 and shape[1] in (1, 3, 4):
        n, c, h, w = shape
        last = False
    else:
        raise DataError(f"{what}: expected images shaped (N,H,W), (N,H,W,C) or (N,C,H,W); got {tuple(shape)}")
    if n == 0:
        raise DataError(f"{what}: the images array is empty")
    if min(h, w) < 1:
        raise DataError(f"{what}: images of size {h}x{w} pixels")
    return n, c, h, w, last


def _value_range(a: np.ndarray, rows: int) -> tuple[float, float]:
    """(min, max) of a non-uint8 array, NaN ignored, a chunk at a time."""
    lo, hi = math.inf, -math.inf
    for i in range(0, len(a), rows):
        f = a[i : i + rows].astype(np.float32)
        lo, hi = min(lo, float(np.fmin.reduce(f, axis=None))), max(hi, float(np.fmax.reduce(f, axis=None)))
    return lo, hi


def _chunk_to_uint8(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A chunk of a non-uint8 array -> uint8: values in [0, 1] or [-1, 1] scaled to [0, 255]."""
    f = x.astype(np.float32)
    if lo >= -1.0 and hi <= 1.0:
        f = (f + 1.0) * 127.5 if lo < 0 else f * 255.0
    return np.clip(np.nan_to_num(f) + 0.5, 0, 255).astype(np.uint8)


def _array_to_images(a: np.ndarray, size: int, channels: int, what: str) -> np.ndarray:
    """(N, H, W) / (N, H, W, C) / (N, C, H, W) uint8, int, bool or float -> uint8 (N, C, S, S).

    Converted CHUNK_BYTES at a time into one output array: the memory is the source + the output +
    one chunk. Floats in [0, 1] or [-1, 1] (over the whole array) are scaled to [0, 255]; RGBA is
    composited on white; channels are converted; each image is centre-cropped and resized."""
    n, c, h, w, last = nchw_shape(a.shape, what)
    a = a[:, None] if a.ndim == 3 else a.transpose(0, 3, 1, 2) if last else a  # (N, C, H, W), views
    if a.dtype != np.uint8 and (
        a.dtype.fields is not None
        or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating) or a.dtype == np.bool_)
    ):
        raise DataError(f"{what}: images must be integers or floats, got dtype {a.dtype}")
    rows = max(1, CHUNK_BYTES // (c * h * w * 4))
    lo, hi = _value_range(a, rows) if a.dtype != np.uint8 else (0.0, 255.0)
    out = np.empty((n, channels, size, size), np.uint8)
    for i in range(0, n, rows):
        x = a[i : i + rows]
        x = _chunk_to_uint8(x, lo, hi) if x.dtype != np.uint8 else x
        if c == 4:  # RGBA: composite on white
            alpha = x[:, 3:4].astype(np.float32) / 255.0
            x = (x[:, :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
        t = torch.from_numpy(np.array(x, copy=not x.flags.writeable or not x.flags.c_contiguous))
        if channels == 1 and t.shape[1] == 3:
            t = _luma(t)
        elif channels == 3 and t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        out[i : i + rows] = resize_batch(t, size).numpy()
    return out


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
    rows = max(1, CHUNK_BYTES // (x[0].numel() * 4))
    out = []
    for chunk in x.split(rows):
        y = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True)
        out.append((y + 0.5).clamp(0, 255).to(torch.uint8))
    return torch.cat(out)
