"""Decoded training images on disk: one safetensors file (`images`: uint8 (N, C, S, S)) with the
data report as JSON metadata. The app keeps a visitor's decoded upload this way (in its data cache
and in the run folder, for Resume), and a training child process reads its data from it: no copy
through a pipe, no shared memory. Loading runs no code (safetensors + JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .data import DataError, DatasetReport, ImageData
from .fileio import atomic_path


def save_images(data: ImageData, path: str | Path) -> Path:
    """Decoded training images as safetensors, their report as JSON metadata (atomically)."""
    path = Path(path)
    meta = {"report": json.dumps(asdict(data.report))}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file({"images": data.images.contiguous()}, str(tmp), metadata=meta)
    return path


def _report(meta: dict[str, str] | None, path: Path, n: int) -> DatasetReport:
    try:
        return DatasetReport(**json.loads((meta or {})["report"]))
    except (KeyError, TypeError, ValueError):
        return DatasetReport(path.name, n_ok=n)


def peek(path: str | Path) -> tuple[tuple[int, ...], DatasetReport]:
    """The images' shape and the report, read from the header only (nothing is loaded)."""
    path = Path(path)
    try:
        with safe_open(str(path), "pt") as f:
            shape = tuple(f.get_slice("images").get_shape())
            return shape, _report(f.metadata(), path, shape[0])
    except Exception as e:  # noqa: BLE001 - missing, damaged, or not ours
        raise DataError(f"the saved training images ({path.name}) cannot be read ({type(e).__name__})") from None


def load_saved(path: str | Path, rows: slice | None = None) -> ImageData:
    """The images (all, or `rows` of them) and their report."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"the saved training images ({path.name}) are gone; start a new run instead")
    if rows is None:
        images = load_file(str(path))["images"]
        return ImageData(images, _report(_meta(path), path, len(images)))
    with safe_open(str(path), "pt") as f:
        images = f.get_slice("images")[rows]
        return ImageData(torch.as_tensor(images), _report(f.metadata(), path, len(images)))


def _meta(path: Path) -> dict[str, str] | None:
    with safe_open(str(path), "pt") as f:
        return f.metadata()
