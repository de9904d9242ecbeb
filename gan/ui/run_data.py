"""A run's training images: where they come from (DataSpec, enough to load them again for Resume
after a restart), loading them through the package's readers, and decoded uploads kept in the run
folder as safetensors (the uploaded files themselves vanish)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

import gan
from gan import data as gdata
from gan.fileio import atomic_path

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


def load_data(spec: DataSpec, token: bool | None = None) -> gan.ImageData:
    """DataSpec -> ImageData through the package's readers; `token` for hf://datasets sources
    (False: anonymous, what a public Space uses; None: huggingface_hub's default)."""
    size, ch = spec.image_size, spec.channels
    if spec.kind == "synthetic":
        return gan.load_images("synthetic", size, ch, seed=spec.seed)
    if spec.kind == "upload":
        return gdata.load_files(list(spec.paths), size, ch, token=token)
    if spec.kind == "saved":
        return load_saved_images(Path(spec.paths[0]))
    return gan.load_images(spec.paths[0], size, ch, token=token)  # folder, zip, npz, hf://datasets/...


def save_images(data: gan.ImageData, path: Path) -> Path:
    """Decoded training images as safetensors, their report as JSON metadata (atomically)."""
    meta = {"report": json.dumps(asdict(data.report))}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file({"images": data.images.contiguous()}, str(tmp), metadata=meta)
    return path


def load_saved_images(path: Path) -> gan.ImageData:
    if not path.is_file():
        raise AppError(f"The run's saved training images ({path.name}) are gone; start a new run instead.")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        report = json.loads((f.metadata() or {}).get("report", "{}"))
    images = load_file(str(path))["images"]
    return gan.ImageData(images, gan.DatasetReport(**report) if report else gan.DatasetReport(path.name, len(images)))
