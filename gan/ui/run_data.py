"""A run's training images: where they come from (DataSpec, enough to load them again for Resume
after a restart), decoding them through the package's readers into a file (`Prepared`: the server
holds a report and a path, never the images), and a run's own copy in its folder (uploads vanish)."""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

import gan
from gan import data as gdata
from gan import datafile

from .common import AppError

SAVED_DATA = "data.safetensors"  # decoded uploads, kept in the run folder (the uploads themselves vanish)


@dataclass
class DataSpec:
    """Where training images come from, enough to load them again (for Resume after a restart).

    kind: synthetic | upload (files handed to the app) | folder (a folder, .zip or .npz on the server)
    | hub (`hf://datasets/user/name`) | saved (decoded uploads in a run folder) | npz (older runs' copy)."""

    kind: str
    image_size: int
    channels: int
    paths: tuple[str, ...] = ()
    seed: int = 0

    def key(self) -> tuple:
        stamp = tuple((p, os.path.getmtime(p) if os.path.exists(p) else 0) for p in self.paths)
        return (self.kind, self.image_size, self.channels, stamp, self.seed)

    def describe(self) -> str:
        if self.kind == "synthetic":
            return "synthetic shapes"
        if self.kind in ("folder", "hub"):
            return self.paths[0]
        return ", ".join(Path(p).name for p in self.paths[:3]) + (" …" if len(self.paths) > 3 else "")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        return cls(d["kind"], d["image_size"], d["channels"], tuple(d["paths"]), d.get("seed", 0))


@dataclass
class Prepared:
    """Decoded training images on disk (gan.datafile), as the app holds them: the server keeps the
    report, the shape and the file, never the images (a training child reads the file itself)."""

    path: Path
    report: gan.DatasetReport
    shape: tuple[int, ...]  # (N, C, S, S)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape)

    @property
    def images(self) -> OnDisk:
        """The images as rows read from the file on demand (`.shape`, indexing by a tensor of rows)."""
        return OnDisk(self.path, self.shape)

    @classmethod
    def open(cls, path: Path) -> Prepared:
        shape, report = datafile.peek(path)
        return cls(Path(path), report, shape)


@dataclass(frozen=True)
class OnDisk:
    """Images in a datafile, read row by row when indexed (the server reads a few for previews)."""

    path: Path
    shape: tuple[int, ...]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: torch.Tensor | list[int]) -> torch.Tensor:
        with safe_open(str(self.path), "pt") as f:
            part = f.get_slice("images")
            return torch.stack([torch.as_tensor(part[int(i) : int(i) + 1])[0] for i in rows])


def decode_request(spec: DataSpec, out: Path, token: bool | None, limits: gdata.Limits | None, mem_mb: int):
    """The worker request that decodes `spec` into `out`."""
    from gan.worker import DecodeRequest

    many = spec.kind == "upload"
    paths = list(spec.paths) if many else [spec.paths[0]]
    return DecodeRequest(paths, spec.image_size, spec.channels, str(out), limits, token, many, mem_mb)


def prepare_data(
    spec: DataSpec,
    out: Path,
    *,
    token: bool | None = None,
    limits: gdata.Limits | None = None,
    isolate: bool = False,
    mem_mb: int = 0,
) -> Prepared:
    """Decode `spec` into the file `out` (a run's saved images are used where they are). With
    `isolate`, files from outside (uploads, folders, Hub datasets) are decoded in a child process
    with a memory cap (gan.worker): whatever slips past the header checks ends that child, never
    the server."""
    if spec.kind == "saved":
        p = Path(spec.paths[0])
        if not p.is_file():
            raise AppError(f"The run's saved training images ({p.name}) are gone; start a new run instead.")
        return Prepared.open(p)
    if isolate and spec.kind != "synthetic":
        from gan.worker import decode_in_child

        if spec.kind in ("upload", "folder"):  # listings and headers first: a refusal costs no child process
            gdata.check_files(list(spec.paths), spec.image_size, spec.channels, limits)

        got = decode_in_child(decode_request(spec, out, token, limits, mem_mb))
        return Prepared(out, got.report, got.shape)
    data = load_data(spec, token=token, limits=limits)
    datafile.save_images(data, out)
    return Prepared(out, data.report, tuple(data.images.shape))


def load_data(spec: DataSpec, token: bool | None = None, limits: gdata.Limits | None = None) -> gan.ImageData:
    """DataSpec -> ImageData through the package's readers; `token` for hf://datasets sources
    (False: anonymous, what a public Space uses; None: huggingface_hub's default)."""
    size, ch = spec.image_size, spec.channels
    if spec.kind == "synthetic":
        return gan.load_images("synthetic", size, ch, seed=spec.seed)
    if spec.kind == "upload":
        return gdata.load_files(list(spec.paths), size, ch, limits, token=token)
    if spec.kind == "saved":
        return datafile.load_saved(Path(spec.paths[0]))
    return gan.load_images(spec.paths[0], size, ch, limits=limits, token=token)  # folder, zip, npz, hf://...


def keep_in_run(prepared: Prepared | gan.ImageData, run_dir: Path) -> Path:
    """The run's own copy of its images (a hard link where the file system allows: no second copy
    on disk), so that Resume finds them after the data cache or the upload is gone. Images in
    memory (an ImageData, from Python) are written there."""
    dst = run_dir / SAVED_DATA
    if isinstance(prepared, gan.ImageData):
        return datafile.save_images(prepared, dst)
    if prepared.path == dst:
        return dst
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(prepared.path, tmp)
    except OSError:
        shutil.copyfile(prepared.path, tmp)
    os.replace(tmp, dst)
    return dst
