"""Errors for the user, argument checks and small formatting helpers shared by the UI modules.

No gradio here: the endpoint functions raise AppError (or the package's own errors), and the
wiring in `gan.ui.wiring` turns them into Gradio error pop-ups.
"""

from __future__ import annotations

import math
import re
import shutil
import string
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gan
from gan import sampling

MAX_SEED = sampling.MAX_SEED
MAX_GROUP = 64  # seeds per group in vector arithmetic


class AppError(ValueError):
    """A message for the user (shown as a Gradio error, never as a traceback)."""


class Busy(AppError):
    """A training run is already going on this server."""


USER_ERRORS: tuple[type[Exception], ...] = (
    AppError,
    gan.ModelLoadError,
    gan.DataError,
    gan.ConfigError,
    gan.CheckpointError,
    gan.HubError,
    ValueError,
)
"""Errors whose message is meant for the user as it is (bad input, a model or data that cannot load)."""


def clamp_int(name: str, v: Any, lo: int, hi: int) -> int:
    """A whole number in lo..hi (3, 3.0 and "3" pass), else an AppError naming the field."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise AppError(f"{name} must be a whole number, got {v!r}") from None
    if not f.is_integer():
        raise AppError(f"{name} must be a whole number, got {v!r}")
    iv = int(f)
    if not lo <= iv <= hi:
        raise AppError(f"{name}={iv} is out of range; allowed {lo}..{hi}")
    return iv


def parse_seeds(name: str, text: Any, max_n: int = MAX_GROUP) -> list[int]:
    """'3, 7, 12' or '10-13 20' -> [3, 7, 12] / [10, 11, 12, 13, 20]; an AppError naming the field."""
    items = [x for x in re.split(r"[,\s;]+", str(text or "").strip()) if x]
    if not items:
        raise AppError(f"{name}: give one or more seeds, e.g. 1, 2, 3 (or a range like 10-13)")
    seeds: list[int] = []
    for item in items:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not m:
            raise AppError(f"{name}: {item!r} is not a seed; use whole numbers like 1, 2, 3 or a range like 10-13")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi > MAX_SEED:
            raise AppError(f"{name}: {item!r} is not a valid seed or range (seeds are 0..{MAX_SEED})")
        if len(seeds) + hi - lo + 1 > max_n:
            raise AppError(f"{name}: at most {max_n} seeds per group")
        seeds.extend(range(lo, hi + 1))
    return seeds


def scrub(text: str, secret: str | None) -> str:
    """text with every occurrence of a secret (and of its stripped form) replaced by ***."""
    for s in {secret or "", (secret or "").strip()}:
        if len(s) >= 4:
            text = text.replace(s, "***")
    return text


_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_MD_TABLE = {ord(c): _MD_ENTITIES.get(c, "\\" + c) for c in string.punctuation}
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F], "\ufffd")


def md_plain(s: Any) -> str:
    """A name that is plain already (letters, digits and . _ - / : as in repo ids, run names and http
    URLs) as it is; anything else through md_text."""
    text = str(s)
    return text if re.fullmatch(r"[\w.\-/:]+", text, re.ASCII) else md_text(text)


def md_text(s: Any) -> str:
    """Text a visitor supplied (file and zip names, repo and dataset ids, messages that echo them),
    ready to put into Markdown that Gradio renders (gr.Markdown, a status line): it shows as literal
    text. &<>"' become HTML entities; every other ASCII punctuation mark is backslash-escaped
    (CommonMark allows it before any of them: no emphasis, link, image, code, heading, list, table,
    strikethrough, $$ math or http:// / www. / e-mail autolink can start); line breaks and other
    control characters become one space (no new block); bidi overrides become U+FFFD. Not for
    code spans (`...`): there the escapes would show."""
    text = re.sub(r"[\x00-\x20\x7f-\x9f\u2028\u2029]+", " ", str(s if s is not None else ""))
    return text.translate(_BIDI).translate(_MD_TABLE)


def slug(s: str, n: int = 24) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:n] or "data"


def fmt_duration(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def to_hwc(images: torch.Tensor) -> np.ndarray:
    """uint8 (N, C, H, W) -> one numpy image: the bare image when N == 1, else a square grid."""
    a = images[0].permute(1, 2, 0).numpy() if len(images) == 1 else sampling.make_grid(images)
    return a[..., 0] if a.shape[-1] == 1 else a  # grayscale as (H, W)


def row_image(images: torch.Tensor, padding: int = 2) -> np.ndarray:
    """uint8 (N, C, H, W) -> the N images side by side in one row (white gaps)."""
    a = sampling.make_grid(images, nrow=len(images), padding=padding)
    return a[..., 0] if a.shape[-1] == 1 else a


class Scratch:
    """A private temporary folder for files handed to the browser (zips, GIFs, MP4s, PNGs)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gan-lab-"))
        weakref.finalize(self, shutil.rmtree, self.dir, True)  # removed with the app

    def path(self, name: str) -> Path:
        self.cleanup()
        d = self.dir / uuid.uuid4().hex[:12]  # one folder per file: keeps the readable name
        d.mkdir()
        return d / name

    def cleanup(self, max_age_s: float = 3600) -> None:
        now = time.time()
        for d in self.dir.iterdir():
            try:
                if now - d.stat().st_mtime > max_age_s:
                    shutil.rmtree(d, ignore_errors=True)
            except FileNotFoundError:  # removed by a concurrent cleanup
                continue
