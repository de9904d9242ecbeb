"""Image sources -> one uint8 tensor (N, C, S, S) in memory, with a report of what was skipped.

Sources: a folder (recursive, any layout), a `.zip` (read in memory, never extracted), an `.npz`
with key `images`, MNIST IDX files (`*-idx3-ubyte[.gz]`), and `synthetic` (coloured shapes on
plain backgrounds, learned by a small GAN within a minute on CPU). Every image is converted to the
model's channels, centre-cropped to a square and resized with antialiasing. Unreadable files are
skipped and counted by reason; zero usable images is an error.

Every source is opened from its listing and headers first (zip and folder listings, IDX and .npy
headers) and its cost checked against the limits (gan.budget) before anything is decoded.

Augmentations work on whole float batches on the training device (no per-image PIL in the loop).
"""

from __future__ import annotations

import functools
import math
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import torch

from .arrays import (
    _array_to_images,
    idx_dims,
    is_idx,
    nchw_shape,
    npz_array,
    npz_header,
    read_idx,
    resize_batch,  # noqa: F401 (re-exported)
)
from .budget import DataError, ImagePile, Limits, PixelBudget, check_data_bytes, check_member
from .dataset import DatasetReport, ImageData
from .decode import decode_image, fit_image  # noqa: F401 (re-exported)
from .synthetic import make_synthetic

SYSTEM_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
# names counted as images in a listing (anything else is still tried, and bounded as it is decoded)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".dib", ".webp", ".tif", ".tiff",
                  ".ppm", ".pgm", ".pbm", ".pnm", ".mpo")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# sources: each is opened from its listing and headers (what it would cost), then read


@dataclass
class _Source:
    """A source opened from its listing and headers, nothing decoded yet."""

    name: str
    count: int  # images it would give: files named like images, IDX and .npy arrays by their headers
    extra: int  # bytes of its largest source array, held while that is converted
    read: Callable[[ImagePile, PixelBudget], DatasetReport]  # adds its images to the pile


def _is_system(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" or p in SYSTEM_NAMES or p.startswith("._") for p in parts)


def _is_unsafe(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return p.is_absolute() or ".." in p.parts or (len(name) > 1 and name[1] == ":")


def _idx_cost(dims: tuple[int, ...] | None, size: int | None, name: str) -> tuple[int, int]:
    """(images, bytes) of an IDX file from its header; (0, 0) when its size shows it truncated
    (read_idx then says so)."""
    if not dims or (size is not None and not name.endswith(".gz") and size < 4 + 4 * len(dims) + math.prod(dims)):
        return 0, 0
    return dims[0], math.prod(dims)


def _tally(items: Iterable[tuple[str, Callable[[], BinaryIO], int | None]]) -> tuple[int, int]:
    """(images, largest array bytes) of (name, opener, size) entries: one per image-named file, and
    an IDX image file's count from its header."""
    n = extra = 0
    for name, opener, size in items:
        if is_idx(name):
            try:
                with opener() as f:
                    k, b = _idx_cost(idx_dims(f), size, name)
            except Exception:  # unreadable here: read_idx or the reader skips it later
                k, b = 0, 0
            n, extra = n + k, max(extra, b)
        elif name.lower().endswith(IMAGE_SUFFIXES):
            n += 1
    return n, extra


def _zip_source(path: Path, limits: Limits) -> _Source:
    report = DatasetReport(path.name)
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
            check_member(i, limits, path.name)
        keep = []
        for i in infos:
            if _is_unsafe(i.filename):
                report.skip("unsafe path in zip (absolute or '..'); not read", i.filename)
            elif _is_system(i.filename):
                report.skip("system file (__MACOSX, .DS_Store, ._*)", i.filename)
            else:
                keep.append(i)
        n, extra = _tally((i.filename, functools.partial(zf.open, i), i.file_size) for i in keep)

    def read(pile: ImagePile, pixels: PixelBudget) -> DatasetReport:
        _decode_into(_zip_entries(path, keep, report), pile, limits, report, pixels)
        return report

    return _Source(report.source, n, extra, read)


def _zip_entries(path: Path, infos: list[zipfile.ZipInfo], report: DatasetReport) -> Iterator[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(path)
    except Exception:
        raise DataError(f"{path.name} is not a valid zip archive") from None
    with zf:
        for i in infos:
            try:
                data = zf.read(i)  # at most i.file_size bytes (checked), CRC verified
            except RuntimeError:  # "File ... is encrypted, password required"
                report.skip("encrypted zip entry", i.filename)
                continue
            except Exception:  # BadZipFile (CRC), zlib.error, EOFError, NotImplementedError, ...
                report.skip("corrupt zip entry", i.filename)
                continue
            yield i.filename, data


def _files_source(files: list[Path], limits: Limits, report: DatasetReport, *, name, holds: str) -> _Source:
    """Files on disk (a folder's, or uploaded ones) as one source, named name(f) in the report."""

    def listed() -> Iterator[tuple[str, Callable[[], BinaryIO], int | None]]:
        for f in files:
            rel = name(f)
            if f.is_symlink() or _is_system(rel):
                continue
            try:
                size = f.stat().st_size
            except OSError:
                continue
            yield rel, functools.partial(open, f, "rb"), size

    n, extra = _tally(listed())

    def read(pile: ImagePile, pixels: PixelBudget) -> DatasetReport:
        _decode_into(_read_files(files, limits, report, name=name, holds=holds), pile, limits, report, pixels)
        return report

    return _Source(report.source, n, extra, read)


def _folder_source(path: Path, limits: Limits) -> _Source:
    files: list[Path] = []
    for root, dirs, names in os.walk(path, followlinks=False):
        dirs.sort()
        for n in sorted(names):
            files.append(Path(root) / n)
            if len(files) > limits.max_files:
                raise DataError(f"{path} has over {limits.max_files:,} files; the limit")
    if not files:
        raise DataError(f"folder {path} has no files")
    return _files_source(files, limits, DatasetReport(path.name or str(path)),
                         name=lambda f: f.relative_to(path).as_posix(), holds=f"{path} holds")  # fmt: skip


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


def _array_source(path: Path, limits: Limits) -> _Source:
    """An .npz (its `images` array) or an IDX file, counted from its header."""
    report = DatasetReport(path.name)
    if path.suffix.lower() == ".npz":
        head = npz_header(path, limits)
        n, extra, load = head.count, head.nbytes, lambda: npz_array(path, head)
    else:
        size = path.stat().st_size
        if size > limits.max_total_bytes:
            raise DataError(f"{path.name} is over {limits.max_total_bytes:,} bytes; the limit (GAN_MAX_TOTAL_BYTES)")
        with open(path, "rb") as f:
            n, extra = _idx_cost(idx_dims(f), size, path.name)
        extra += size if extra and path.name.endswith(".gz") else 0  # held too while it is unpacked
        load = lambda: read_idx(path.read_bytes(), limit=limits.max_total_bytes, what=path.name)

    def read(pile: ImagePile, pixels: PixelBudget) -> DatasetReport:
        _add_array(load(), pile, limits, report, path.name)
        return report

    return _Source(path.name, n, extra, read)


def _add_array(a: np.ndarray, pile: ImagePile, limits: Limits, report: DatasetReport, name: str) -> None:
    """A whole image array into the pile, up to limits.max_images in all (the rest counted)."""
    room = max(limits.max_images - len(pile), 0)
    if len(a) > room:
        report.skip(f"over the limit of {limits.max_images:,} images", name, len(a) - room)
    if room and len(a):
        ready = a.dtype == np.uint8 and a.shape[1:] == (pile.channels, pile.size, pile.size) and a.flags.writeable
        pile.add_array(a[:room] if ready else _array_to_images(a[:room], pile.size, pile.channels, name))
    report.n_ok += min(len(a), room)


def _hub_source(source: str, limits: Limits, token: str | bool | None) -> _Source:
    """A Hub dataset in a list of sources: checked by gan.hubdata from the Hub's listing."""

    def read(pile: ImagePile, pixels: PixelBudget) -> DatasetReport:
        data = _remote(source)(source, pile.size, pile.channels, token=token, limits=limits)
        data.report.n_ok = 0
        _add_array(data.images.numpy(), pile, limits, data.report, data.report.source)
        return data.report

    return _Source(source, 0, 0, read)


def _open_source(source: str | os.PathLike, limits: Limits) -> _Source:
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"data source {str(source)!r} does not exist")
    if path.is_file() and (path.suffix.lower() == ".npz" or is_idx(path.name)):
        return _array_source(path, limits)
    if path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)):
        return _zip_source(path, limits)
    if path.is_dir():
        return _folder_source(path, limits)
    if path.is_file():
        raise DataError(f"{path.name} is not a folder, .zip, .npz or IDX file; give a folder or a zip of images")
    raise DataError(f"{path} is not a regular file or folder")


def _read_sources(
    sources: list[_Source], size: int, channels: int, limits: Limits, what: str
) -> tuple[np.ndarray, list[DatasetReport]]:
    """Check the sources' cost together (the data budget), then read them into one array."""
    n = min(sum(s.count for s in sources), limits.max_images)
    check_data_bytes(n, size, channels, limits, what, extra=max(s.extra for s in sources))
    pile = ImagePile(size, channels, limits, what)
    pixels = PixelBudget(limits, what)
    reports = [s.read(pile, pixels) for s in sources]
    return pile.array(), reports


# ---------------------------------------------------------------------------------------------
# the entry points


HF_DATASET_PREFIX = "hf://datasets/"
_REMOTE: dict[str, Callable[..., ImageData]] = {}  # a source's prefix -> its loader (registered from above)


def register_remote(prefix: str, loader: Callable[..., ImageData]) -> None:
    """A loader for sources named `prefix...` (gan.hubdata registers hf://datasets/): the data layer
    sits below the Hub code and never imports it. loader(source, size, channels, *, token, limits)."""
    _REMOTE[prefix] = loader


def _remote(source: str) -> Callable[..., ImageData]:
    for prefix, loader in _REMOTE.items():
        if source.startswith(prefix):
            return loader
    raise DataError(f"{source}: no reader for this kind of source here (gan.hubdata reads hf://datasets/; import gan)")


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
    huggingface_hub default, False = anonymous). Its listing and headers are checked against
    `limits` (default Limits.from_env()) before anything is decoded."""
    limits = limits or Limits.from_env()
    if str(source) == "synthetic":
        imgs = make_synthetic(n_synthetic, image_size, channels, seed)
        return ImageData(imgs, DatasetReport("synthetic shapes", n_ok=len(imgs)))
    if isinstance(source, str) and source.startswith(HF_DATASET_PREFIX):
        return _remote(source)(source, image_size, channels, token=token, limits=limits)
    src = _open_source(source, limits)
    images, [report] = _read_sources([src], image_size, channels, limits, src.name)
    return ImageData(torch.from_numpy(images), report)


def load_files(
    paths: Sequence[str | os.PathLike],
    size: int,
    channels: int,
    limits: Limits | None = None,
    *,
    token: str | bool | None = None,
) -> ImageData:
    """Uploaded files -> one ImageData with one merged report.

    Each archive (.zip, .npz, IDX, a folder, an `hf://datasets/...` id) is read as by `load_images`;
    all other files (loose images, and anything else, which is skipped and counted) are decoded
    together as "N uploaded files". A broken archive raises DataError naming it. The limits
    apply to the list as a whole: number of files, bytes of loose files, images kept, and the data
    and decode budgets (all listings and headers are checked before anything is decoded).
    """
    limits = limits or Limits.from_env()
    sources = _file_sources(paths, limits, token)
    what = " + ".join(s.name for s in sources)
    images, reports = _read_sources(sources, size, channels, limits, what)
    if len(reports) == 1:
        return ImageData(torch.from_numpy(images), reports[0])
    report = DatasetReport.merge(reports, " + ".join(r.source for r in reports))
    return ImageData(torch.from_numpy(images), report)


def check_files(paths: Sequence[str | os.PathLike], size: int, channels: int, limits: Limits | None = None) -> None:
    """What `load_files` checks before decoding anything (file counts and sizes from listings, .npz
    and IDX headers, the data budget), and nothing else: a DataError here is the one it would raise
    first. Cheap: a server runs it before it starts a child process to decode (gan.worker)."""
    limits = limits or Limits.from_env()
    sources = _file_sources(paths, limits, None)
    n = min(sum(s.count for s in sources), limits.max_images)
    what = " + ".join(s.name for s in sources)
    check_data_bytes(n, size, channels, limits, what, extra=max(s.extra for s in sources))


def _file_sources(paths: Sequence[str | os.PathLike], limits: Limits, token: str | bool | None) -> list[_Source]:
    """Uploaded files and archives opened from their listings and headers (nothing decoded)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise DataError("no files given")
    if len(paths) > limits.max_files:
        raise DataError(f"{len(paths):,} files given; the limit is {limits.max_files:,}")
    sources: list[_Source] = []
    loose: list[Path] = []
    for p in paths:
        if isinstance(p, str) and p.startswith(HF_DATASET_PREFIX):
            sources.append(_hub_source(p, limits, token))
            continue
        q = Path(p).expanduser()
        if not q.exists():
            raise DataError(f"uploaded file {q.name!r} does not exist (any more)")
        if q.is_dir() or q.suffix.lower() in ARCHIVE_SUFFIXES or is_idx(q.name):
            sources.append(_open_source(q, limits))
        else:
            loose.append(q)
    if loose:
        report = DatasetReport(f"{len(loose)} uploaded file{'s' if len(loose) > 1 else ''}")
        sources.append(_files_source(loose, limits, report, name=lambda f: f.name, holds="the uploaded files hold"))
    return sources


def _decode_into(
    entries: Iterator[tuple[str, bytes]], pile: ImagePile, limits: Limits, report: DatasetReport, pixels: PixelBudget
) -> None:
    """Decode (name, bytes) entries into the pile, skipping and counting what cannot be used."""
    start = len(pile)
    for name, data in entries:
        if "idx1-ubyte" in name:
            report.skip("IDX label file (labels, not images)", name)
            continue
        if is_idx(name):
            try:
                idx = read_idx(data, limit=limits.max_total_bytes, what="IDX file")
                nchw_shape(idx.shape, "IDX file")
            except DataError as e:
                report.skip(str(e), name)
                continue
            _add_array(idx, pile, limits, report, name)
            continue
        if len(pile) >= limits.max_images:
            report.skip(f"over the limit of {limits.max_images:,} images", name)
            continue
        arr, reason, animated = decode_image(data, pile.size, pile.channels, limits.max_image_pixels, pixels)
        if arr is None:
            report.skip(reason or "unreadable", name)
            continue
        if animated:
            report.note("animated image: first frame used")
        pile.add(arr)
        report.n_ok += 1
    if len(pile) == start and len(pile) < limits.max_images:
        detail = "; ".join(f"{n} {r}" for r, n in report.skipped.items()) or "no files"
        raise DataError(f"no usable images in {report.source} ({detail})")


def _decode_all(
    entries: Iterator[tuple[str, bytes]], size: int, channels: int, limits: Limits, report: DatasetReport
) -> ImageData:
    """(name, bytes) entries -> ImageData, within the data and decode budgets (gan.hubdata's reader)."""
    pile = ImagePile(size, channels, limits, report.source)
    _decode_into(entries, pile, limits, report, PixelBudget(limits, report.source))
    return ImageData(torch.from_numpy(pile.array()), report)


# ---------------------------------------------------------------------------------------------
# augmentation on float batches in [-1, 1], shape (B, C, H, W); randomness from `g`


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return ((x.float().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8)
