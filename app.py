"""GAN Lab: the Gradio app. Sample, Interpolate, Explore and Train tabs over the `gan` package.

    python app.py                      # http://127.0.0.1:7860 (0.0.0.0 on a Hugging Face Space)
    python app.py --port 8080 --weights weights --runs runs/app

This file holds the UI only: widgets, events, formatting, and the one background training job.
Every tensor operation is a call into `gan/`. Nothing runs at import time; `build_app()` builds
the Blocks, and `main()` parses arguments and launches it.

API endpoints (see the "Use via API" page, or `gradio_client.Client(url).view_api()`):
  sample(model, seed, n, truncation) -> grid image
  interpolate(model, seed_a, seed_b, t, mode, truncation, d1..d5) -> image   (d: principal directions, σ)
  walk(model, seed_a, seed_b, frames, ...) -> GIF, MP4
  explore(model, seed, a1..a8, truncation) -> image                           (a: principal directions, σ)
  plane(model, seed_tl, seed_tr, seed_bl, seed_br, u, v, mode, truncation) -> image
  invert(model, photo_a, photo_b, steps, frames) -> targets, reconstructions, errors, walk GIF
  arithmetic(model, seeds_a, seeds_b, seeds_c, truncation) -> 4 images: mean A, B, C and A - B + C
  hub_load(repo_id) -> status text;  hub_push(model, repo_id, token, private) -> status text with the URL
  train(source, files, folder, image_size, ...) -> status text     (one run per server)
  progress() -> (state dict with status, step, losses, metrics ..., latest sample grid)
  stop() -> status text;  resume(run, steps) -> status text
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
import warnings
import weakref
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch

import gan
from gan import latent, sampling
from gan.config import AUGMENTS, LOSSES, PRECISIONS
from gan.hub import is_repo_id

ROOT = Path(__file__).resolve().parent
DEFAULT_MODEL = "cats64"  # the app opens on this shipped model when it is present
RUN_PREFIX = "trained:"  # model picker values for models trained in this app: trained:<run name>
MAX_SEED = sampling.MAX_SEED
N_DIRECTIONS = 5  # principal-direction sliders in the Interpolate tab (the first of the Explore tab's)
N_EXPLORE = 8  # principal-direction sliders in the Explore tab
STRIP_SEED = 0  # the seed each direction's strip is shown on
STRIP_AMOUNTS = (-3.0, -1.5, 0.0, 1.5, 3.0)  # in σ
PLANE_N = 5  # the seed plane's overview grid is PLANE_N x PLANE_N
INVERT_STEPS = 150  # default optimisation steps of a photo inversion: seconds on a CPU
MAX_GROUP = 64  # seeds per group in vector arithmetic
MODEL_CACHE_SIZE = 4
NO_MODEL = (
    "No model yet. Train one in the **Train** tab: the default run on the built-in shapes shows its first "
    "shapes after about 1,500 steps, a few minutes on a 2-core CPU. It appears in the model picker when "
    "it ends (or when you stop it)."
)
CSS = """
/* small generated images fill their frame, upscaled with hard pixel edges */
.pixelated .image-container > button, .pixelated .image-frame { width: 100%; height: 100%; }
.pixelated .image-frame img { width: 100% !important; height: 100% !important; object-fit: contain !important; }
.pixelated img, .pixelated video { image-rendering: pixelated; }
.gan-status { min-height: 2.6em; }
.strip .icon-button-wrapper { display: none; }  /* a direction's strip: just the picture */
#gan-header h1 { margin-bottom: 0; }
#model-info p { margin: 0.2em 0; }
"""


class AppError(Exception):
    """A message for the user (shown as a Gradio error, never as a traceback)."""


USER_ERRORS = (AppError, gan.ModelLoadError, gan.DataError, gan.ConfigError, gan.CheckpointError, ValueError)


def friendly(fn: Callable) -> Callable:
    """Turn the package's errors into `gr.Error(message)`; log anything unexpected server-side."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:  # a bug or an environment problem: short message here, trace in the log
            traceback.print_exc()
            raise gr.Error(f"Something went wrong ({type(e).__name__}: {e}).", print_exception=False) from None

    return wrapper


# ---------------------------------------------------------------------------------------------
# small formatting helpers


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


def slug(s: str, n: int = 24) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:n] or "data"


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
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# models: shipped folders under weights/, models trained here under runs/, Hub repo ids


def is_model_dir(p: Path) -> bool:
    return (p / "config.json").is_file() and (p / "model.safetensors").is_file()


class Models:
    """The model picker's choices and a small LRU cache of loaded generators."""

    def __init__(self, weights_dir: Path, runs_dir: Path, scratch: Scratch, cache_size: int = MODEL_CACHE_SIZE):
        self.weights_dir, self.runs_dir, self.scratch = weights_dir, runs_dir, scratch
        self.cache: OrderedDict[tuple, torch.nn.Module] = OrderedDict()
        self.cache_size = cache_size
        self.zips: dict[tuple, str] = {}
        self.hub_ids: list[str] = []  # Hub repo ids loaded through the Hub panel, newest first
        self.lock = threading.Lock()

    def shipped(self) -> list[str]:
        if not self.weights_dir.is_dir():
            return []
        names = sorted(p.name for p in self.weights_dir.iterdir() if p.is_dir() and is_model_dir(p))
        return sorted(names, key=lambda n: n != DEFAULT_MODEL)  # the default first

    def trained(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        runs = [p for p in self.runs_dir.iterdir() if p.is_dir() and is_model_dir(p / "model")]
        runs.sort(key=lambda p: (p / "model" / "model.safetensors").stat().st_mtime, reverse=True)
        return [p.name for p in runs]

    def choices(self) -> list[tuple[str, str]]:
        return (
            [(n, n) for n in self.shipped()]
            + [(f"{n} (trained here)", RUN_PREFIX + n) for n in self.trained()]
            + [(f"{r} (Hub)", r) for r in self.hub_ids]
        )

    def add_hub(self, repo_id: str) -> None:
        with self.lock:
            self.hub_ids = [repo_id] + [r for r in self.hub_ids if r != repo_id][:15]

    def default(self) -> str | None:
        ch = self.choices()
        return ch[0][1] if ch else None

    def folder(self, key: str | None) -> Path | str:
        """A picker value -> its model folder (or a Hub repo id, passed on to gan.load_model)."""
        key = (key or "").strip()
        if not key:
            if self.default() is None:
                raise AppError(NO_MODEL.replace("**", ""))
            raise AppError("No model selected: pick one in the model picker.")
        if key.startswith(RUN_PREFIX):
            name = key[len(RUN_PREFIX) :]
            d = self.runs_dir / name
            if "/" in name or "\\" in name or name.startswith(".") or not is_model_dir(d / "model"):
                raise AppError(f"There is no trained model called {name!r} (its run may still be going).")
            return d / "model"
        if "/" not in key and "\\" not in key and not key.startswith("."):
            if is_model_dir(self.weights_dir / key):
                return self.weights_dir / key
        elif is_repo_id(key):
            return key  # a Hub repo id: gan.load_model downloads and validates it
        names = ", ".join(v for _, v in self.choices()) or "none yet"
        raise AppError(f"Unknown model {key!r}. Available: {names}.")

    def get(self, key: str | None, reload: bool = False) -> torch.nn.Module:
        """The generator for a picker value; `reload` fetches a Hub repo's newest commit again."""
        src = self.folder(key)
        ident = (str(src), (Path(src) / "model.safetensors").stat().st_mtime) if isinstance(src, Path) else (src, 0)
        with self.lock:
            if reload:
                self.cache.pop(ident, None)
            if ident in self.cache:
                self.cache.move_to_end(ident)
                return self.cache[ident]
        G = gan.load_model(src)  # outside the lock: a Hub download may take a while
        with self.lock:
            self.cache[ident] = G
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return G

    def info(self, key: str | None) -> str:
        """One line about a model from its config.json and training.json (no weights loaded)."""
        try:
            src = self.folder(key)
        except AppError as e:
            return str(e)
        if not isinstance(src, Path):
            with self.lock:
                G = self.cache.get((src, 0))
            if G is None:
                return f"Hub model `{src}` (downloaded when first used)."
            c = G.config
            commit = f" · commit {G.commit[:8]}" if getattr(G, "commit", None) else ""
            kind = "RGB" if c.channels == 3 else "grayscale"
            return f"Hub model `{src}` · {c.image_size}×{c.image_size} {kind} · z {c.z_dim}{commit}"
        try:
            cfg = json.loads((src / "config.json").read_text())
            parts = [
                f"{cfg.get('image_size')}×{cfg.get('image_size')} {'RGB' if cfg.get('channels') == 3 else 'grayscale'}",
                f"z {cfg.get('z_dim')}",
                f"widths G {cfg.get('g_width')} / D {cfg.get('d_width')}",
            ]
            tj = src / "training.json"
            if tj.is_file():
                t = json.loads(tj.read_text())
                if t.get("steps") is not None:
                    parts.append(f"{t['steps']} steps" + (f" on {t['data']}" if t.get("data") else ""))
            return " · ".join(parts)
        except (OSError, ValueError):
            return "(config.json unreadable)"

    def zip(self, key: str | None) -> str | None:
        """The model folder as a zip in the scratch folder (made once per version of the weights)."""
        try:
            src = self.folder(key)
        except AppError:
            return None
        if not isinstance(src, Path):
            return None
        ident = (str(src), (src / "model.safetensors").stat().st_mtime)
        with self.lock:
            z = self.zips.get(ident)
            if z and Path(z).is_file():
                return z
        name = src.parent.name if src.name == "model" else src.name
        out = self.scratch.path(f"{name}.zip")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(src.iterdir()):
                if f.is_file() and not f.name.endswith(".tmp"):
                    zf.write(f, f"{name}/{f.name}")
        with self.lock:
            self.zips[ident] = str(out)
        return str(out)


# ---------------------------------------------------------------------------------------------
# data sources for the Train tab


@dataclass
class DataSpec:
    """Where training images come from, enough to load them again (for Resume after a restart)."""

    kind: str  # synthetic | upload | folder | npz (a saved copy of uploaded images)
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
        if self.kind == "folder":
            return self.paths[0]
        return ", ".join(Path(p).name for p in self.paths[:3]) + (" …" if len(self.paths) > 3 else "")


def merge_reports(reports: list[gan.DatasetReport], source: str) -> gan.DatasetReport:
    out = gan.DatasetReport(source, n_ok=sum(r.n_ok for r in reports))
    for r in reports:
        for reason, n in r.skipped.items():
            out.skipped[reason] = out.skipped.get(reason, 0) + n
            out.examples.setdefault(reason, []).extend(r.examples.get(reason, []))
            out.examples[reason] = out.examples[reason][:3]
        for what, n in r.notes.items():
            out.notes[what] = out.notes.get(what, 0) + n
    return out


def load_data(spec: DataSpec) -> gan.ImageData:
    """DataSpec -> ImageData through gan.load_images (uploads: archives each, loose images together)."""
    size, ch = spec.image_size, spec.channels
    if spec.kind == "synthetic":
        return gan.load_images("synthetic", size, ch, seed=spec.seed)
    if spec.kind in ("folder", "npz"):
        return gan.load_images(spec.paths[0], size, ch)
    paths = [Path(p) for p in spec.paths]
    archives = [p for p in paths if p.suffix.lower() in (".zip", ".npz")]
    loose = [p for p in paths if p not in archives]
    parts = [gan.load_images(p, size, ch) for p in archives]
    if loose:
        with tempfile.TemporaryDirectory(prefix="gan-lab-upload-") as d:
            for p in loose:  # copies, not links: the folder reader skips symbolic links
                dst = Path(d) / p.name
                i = 1
                while dst.exists():
                    dst, i = Path(d) / f"{p.stem}-{i}{p.suffix}", i + 1
                shutil.copyfile(p, dst)
            part = gan.load_images(d, size, ch)
            part.report.source = f"{len(loose)} uploaded file{'s' if len(loose) > 1 else ''}"
            parts.append(part)
    if len(parts) == 1:
        return parts[0]
    report = merge_reports([p.report for p in parts], " + ".join(p.report.source for p in parts))
    return gan.ImageData(torch.cat([p.images for p in parts]), report)


def examples_grid(data: gan.ImageData, n: int = 16) -> np.ndarray:
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(data), generator=g)[:n]
    return to_hwc(data.images[idx]) if len(idx) > 1 else to_hwc(data.images[:1])


def report_markdown(data: gan.ImageData) -> str:
    r = data.report
    n, c, s = data.images.shape[0], data.images.shape[1], data.images.shape[2]
    lines = [
        f"**{r.n_ok:,} images** from {r.source} → {n:,} × {s}×{s} {'RGB' if c == 3 else 'grayscale'}"
        + (f"; **{r.n_skipped} files skipped**" if r.n_skipped else "")
    ]
    return "\n".join(lines + ["- " + line for line in r.details()])


# ---------------------------------------------------------------------------------------------
# the training job: one per app process, `gan.fit` consumed in a background thread


@dataclass
class Job:
    name: str
    run_dir: Path
    steps: int
    batch_size: int
    data_summary: str
    data: gan.ImageData
    spec: DataSpec
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    status: str = "starting"  # starting | running | stopping | finished | stopped | diverged | failed
    message: str = ""
    start_step: int = 0
    step: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)  # {"step": s, "swd": v} every metric_every
    metric_every: int = 0
    grid: np.ndarray | None = None
    grid_step: int = -1
    img_per_s: float = 0.0
    max_minutes: float = 0.0  # the run's time budget (0 = none)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    model_key: str | None = None
    version: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def eta_s(self) -> float | None:
        if self.img_per_s <= 0 or self.status not in ("running", "stopping"):
            return None
        eta = (self.steps - self.step) * self.batch_size / self.img_per_s
        if self.max_minutes:
            eta = min(eta, max(0.0, self.started + 60 * self.max_minutes - time.time()))
        return eta

    def snapshot(self, since: int = 0, max_rows: int | None = None) -> dict[str, Any]:
        """The job's state as a JSON-able dict: losses after step `since`, thinned to max_rows if given."""
        with self.lock:
            rows = self.rows if not since else [r for r in self.rows if r["step"] > since]
            if max_rows and len(rows) > max_rows:
                keep = np.linspace(0, len(rows) - 1, max_rows).round().astype(int)
                rows = [rows[i] for i in keep]
            metrics = [dict(m) for m in self.metrics if m["step"] > since]
            return {
                "status": self.status,
                "run": self.name,
                "step": self.step,
                "steps": self.steps,
                "img_per_s": round(self.img_per_s, 1),
                "eta_s": None if self.eta_s() is None else round(self.eta_s(), 1),
                "elapsed_s": round((self.finished or time.time()) - self.started, 1),
                "message": self.message,
                "data": self.data_summary,
                "model": self.model_key,
                "losses": [dict(r) for r in rows],
                "metric_every": self.metric_every,
                "metrics": metrics,
                "grid_step": self.grid_step if self.grid is not None else None,
            }


class Busy(AppError):
    pass


class Trainer:
    """Starts, stops and reports the one training job of this process."""

    def __init__(self, runs_dir: Path, models: Models):
        self.runs_dir, self.models = runs_dir, models
        self.job: Job | None = None
        self.lock = threading.Lock()

    def busy_message(self) -> str | None:
        job = self.job
        if job is None or not job.alive:
            return None
        return (
            f"Busy: a training run (`{job.name}`, step {job.step} of {job.steps}) is already going on this "
            "server, and it trains one run at a time. Wait for it to finish or stop it; Sample and "
            "Interpolate keep working meanwhile."
        )

    def new_run_dir(self, label: str) -> Path:
        self.prune_runs(env_int("GAN_KEEP_RUNS", 20))
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}"
        name, i = base, 1
        while (self.runs_dir / name).exists():
            name, i = f"{base}-{i}", i + 1
        return self.runs_dir / name

    def prune_runs(self, keep: int) -> list[str]:
        """Delete the oldest app run folders beyond `keep` (GAN_KEEP_RUNS), never a running one."""
        if keep <= 0 or not self.runs_dir.is_dir():
            return []
        runs = [d for d in self.runs_dir.iterdir() if d.is_dir() and (d / "app_run.json").is_file()]
        live = self.job.run_dir if self.job is not None and self.job.alive else None
        runs = sorted((d for d in runs if d != live), key=lambda d: d.stat().st_mtime)
        gone = runs[: max(0, len(runs) - keep + 1)]  # room for the run about to start
        for d in gone:
            shutil.rmtree(d, ignore_errors=True)
        return [d.name for d in gone]

    def start(
        self,
        model_cfg: gan.ModelConfig | None,
        train_cfg: gan.TrainConfig,
        data: gan.ImageData,
        spec: DataSpec,
        run_dir: Path,
        *,
        resume: Path | None = None,
        rows: list[dict] | None = None,
        metrics: list[dict] | None = None,
    ) -> Job:
        with self.lock:
            msg = self.busy_message()
            if msg:
                raise Busy(msg)
            job = Job(
                name=run_dir.name, run_dir=run_dir, steps=train_cfg.steps, batch_size=train_cfg.batch_size,
                data_summary=data.report.summary().splitlines()[0], data=data, spec=spec, rows=list(rows or []),
                metrics=list(metrics or []), metric_every=train_cfg.metric_every, max_minutes=train_cfg.max_minutes,
            )  # fmt: skip
            run_dir.mkdir(parents=True, exist_ok=True)
            if spec.kind == "upload":  # keep the decoded images: uploads vanish, Resume needs them
                np.savez(run_dir / "data.npz", images=data.images.numpy())
                spec = DataSpec("npz", spec.image_size, spec.channels, (str(run_dir / "data.npz"),))
                job.spec = spec
            self._write_meta(job, model_cfg, train_cfg)
            job.thread = threading.Thread(
                target=self._run, args=(job, model_cfg, train_cfg, resume), name="gan-lab-train", daemon=True
            )
            self.job = job
            job.thread.start()
            return job

    def _write_meta(self, job: Job, model_cfg: gan.ModelConfig | None, train_cfg: gan.TrainConfig) -> None:
        p = job.run_dir / "app_run.json"
        meta = json.loads(p.read_text()) if p.is_file() else {}
        meta.update(
            name=job.name,
            data={"kind": job.spec.kind, "image_size": job.spec.image_size, "channels": job.spec.channels,
                  "paths": list(job.spec.paths), "seed": job.spec.seed},
            train_config=train_cfg.to_dict(),
            step=job.step,
            status=job.status,
        )  # fmt: skip
        if model_cfg is not None:
            meta["model_config"] = model_cfg.to_dict()
        gan.config.save_json(meta, p)

    def _run(self, job: Job, model_cfg, train_cfg: gan.TrainConfig, resume: Path | None) -> None:
        log = open(job.run_dir / "log.jsonl", "a")  # the same log the command line writes
        try:
            for ev in gan.fit(model_cfg, train_cfg, job.data, out_dir=job.run_dir, resume=resume, stop=job.stop):
                if not isinstance(ev, gan.Samples):
                    log.write(json.dumps(gan.train.event_dict(ev)) + "\n")
                    log.flush()
                with job.lock:
                    self._apply(job, ev)
                    job.version += 1
                if isinstance(ev, gan.Checkpoint):
                    self._write_meta(job, None, train_cfg)
        except Exception as e:  # reported in the status line; the trace goes to the server log
            traceback.print_exc()
            with job.lock:
                job.status, job.message = "failed", f"Training failed: {type(e).__name__}: {e}"
                job.version += 1
        finally:
            log.close()
            with job.lock:
                job.finished = time.time()
                if job.status in ("starting", "running", "stopping"):  # iterator ended without Done
                    job.status = "stopped"
                job.version += 1
            self._write_meta(job, None, train_cfg)

    @staticmethod
    def _apply(job: Job, ev: Any) -> None:
        if isinstance(ev, gan.Started):
            job.start_step = job.step = ev.step
            job.status = "stopping" if job.stop.is_set() else "running"
            where = f"resumed from step {ev.step}" if ev.resumed_from else "started"
            job.message = f"{where}: {ev.n_images:,} images, batch {ev.batch_size}, {ev.device}, {ev.precision}"
        elif isinstance(ev, gan.StepLog):
            job.step, job.img_per_s = ev.step, ev.img_per_s
            job.rows.append(
                {"step": ev.step, "loss_d": ev.loss_d, "loss_g": ev.loss_g, "d_real": ev.d_real, "d_fake": ev.d_fake}
            )
        elif isinstance(ev, gan.Samples):
            job.grid, job.grid_step = ev.grid, ev.step
        elif isinstance(ev, gan.Metric):
            job.metrics.append({"step": ev.step, ev.name: ev.value})
        elif isinstance(ev, gan.Checkpoint):
            job.step = ev.step
        elif isinstance(ev, gan.Rollback):
            job.message = ev.message
        elif isinstance(ev, gan.Done):
            job.step = ev.step
            job.status = ev.reason
            job.message = ev.message
            if ev.model_dir:
                job.model_key = RUN_PREFIX + job.name

    def stop(self) -> str:
        job = self.job
        if job is None or not job.alive:
            return "No training run is going on."
        with job.lock:
            job.stop.set()
            if job.status in ("starting", "running"):
                job.status = "stopping"
            job.version += 1
        return f"Stopping `{job.name}` at step {job.step}: writing a checkpoint and the model folder…"

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop a running job and wait for its checkpoint (atexit, test teardown)."""
        job = self.job
        if job is not None and job.alive:
            job.stop.set()
            job.thread.join(timeout)

    def resumable(self) -> list[tuple[str, str]]:
        """Runs of this app with a checkpoint, newest first: (label, run name)."""
        if not self.runs_dir.is_dir():
            return []
        out = []
        for d in sorted(self.runs_dir.iterdir(), key=lambda p: p.name, reverse=True):
            meta_p = d / "app_run.json"
            if not (d / "checkpoint.safetensors").is_file() or not meta_p.is_file():
                continue
            if self.job is not None and self.job.alive and self.job.name == d.name:
                continue
            try:
                meta = json.loads(meta_p.read_text())
                steps = meta["train_config"]["steps"]
                out.append((f"{d.name} (step {meta.get('step', '?')} of {steps}, {meta.get('status', '?')})", d.name))
            except (OSError, ValueError, KeyError):
                continue
        return out


# ---------------------------------------------------------------------------------------------
# the app's behaviour, independent of the widget layout


class Lab:
    """State shared by every session of one app: models, the training job, the last data set."""

    def __init__(self, weights_dir: Path, runs_dir: Path, on_space: bool):
        self.weights_dir, self.runs_dir, self.on_space = Path(weights_dir), Path(runs_dir), on_space
        self.scratch = Scratch()
        self.models = Models(self.weights_dir, self.runs_dir, self.scratch)
        self.trainer = Trainer(self.runs_dir, self.models)
        self.data_cache: tuple[tuple, gan.ImageData] | None = None
        self.data_lock = threading.Lock()
        self.cpu_threads = torch.get_num_threads()
        self.last_sample: tuple = (None, None, None)  # (G, args, images): the grid and its gallery share a render
        # per loaded generator (dropped with it): its principal directions and their strip images
        self.dirs_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.strip_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.dirs_lock = threading.Lock()

    # ---- sampling -----------------------------------------------------------------------

    @contextmanager
    def threads(self, batch: int) -> Iterator[None]:
        """CPU threads for one render, in this request's thread only (torch's setting is per thread).

        One image, or anything while a training run is going, uses one thread: a second thread saves
        little on a single small image and, on a busy 2-core machine, costs several times more in
        contention with training. Large batches on an idle machine use all of torch's threads."""
        n = 1 if batch <= 2 or self.trainer.busy_message() else self.cpu_threads
        old = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(old)

    def sample_images(self, model: str | None, seed: int, n: int, truncation: float) -> torch.Tensor:
        n = clamp_int("n", n, 1, 64)
        seed = clamp_int("seed", seed, 0, MAX_SEED - n + 1)
        G = self.models.get(model)
        args = (seed, n, float(truncation))
        last_G, last_args, last_imgs = self.last_sample
        if last_G is G and last_args == args:
            return last_imgs
        with self.threads(n):
            imgs = sampling.sample(G, range(seed, seed + n), float(truncation))
        self.last_sample = (G, args, imgs)
        return imgs

    # ---- latent exploration -------------------------------------------------------------

    def directions(self, G: torch.nn.Module) -> latent.Directions:
        """G's first N_EXPLORE principal directions: read from its folder's `directions.safetensors`
        (written there on first use), computed once per loaded model (about a second on a CPU)."""
        with self.dirs_lock:
            dirs = self.dirs_cache.get(G)
            if dirs is None:
                with self.threads(64), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a read-only folder: computed, just not cached on disk
                    dirs = latent.load_or_compute_directions(G, k=min(N_EXPLORE, G.z_dim))
                self.dirs_cache[G] = dirs
            return dirs

    def strips(self, G: torch.nn.Module) -> list[np.ndarray]:
        """One image per direction: seed STRIP_SEED moved by each of STRIP_AMOUNTS σ (made once per model)."""
        with self.dirs_lock:
            got = self.strip_cache.get(G)
        if got is None:
            dirs = self.directions(G)
            with self.threads(1):
                imgs = latent.direction_strips(G, STRIP_SEED, dirs, STRIP_AMOUNTS)  # (k, T, C, H, W)
            got = [row_image(strip) for strip in imgs]
            with self.dirs_lock:
                self.strip_cache[G] = got
        return got

    def move(self, G: torch.nn.Module, z: torch.Tensor, amounts: Any) -> torch.Tensor:
        """z moved along G's principal directions by `amounts` in σ (missing ones count 0)."""
        a = [float(x or 0.0) for x in amounts]
        if not all(math.isfinite(x) and abs(x) <= 10 for x in a):
            raise AppError(f"direction amounts are in σ and must be within ±10, got {a}")
        if not any(a):  # nothing to move: no need for the directions
            return z
        dirs = self.directions(G)
        a = a[: len(dirs)]
        return latent.edit(z, dirs, a + [0.0] * (len(dirs) - len(a)))

    def walk_latents(
        self, G, seed_a: int, seed_b: int, t: float | torch.Tensor, mode: str, truncation: float, offsets
    ) -> torch.Tensor:
        """Latents along the walk A -> B at t (a float or a (T,) tensor), moved by the slider offsets."""
        if mode not in ("slerp", "lerp"):
            raise AppError(f"mode must be 'slerp' or 'lerp', got {mode!r}")
        za, zb = sampling.latents([seed_a, seed_b], G.z_dim, float(truncation))
        if isinstance(t, torch.Tensor):
            z = sampling.interpolate(za[None], zb[None], t, mode)  # (T, z_dim)
        else:  # the end points exactly: t=0 is seed A's own latent, bit for bit
            z = (za if t <= 0 else zb if t >= 1 else sampling.interpolate(za, zb, t, mode))[None]
        return self.move(G, z, list(offsets)[:N_DIRECTIONS])

    # ---- data ---------------------------------------------------------------------------

    def data_spec(self, source: str, files: Any, folder: str | None, image_size: int, channels: int, seed: int = 0):
        image_size = clamp_int("image_size", image_size, 16, 256)
        channels = clamp_int("channels", channels, 1, 3)
        if source == "synthetic":
            return DataSpec("synthetic", image_size, channels, seed=seed)
        if source == "upload":
            paths = [files] if isinstance(files, (str, Path)) else list(files or [])
            paths = [str(p.get("path") if isinstance(p, dict) else p) for p in paths]
            if not paths:
                raise AppError("Upload a zip of images or a few image files first (or pick the built-in shapes).")
            return DataSpec("upload", image_size, channels, tuple(paths))
        if source == "folder":
            if self.on_space:
                raise AppError("Reading folders on the server is turned off here; upload a zip of images instead.")
            if not folder or not str(folder).strip():
                raise AppError("Type the path of a folder (or a .zip / .npz file) on this server.")
            return DataSpec("folder", image_size, channels, (str(Path(str(folder).strip()).expanduser()),))
        raise AppError(f"Unknown data source {source!r}; use synthetic, upload or folder.")

    def data(self, spec: DataSpec) -> gan.ImageData:
        key = spec.key()
        with self.data_lock:
            if self.data_cache is not None and self.data_cache[0] == key:
                return self.data_cache[1]
            data = load_data(spec)
            self.data_cache = (key, data)
            return data


# ---------------------------------------------------------------------------------------------
# training options -> configs


TRAIN_DEFAULTS: dict[str, Any] = {
    "image_size": 32, "steps": 1500, "batch_size": 32, "lr": 2e-4, "g_width": 32, "d_width": 32, "z_dim": 100,
}  # fmt: skip
"""CPU-friendly starting values of the Train tab: a 32-px run on the shapes shows its first shapes at
about step 1,500 (~300 img/s on 2 idle cores: 2-3 minutes)."""


def ema_decay(choice: str, steps: int) -> float:
    """'auto': an EMA half-life of a tenth of the run, so short CPU runs are not averaged with noise."""
    if choice in ("off", "0", 0):
        return 0.0
    if choice == "auto":
        return float(min(0.9999, max(0.9, 0.5 ** (1.0 / max(1.0, steps / 10)))))
    try:
        v = float(choice)
    except (TypeError, ValueError):
        raise AppError(f"EMA must be auto, off or a decay like 0.999; got {choice!r}") from None
    return v


def auto_every(steps: int, preview_every: int) -> tuple[int, int, int]:
    """(log_every, sample_every, checkpoint_every) for a run of `steps`: ~100+ plot points, ~20 previews."""
    log_every = max(1, min(10, steps // 100))
    sample_every = int(preview_every) if preview_every and int(preview_every) > 0 else max(5, steps // 20)
    checkpoint_every = min(1000, max(100, steps // 10))
    return log_every, sample_every, checkpoint_every


def auto_metric_every(steps: int) -> int:
    """Steps between the cheap SWD measurements of a run: about ten per run, at least 100 steps
    apart; none for runs under 300 steps (a few seconds of training: nothing to measure yet)."""
    return 0 if steps < 300 else max(100, steps // 10)


# ---------------------------------------------------------------------------------------------
# the Blocks


def build_app(
    weights_dir: str | Path = ROOT / "weights",
    runs_dir: str | Path = ROOT / "runs" / "app",
    *,
    on_space: bool | None = None,
    train_defaults: dict[str, Any] | None = None,
) -> gr.Blocks:
    """The whole UI.

    `on_space` (default: env SPACE_ID is set) hides the server-folder data source; `train_defaults`
    overrides the Train tab's initial values (keys of TRAIN_DEFAULTS), e.g. a tiny model for tests.
    """
    td = {**TRAIN_DEFAULTS, **(train_defaults or {})}
    recipe = gan.TrainConfig()  # the package's recipe: loss, augmentation, mirroring
    if on_space is None:
        on_space = bool(os.environ.get("SPACE_ID"))
    lab = Lab(Path(weights_dir), Path(runs_dir), on_space)
    models, trainer = lab.models, lab.trainer

    # ---- API functions: their parameter names are the API's ---------------------------------

    @friendly
    def sample(model: str | None, seed: int, n: int, truncation: float) -> np.ndarray:
        """A grid of n images for seeds seed, seed+1, ... (row by row); a bare image when n is 1."""
        return to_hwc(lab.sample_images(model, seed, n, truncation))

    @friendly
    def interpolate(
        model: str | None, seed_a: int, seed_b: int, t: float, mode: str = "slerp", truncation: float = 1.0,
        d1: float = 0.0, d2: float = 0.0, d3: float = 0.0, d4: float = 0.0, d5: float = 0.0,
    ) -> np.ndarray:  # fmt: skip
        """The image at t in [0, 1] on the walk from seed A to seed B, moved along the latent sliders d1..d5."""
        seed_a = clamp_int("seed_a", seed_a, 0, MAX_SEED)
        seed_b = clamp_int("seed_b", seed_b, 0, MAX_SEED)
        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise AppError(f"t={t} is out of range; allowed 0..1")
        G = models.get(model)
        z = lab.walk_latents(G, seed_a, seed_b, t, mode, truncation, (d1, d2, d3, d4, d5))
        with lab.threads(1):
            return to_hwc(sampling.generate(G, z))

    @friendly
    def walk(
        model: str | None, seed_a: int, seed_b: int, frames: int = 32, mode: str = "slerp", truncation: float = 1.0,
        fps: float = 12, loop: bool = True,
        d1: float = 0.0, d2: float = 0.0, d3: float = 0.0, d4: float = 0.0, d5: float = 0.0,
    ) -> tuple[str, str | None, list[str]]:  # fmt: skip
        """The walk from seed A to seed B (and back, with loop) as an animated GIF and an MP4."""
        seed_a = clamp_int("seed_a", seed_a, 0, MAX_SEED)
        seed_b = clamp_int("seed_b", seed_b, 0, MAX_SEED)
        frames = clamp_int("frames", frames, 2, 256)
        fps = float(fps)
        if not 1 <= fps <= 60:
            raise AppError(f"fps={fps} is out of range; allowed 1..60")
        G = models.get(model)
        if loop:  # ease there and back: 0 -> 1 -> 0 without repeating the end frames
            t = (1 - torch.cos(torch.linspace(0, 2 * math.pi, frames + 1)[:-1])) / 2
        else:
            t = torch.linspace(0, 1, frames)
        with lab.threads(frames):
            imgs = sampling.generate(G, lab.walk_latents(G, seed_a, seed_b, t, mode, truncation, (d1, d2, d3, d4, d5)))
        scale = max(1, math.ceil(256 / imgs.shape[-1]))  # at least 256 px: crisp nearest-neighbour upscale
        stem = f"walk_{seed_a}_{seed_b}_{mode}"
        gif = sampling.save_gif(imgs, lab.scratch.path(stem + ".gif"), fps=fps, scale=scale)
        try:
            mp4 = str(sampling.save_video(imgs, lab.scratch.path(stem + ".mp4"), fps=fps, scale=scale))
        except Exception as e:  # PyAV missing or its codec unavailable: the GIF still works
            gr.Warning(f"MP4 export is unavailable here ({e}); the GIF is ready.")
            mp4 = None
        return str(gif), mp4, [str(gif)] + ([mp4] if mp4 else [])

    # ---- latent exploration (the Explore tab) ---------------------------------------------------

    @friendly
    def explore(
        model: str | None, seed: int,
        a1: float = 0.0, a2: float = 0.0, a3: float = 0.0, a4: float = 0.0,
        a5: float = 0.0, a6: float = 0.0, a7: float = 0.0, a8: float = 0.0,
        truncation: float = 1.0,
    ) -> np.ndarray:  # fmt: skip
        """Seed's image moved along the model's principal directions 1..8 by a1..a8 (in σ; all 0 = the seed's
        own image, as `sample` draws it)."""
        seed = clamp_int("seed", seed, 0, MAX_SEED)
        G = models.get(model)
        z = lab.move(G, sampling.latents([seed], G.z_dim, float(truncation)), (a1, a2, a3, a4, a5, a6, a7, a8))
        with lab.threads(1):
            return to_hwc(sampling.generate(G, z))

    def plane_args(seed_tl, seed_tr, seed_bl, seed_br, mode: str) -> list[int]:
        if mode not in ("slerp", "bilinear"):
            raise AppError(f"mode must be 'slerp' or 'bilinear', got {mode!r}")
        names = ("seed_tl", "seed_tr", "seed_bl", "seed_br")
        return [clamp_int(n, s, 0, MAX_SEED) for n, s in zip(names, (seed_tl, seed_tr, seed_bl, seed_br))]

    @friendly
    def plane(
        model: str | None, seed_tl: int, seed_tr: int, seed_bl: int, seed_br: int, u: float = 0.5, v: float = 0.5,
        mode: str = "slerp", truncation: float = 1.0,
    ) -> np.ndarray:  # fmt: skip
        """The image at (u, v) of the plane spanned by four corner seeds (top-left, top-right, bottom-left,
        bottom-right); u runs left to right, v top to bottom, both in [0, 1]."""
        corners = plane_args(seed_tl, seed_tr, seed_bl, seed_br, mode)
        u, v = float(u), float(v)
        if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
            raise AppError(f"u and v must be in 0..1, got u={u}, v={v}")
        G = models.get(model)
        with lab.threads(1):
            if u in (0.0, 1.0) and v in (0.0, 1.0):  # a corner is its seed's own image, bit for bit
                img = sampling.sample(G, [corners[2 * int(v) + int(u)]], float(truncation))[0]
            else:
                _, img = latent.blend_corners(G, corners, u, v, mode=mode, truncation=float(truncation))
        return to_hwc(img[None])

    def photo_walk(G: torch.nn.Module, za: torch.Tensor, zb: torch.Tensor, frames: int) -> str:
        """The walk between two latents, there and back, as a GIF of at least 256 px."""
        z = latent.interpolate_latents(za, zb, frames, "slerp")  # (T, z_dim)
        with lab.threads(frames):
            imgs = sampling.generate(G, z)
        imgs = torch.cat([imgs, imgs.flip(0)[1:-1]])  # A -> B -> A without repeating the end frames
        scale = max(1, math.ceil(256 / imgs.shape[-1]))
        return str(sampling.save_gif(imgs, lab.scratch.path("photo_walk.gif"), fps=12, scale=scale))

    @friendly
    def invert(
        model: str | None, photo_a: Any, photo_b: Any = None, steps: int = INVERT_STEPS, frames: int = 24,
        progress=gr.Progress(),
    ) -> tuple:  # fmt: skip
        """Find the latent whose image is closest to each photo (centre-cropped and resized as the model sees it).
        Returns, for photo A and B: the target, the model's reconstruction and its RMS error (0..1 of the pixel
        range); and with two photos the walk between their latents as a GIF."""
        steps = clamp_int("steps", steps, 1, 2000)
        frames = clamp_int("frames", frames, 2, 256)
        slots = [(name, p) for name, p in (("A", photo_a), ("B", photo_b)) if p is not None]
        if not slots:
            raise AppError("Upload a photo first (Photo A, and Photo B for a walk between two photos).")
        G = models.get(model)
        total = steps * len(slots)
        every = max(1, steps // 100)
        res: dict[str, latent.InversionResult] = {}
        for i, (name, photo) in enumerate(slots):
            label = f"Photo {name}" if len(slots) > 1 else "Inverting"

            def report(step: int, loss: float, i: int = i, label: str = label) -> None:
                if step % every == 0 or step == steps:
                    progress((i * steps + step) / total, desc=f"{label}: step {step} of {steps}")

            progress(i * steps / total, desc=f"{label}: finding a start")
            with lab.threads(32):
                res[name] = latent.invert(G, photo, steps=steps, callback=report)
        gif = photo_walk(G, res["A"].z, res["B"].z, frames) if len(res) == 2 else None
        out: list[Any] = []
        for name in "AB":
            r = res.get(name)
            out += [None, None, None] if r is None else [to_hwc(r.target[None]), to_hwc(r.image[None]), r.error]
        state = {"model": model, "z": {k: r.z.tolist() for k, r in res.items()}}
        return (*out, gif, state)

    @friendly
    def walk_photos(model: str | None, frames: int, state: dict | None) -> str:
        z = (state or {}).get("z", {})
        if "A" not in z or "B" not in z:
            raise AppError("Invert two photos first (Photo A and Photo B); then the walk goes between them.")
        if state.get("model") != model:
            raise AppError("These photos were inverted with another model; press Invert again for this one.")
        G = models.get(model)
        return photo_walk(G, torch.tensor(z["A"]), torch.tensor(z["B"]), clamp_int("frames", frames, 2, 256))

    @friendly
    def arithmetic(
        model: str | None, seeds_a: str, seeds_b: str, seeds_c: str, truncation: float = 1.0
    ) -> list[tuple[np.ndarray, str]]:
        """Vector arithmetic on mean latents (the DCGAN paper's): the images of mean z(A), mean z(B), mean z(C)
        and of A − B + C. Seeds are comma-separated, ranges allowed: "1, 5, 9" or "10-13"."""
        a, b, c = parse_seeds("Seeds A", seeds_a), parse_seeds("Seeds B", seeds_b), parse_seeds("Seeds C", seeds_c)
        G = models.get(model)
        with lab.threads(1):
            imgs = latent.arithmetic_images(G, a, b, c, truncation=float(truncation))  # (4, C, H, W)
        captions = [f"mean of A ({len(a)})", f"mean of B ({len(b)})", f"mean of C ({len(c)})", "A − B + C"]
        return [(to_hwc(imgs[i : i + 1]), cap) for i, cap in enumerate(captions)]

    # ---- the Hugging Face Hub ---------------------------------------------------------------------

    @friendly
    def hub_load(repo_id: str) -> str:
        """Download a GAN Lab model from the Hub (user/name) and select it in the model picker."""
        try:
            rid = gan.hub.check_repo_id(repo_id or "")
            if not is_repo_id(rid):  # a local path of that name shadows the id in the picker
                raise AppError(f"{rid!r} is also a path on this server, so the picker cannot take it as a repo id")
            G = models.get(rid, reload=True)
        except (gan.HubError, gan.ModelLoadError, AppError) as e:
            msg = f"Not loaded: {e}"
        else:
            msg = None
        if msg:  # raised outside the handler: no chained exception from the Hub client
            raise AppError(msg)
        models.add_hub(rid)
        c = G.config
        commit = f" at commit `{G.commit[:8]}`" if getattr(G, "commit", None) else ""
        return f"Loaded **{rid}**{commit}: {c.image_size}×{c.image_size}, z {c.z_dim}. It is now the selected model."

    def hub_push(model: str | None, repo_id: str, token: str = "", private: bool = False) -> str:
        """Push the model to the Hub as repo_id (user/name) with a write token (empty: the server's HF_TOKEN);
        returns a link to the repo. The token is used for this call only: never stored, logged or returned."""
        msg = None
        try:
            src = models.folder(model)
            rid = gan.hub.check_repo_id(repo_id or "")
            tok = (token or "").strip() or None
            if tok is None and lab.on_space and os.environ.get("GAN_ALLOW_OWNER_PUSH") != "1":
                raise AppError(
                    "paste your own write token: on this Space an empty box does not push with the owner's "
                    "HF_TOKEN (the owner can allow that with GAN_ALLOW_OWNER_PUSH=1)"
                )
            url = gan.push_to_hub(src, rid, token=tok, private=bool(private))
        except gr.Error as e:
            msg = str(e.message)
        except USER_ERRORS as e:
            msg = str(e)
        except Exception as e:  # no traceback: its frames and the library's exception may hold the request
            msg = f"{type(e).__name__}: {e}"
            print(f"hub_push failed: {scrub(msg, token)}", file=sys.stderr)
        if msg is not None:  # raised here, outside the handler: no exception context that holds the token
            raise gr.Error("Not pushed: " + scrub(msg, token), print_exception=False)
        name = (model or "").removeprefix(RUN_PREFIX)
        return f"Pushed **{name}** to [{url}]({url}) ({'private' if private else 'public'})."

    @friendly
    def train(
        source: str = "synthetic", files: list[str] | None = None, folder: str = "", image_size: int = 32,
        channels: int = 3, steps: int = 1500, batch_size: int = 32, lr: float = 2e-4, loss: str = "bce",
        augment: str = "diffaugment", ema: str = "auto", precision: str = "bf16", g_width: int = 32,
        d_width: int = 32, z_dim: int = 100, xflip: bool = True, seed: int = 0, preview_every: int = 0,
        max_minutes: float = 0.0,
    ) -> str:  # fmt: skip
        """Start a training run in the background (one per server); follow it with `progress`."""
        busy = trainer.busy_message()
        if busy:
            raise Busy(busy)
        steps = clamp_int("steps", steps, 1, max_steps(lab.on_space))
        seed = clamp_int("seed", seed, 0, 2**31 - 1)
        spec = lab.data_spec(source, files, folder, image_size, channels, seed)
        model_cfg = gan.ModelConfig(
            image_size=spec.image_size, channels=spec.channels, z_dim=clamp_int("z_dim", z_dim, 2, 1024),
            g_width=clamp_int("g_width", g_width, 4, 512), d_width=clamp_int("d_width", d_width, 4, 512),
        )  # fmt: skip
        log_every, sample_every, ckpt_every = auto_every(steps, preview_every)
        train_cfg = gan.TrainConfig(
            steps=steps, batch_size=clamp_int("batch_size", batch_size, 1, 4096), lr_g=float(lr), lr_d=float(lr),
            loss=loss, augment=augment, ema_decay=ema_decay(ema, steps), precision=precision, xflip=bool(xflip),
            seed=seed, log_every=log_every, sample_every=sample_every, checkpoint_every=ckpt_every,
            metric_every=auto_metric_every(steps), max_minutes=float(max_minutes or 0.0),
            n_sample=64 if spec.image_size <= 64 else 36, extra={"data": spec.describe()},
        )  # fmt: skip
        data = lab.data(spec)
        label = f"{slug(Path(spec.describe()).stem if spec.kind != 'synthetic' else 'shapes')}-{spec.image_size}px"
        job = trainer.start(model_cfg, train_cfg, data, spec, trainer.new_run_dir(label))
        return (
            f"Started `{job.name}`: {steps} steps on {job.data_summary}. "
            "Watch it here (or poll the `progress` endpoint)."
        )

    @friendly
    def resume(run: str, steps: int) -> str:
        """Continue a stopped (or finished) run from its checkpoint, up to `steps` steps in total."""
        busy = trainer.busy_message()
        if busy:
            raise Busy(busy)
        if not run or "/" in run or "\\" in run or run.startswith("."):
            raise AppError("Pick a run to resume (runs with a checkpoint are listed next to Resume).")
        d = lab.runs_dir / run
        meta_p = d / "app_run.json"
        if not meta_p.is_file() or not (d / "checkpoint.safetensors").is_file():
            raise AppError(f"Run {run!r} has no checkpoint to resume from.")
        meta = json.loads(meta_p.read_text())
        steps = clamp_int("steps", steps, 1, max_steps(lab.on_space))
        done = int(meta.get("step", 0))
        if steps <= done:
            raise AppError(f"Run {run} is already at step {done}; set Steps above that to continue it.")
        dm = meta["data"]
        spec = DataSpec(dm["kind"], dm["image_size"], dm["channels"], tuple(dm["paths"]), dm.get("seed", 0))
        train_cfg = gan.TrainConfig.from_dict(meta["train_config"])
        train_cfg = train_cfg.replace(steps=steps, metric_every=auto_metric_every(steps))
        data = lab.data(spec)
        rows, metrics = [], []
        log_p = d / "log.jsonl"
        if log_p.is_file():  # the loss and metric history so far, so the plots continue
            for line in log_p.read_text().splitlines():
                ev = json.loads(line)
                if ev.get("event") == "StepLog" and ev["step"] <= done:
                    rows.append({k: ev[k] for k in ("step", "loss_d", "loss_g", "d_real", "d_fake")})
                elif ev.get("event") == "Metric" and ev["step"] <= done:
                    metrics.append({"step": ev["step"], ev["name"]: ev["value"]})
        job = trainer.start(None, train_cfg, data, spec, d, resume=d, rows=rows, metrics=metrics)
        return f"Resuming `{job.name}` from step {done} up to {steps}."

    def stop() -> str:
        """Stop the running training job: it writes a checkpoint and its model folder, then ends."""
        return trainer.stop()

    def progress(since: int = 0) -> tuple[dict[str, Any], np.ndarray | None]:
        """The training job's state (status, step, steps, img/s, ETA, model, losses logged after step `since`)
        and its latest sample grid."""
        job = trainer.job
        if job is None:
            idle = {"status": "idle", "step": 0, "steps": 0, "losses": [], "metric_every": 0, "metrics": []}
            return {**idle, "message": "no training run yet"}, None
        return job.snapshot(since=clamp_int("since", since or 0, 0, 10**9)), job.grid

    # ---- UI-only helpers ---------------------------------------------------------------------

    def model_widgets(key: str | None):
        """Model info, its zip download and the no-model notices for a picker value."""
        has_any = models.default() is not None
        z = models.zip(key) if key else None
        return (
            models.info(key) if key else (NO_MODEL if not has_any else "Pick a model."),
            gr.DownloadButton(value=z, visible=z is not None),
            gr.Markdown(visible=not has_any),
            gr.Markdown(visible=not has_any),
            gr.Markdown(visible=not has_any),
        )

    def direction_labels(key: str | None, n: int) -> list[str]:
        """Slider labels for the model's first n principal directions (n of them when it cannot load)."""
        try:
            k = len(lab.directions(models.get(key))) if key else n
        except Exception:
            k = n
        return [f"Direction {i + 1}" for i in range(min(k, n))]

    def direction_sliders(key: str | None):
        labels = direction_labels(key, N_DIRECTIONS)
        return [
            gr.Slider(value=0.0, label=labels[i] if i < len(labels) else "", visible=i < len(labels))
            for i in range(N_DIRECTIONS)
        ]

    def explore_panel(key: str | None):
        """The Explore tab's sliders (reset, labelled) and each direction's strip, for a model."""
        labels = direction_labels(key, N_EXPLORE)
        try:
            strips = lab.strips(models.get(key)) if key else []
        except Exception:
            strips = []
        sliders = [
            gr.Slider(value=0.0, label=labels[i] if i < len(labels) else "", visible=i < len(labels))
            for i in range(N_EXPLORE)
        ]
        images = [
            gr.Image(value=strips[i] if i < len(strips) else None, visible=i < len(labels)) for i in range(N_EXPLORE)
        ]
        return sliders + images

    def plane_overview(model, seed_tl, seed_tr, seed_bl, seed_br, mode, truncation):
        """The seed plane as a PLANE_N x PLANE_N grid (quietly empty when it cannot be drawn)."""
        try:
            corners = plane_args(seed_tl, seed_tr, seed_bl, seed_br, mode)
            G = models.get(model)
            with lab.threads(1):
                a = latent.blend_plane(G, corners, PLANE_N, mode=mode, truncation=float(truncation))
            return a[..., 0] if a.shape[-1] == 1 else a
        except Exception:
            return None

    def refresh_models(current: str | None):
        ch = models.choices()
        values = [v for _, v in ch]
        value = current if current in values or (current and is_repo_id(current)) else models.default()
        return gr.Dropdown(choices=ch, value=value)

    def seeds_gallery(model, seed, n, truncation):
        """The same images one by one, captioned with their seeds, plus the PNG download of the grid."""
        try:
            imgs = lab.sample_images(model, seed, n, truncation)
        except Exception:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        seed, n = int(seed), len(imgs)
        items = [(to_hwc(imgs[i : i + 1]), f"seed {seed + i}") for i in range(n)]
        png = sampling.save_png(
            sampling.make_grid(imgs) if n > 1 else imgs[0],
            lab.scratch.path(f"gan-lab_{slug(str(model or 'model'))}_seed{seed}_n{n}.png"),
        )
        rows = math.ceil(n / max(1, math.ceil(math.sqrt(n))))
        info = (
            f"Seeds {seed}–{seed + n - 1}, row by row ({rows} row{'s' if rows > 1 else ''}). "
            "Click an image below to carry its seed to Interpolate or Explore."
            if n > 1
            else f"Seed {seed}."
        )
        return items, info, gr.DownloadButton(value=str(png), visible=True), [seed + i for i in range(n)]

    def pick_seed(seeds: list[int], evt: gr.SelectData):
        i = evt.index if isinstance(evt.index, int) else None
        if i is None or not 0 <= i < len(seeds or []):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        s = seeds[i]
        return (
            s,
            gr.Button(interactive=True, value=f"Seed {s} → Interpolate A"),
            gr.Button(interactive=True, value=f"Seed {s} → Interpolate B"),
            gr.Button(interactive=True, value=f"Seed {s} → Explore"),
        )

    def go_to(tab: str):
        return gr.Tabs(selected=tab)

    def preview_data(source, files, folder, image_size, channels, seed):
        try:
            data = lab.data(lab.data_spec(source, files, folder, image_size, channels, int(seed or 0)))
        except USER_ERRORS as e:
            raise gr.Error(str(e), print_exception=False) from None
        return report_markdown(data), gr.Image(value=examples_grid(data), visible=True)

    def source_widgets(source: str):
        return gr.File(visible=source == "upload"), gr.Textbox(visible=source == "folder")

    n_outputs_train = 15

    def train_panel(sess: dict | None, current: str | None, force: bool = False):
        """Everything the Train tab shows about the job; skipped when nothing changed since the last call."""
        sess = dict(sess or {})
        job = trainer.job
        key = [job.id, job.version] if job else None
        if not force and sess.get("key") == key and "key" in sess:
            return (gr.skip(),) * n_outputs_train
        resumable = trainer.resumable()
        if job is None:
            status = "No training run yet. Pick data and options, then press **Start**."
            alive = False
            df_loss = df_prob = None
            metric_plot_update = gr.LinePlot(visible=False)
            grid = None
            data_md, examples = gr.skip(), gr.skip()
            model_zip, use_btn = gr.DownloadButton(visible=False), gr.Button(visible=False)
        else:
            snap = job.snapshot(max_rows=600)
            alive = job.alive
            status = status_line(job, snap)
            df_loss, df_prob = plot_frames(snap["losses"])
            got = snap["metrics"]  # until the first point: empty axes with the title
            metric_plot_update = gr.LinePlot(
                value=metric_frame(got) if got else pd.DataFrame({"step": [], "swd": []}), visible=job.metric_every > 0
            )
            grid = job.grid if sess.get("grid") != [job.id, job.grid_step] else gr.skip()
            if sess.get("job") != job.id:
                data_md = f"Data of `{job.name}`: " + report_markdown(job.data)
                examples = gr.Image(value=examples_grid(job.data), visible=True)
            else:
                data_md, examples = gr.skip(), gr.skip()
            z = models.zip(job.model_key) if job.model_key and not alive else None
            model_zip = gr.DownloadButton(value=z, visible=z is not None, label=f"Download {job.name}.zip")
            use_btn = gr.Button(visible=z is not None)
            sess["grid"] = [job.id, job.grid_step]
            sess["job"] = job.id
        sess["key"] = key
        choices = models.choices()
        model_update = gr.skip()
        if force or sess.get("models") != [v for _, v in choices]:  # a run finished: offer its model
            values = [v for _, v in choices]
            keep = current if current and (current in values or is_repo_id(current)) else None
            model_update = gr.Dropdown(choices=choices, value=keep or models.default())
        sess["models"] = [v for _, v in choices]
        return (
            status,
            df_loss,
            df_prob,
            metric_plot_update,
            grid,
            gr.Button(interactive=not alive),
            gr.Button(interactive=alive),
            gr.Button(interactive=not alive and bool(resumable), visible=bool(resumable)),
            gr.Dropdown(choices=resumable, value=resumable[0][1] if resumable else "", visible=bool(resumable)),
            model_zip,
            use_btn,
            data_md,
            examples,
            model_update,
            sess,
        )

    def use_trained_model():
        job = trainer.job
        if job is None or not job.model_key:
            return gr.skip()
        return gr.Dropdown(choices=models.choices(), value=job.model_key)

    # ---- layout --------------------------------------------------------------------------------

    has_model = models.default() is not None
    with gr.Blocks(title="GAN Lab") as demo:
        sess = gr.State({})
        seeds_state = gr.State([])  # the seeds of the images in the Sample tab's gallery
        picked = gr.State(None)  # the seed picked there
        gr.Markdown(
            "# GAN Lab\nTrain a small DCGAN on your own pictures and watch it learn; then make grids, "
            "walk through its latent space and download animations.",
            elem_id="gan-header",
        )
        with gr.Row(equal_height=True):
            model_dd = gr.Dropdown(
                label="Model", choices=models.choices(), value=models.default(), allow_custom_value=True,
                scale=3, min_width=240, info="Shipped models, models trained here, or a Hub repo id (user/name)",
            )  # fmt: skip
            with gr.Column(scale=2, min_width=240):
                model_info = gr.Markdown(models.info(models.default()) if has_model else NO_MODEL, elem_id="model-info")
                with gr.Row():
                    refresh_btn = gr.Button("↻ Rescan models", size="sm", min_width=120)
                    model_zip_btn = gr.DownloadButton("Download model (.zip)", visible=False, size="sm", min_width=160)
        with gr.Accordion("Hugging Face Hub: load a model by repo id, or push the selected one", open=False):
            with gr.Row():
                with gr.Column(min_width=280):
                    hub_repo = gr.Textbox(
                        label="Load a model from the Hub", placeholder="user/name", max_lines=1, elem_id="hub-repo"
                    )
                    hub_load_btn = gr.Button("Load", size="sm", elem_id="hub-load")
                with gr.Column(min_width=280):
                    push_repo = gr.Textbox(
                        label="Push the selected model to", placeholder="your-user-name/my-gan", max_lines=1
                    )
                    with gr.Row(equal_height=True):
                        hub_token = gr.Textbox(
                            label="Hub token (write access)", type="password", max_lines=1, scale=3,
                            placeholder="hf_…  (leave empty to use HF_TOKEN)", elem_id="hub-token",
                        )  # fmt: skip
                        hub_private = gr.Checkbox(False, label="Private repo", scale=1, min_width=100)
                    hub_push_btn = gr.Button("Push to the Hub", size="sm", variant="primary", elem_id="hub-push")
            gr.Markdown(token_note(on_space), elem_classes=["gan-note"])
            hub_status = gr.Markdown("", elem_id="hub-status")

        with gr.Tabs() as tabs:
            # ---- Sample ------------------------------------------------------------------------
            with gr.Tab("Sample", id="sample"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=280):
                        notice_s = gr.Markdown("### " + NO_MODEL, visible=not has_model)
                        to_train_s = gr.Button("Go to Train", visible=not has_model, variant="primary")
                        with gr.Row(equal_height=True):
                            seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, scale=3)
                            dice = gr.Button("Random", scale=0, min_width=80, elem_id="random-seed")
                        n = gr.Slider(1, 64, value=16, step=1, label="Images (n)")
                        truncation = gr.Slider(
                            0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ",
                            info="below 1: fewer odd images, less variety; 0 gives the average image",
                        )  # fmt: skip
                        gen_btn = gr.Button("Generate", variant="primary")
                        seeds_md = gr.Markdown("")
                        with gr.Row():
                            to_a = gr.Button("→ Interpolate A", interactive=False, size="sm", elem_id="to-a")
                            to_b = gr.Button("→ Interpolate B", interactive=False, size="sm")
                            to_e = gr.Button("→ Explore", interactive=False, size="sm", elem_id="to-explore")
                        png_btn = gr.DownloadButton("Download PNG", visible=False)
                    with gr.Column(scale=2):
                        grid_img = gr.Image(
                            label="Samples", format="png", interactive=False, height=520,
                            elem_id="sample-grid", elem_classes=["pixelated"], buttons=["download", "fullscreen"],
                        )  # fmt: skip
                        gallery = gr.Gallery(
                            label="Each image with its seed", show_label=False, elem_id="seed-gallery", columns=6,
                            height=320, object_fit="contain", allow_preview=False, elem_classes=["pixelated"],
                            format="png",
                        )  # fmt: skip

            # ---- Interpolate ---------------------------------------------------------------------
            with gr.Tab("Interpolate", id="interpolate"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        notice_i = gr.Markdown("### " + NO_MODEL, visible=not has_model)
                        with gr.Row(equal_height=True):
                            seed_a = gr.Number(1, label="Seed A", precision=0, minimum=0, maximum=MAX_SEED)
                            seed_b = gr.Number(2, label="Seed B", precision=0, minimum=0, maximum=MAX_SEED)
                        with gr.Row():
                            dice_a = gr.Button("Random A", size="sm", min_width=60)
                            swap = gr.Button("⇄ Swap", size="sm", min_width=60)
                            dice_b = gr.Button("Random B", size="sm", min_width=60)
                        t = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="t (0 = seed A, 1 = seed B)", elem_id="t")
                        with gr.Row():
                            mode = gr.Radio(["slerp", "lerp"], value="slerp", label="Path", scale=1)
                            truncation_i = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ", scale=2)
                    with gr.Column(scale=1):
                        interp_img = gr.Image(
                            label="Image at t", format="png", interactive=False, height=420,
                            elem_id="interp-image", elem_classes=["pixelated"], buttons=["download", "fullscreen"],
                        )  # fmt: skip
                    with gr.Column(scale=1, min_width=280):
                        gr.Markdown(
                            "**Principal directions** (in σ): move the current latent along the model's main "
                            "axes of variation. The **Explore** tab shows what each one does."
                        )
                        dirs = [
                            gr.Slider(-3.0, 3.0, value=0.0, step=0.1, label=f"Direction {i + 1}")
                            for i in range(N_DIRECTIONS)
                        ]
                        reset_dirs = gr.Button("Reset directions", size="sm")
                with gr.Accordion("Animation: the walk from A to B", open=True):
                    with gr.Row(equal_height=True):
                        frames = gr.Slider(2, 256, value=32, step=1, label="Frames")
                        fps = gr.Slider(1, 60, value=12, step=1, label="Frames per second")
                        loop = gr.Checkbox(True, label="There and back (loops smoothly)")
                        walk_btn = gr.Button("Render GIF + MP4", variant="primary")
                    with gr.Row():
                        walk_gif = gr.Image(
                            label="GIF", type="filepath", interactive=False, height=300, elem_classes=["pixelated"],
                            buttons=["download", "fullscreen"],
                        )  # fmt: skip
                        walk_mp4 = gr.Video(
                            label="MP4", interactive=False, height=300, loop=True, elem_classes=["pixelated"]
                        )
                        walk_files = gr.File(label="Downloads", file_count="multiple", interactive=False)

            # ---- Explore -------------------------------------------------------------------------
            with gr.Tab("Explore", id="explore"):
                notice_e = gr.Markdown("### " + NO_MODEL, visible=not has_model)
                with gr.Tabs():
                    with gr.Tab("Directions", id="directions"):
                        with gr.Row():
                            with gr.Column(scale=2, min_width=300):
                                with gr.Row(equal_height=True):
                                    ex_seed = gr.Number(
                                        0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, scale=3,
                                        elem_id="explore-seed",
                                    )  # fmt: skip
                                    ex_dice = gr.Button("Random", scale=0, min_width=80)
                                ex_img = gr.Image(
                                    label="Seed moved along the directions", format="png", interactive=False,
                                    height=380, elem_id="explore-image", elem_classes=["pixelated"],
                                    buttons=["download", "fullscreen"],
                                )  # fmt: skip
                                with gr.Row(equal_height=True):
                                    ex_trunc = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ", scale=3)
                                    ex_reset = gr.Button("Reset sliders", size="sm", scale=1, min_width=100)
                            with gr.Column(scale=3, min_width=420):
                                gr.Markdown(
                                    "The model's **principal directions** (GANSpace): the latent axes along which "
                                    "its images vary most, strongest first. Sliders are in σ (one standard "
                                    f"deviation of random latents along that axis). Each strip shows seed {STRIP_SEED} "
                                    f"from {STRIP_AMOUNTS[0]:g} σ (left) to {STRIP_AMOUNTS[-1]:+g} σ (right).",
                                    elem_classes=["gan-note"],
                                )
                                ex_dirs, ex_strips = [], []
                                for i in range(N_EXPLORE):
                                    with gr.Row(equal_height=True):
                                        slider = gr.Slider(
                                            -4.0, 4.0, value=0.0, step=0.1, label=f"Direction {i + 1}", scale=1,
                                            min_width=180, elem_id=f"explore-d{i + 1}",
                                        )  # fmt: skip
                                        strip = gr.Image(
                                            show_label=False, format="png", interactive=False, height=84,
                                            container=False, buttons=[], scale=2, min_width=240,
                                            elem_classes=["pixelated", "strip"], elem_id=f"explore-strip{i + 1}",
                                        )  # fmt: skip
                                    ex_dirs.append(slider)
                                    ex_strips.append(strip)
                    with gr.Tab("Seed plane", id="plane"):
                        with gr.Row():
                            with gr.Column(scale=1, min_width=280):
                                gr.Markdown(
                                    "Four seeds at the corners of a square; **u** and **v** move between them "
                                    "(u left → right, v top → bottom).",
                                    elem_classes=["gan-note"],
                                )
                                with gr.Row():
                                    pl_tl = gr.Number(
                                        1, label="Top-left seed", precision=0, minimum=0, maximum=MAX_SEED
                                    )
                                    pl_tr = gr.Number(
                                        2, label="Top-right seed", precision=0, minimum=0, maximum=MAX_SEED
                                    )
                                with gr.Row():
                                    pl_bl = gr.Number(
                                        3, label="Bottom-left seed", precision=0, minimum=0, maximum=MAX_SEED
                                    )
                                    pl_br = gr.Number(
                                        4, label="Bottom-right seed", precision=0, minimum=0, maximum=MAX_SEED
                                    )
                                pl_dice = gr.Button("Random corners", size="sm")
                                pl_u = gr.Slider(
                                    0.0, 1.0, value=0.5, step=0.01, label="u (left → right)", elem_id="plane-u"
                                )
                                pl_v = gr.Slider(
                                    0.0, 1.0, value=0.5, step=0.01, label="v (top → bottom)", elem_id="plane-v"
                                )
                                pl_mode = gr.Radio(["slerp", "bilinear"], value="slerp", label="Blend")
                                pl_trunc = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ")
                            with gr.Column(scale=1, min_width=280):
                                pl_img = gr.Image(
                                    label="Image at (u, v)", format="png", interactive=False, height=400,
                                    elem_id="plane-image", elem_classes=["pixelated"],
                                    buttons=["download", "fullscreen"],
                                )  # fmt: skip
                            with gr.Column(scale=1, min_width=280):
                                pl_grid = gr.Image(
                                    label=f"The whole plane ({PLANE_N}×{PLANE_N})", format="png", interactive=False,
                                    height=400, elem_id="plane-grid", elem_classes=["pixelated"],
                                    buttons=["download", "fullscreen"],
                                )  # fmt: skip
                    with gr.Tab("Your photos", id="invert"):
                        gr.Markdown(
                            "Upload a photo: the app searches the latent space for the image of this model that "
                            "comes closest to it (**inversion**). With a second photo it also walks from one "
                            "to the other. The **target** is the photo as the model sees it (centre-cropped and "
                            "resized). A model only reproduces what it has learned: a cat model turns anything "
                            "into a cat.",
                            elem_classes=["gan-note"],
                        )
                        with gr.Row():
                            for name in "AB":
                                with gr.Column(scale=1, min_width=260):
                                    photo = gr.Image(
                                        label=f"Photo {name}" + (" (optional)" if name == "B" else ""), type="pil",
                                        sources=["upload", "clipboard"], height=220, elem_id=f"photo-{name.lower()}",
                                    )  # fmt: skip
                                    with gr.Row():
                                        tgt = gr.Image(
                                            label="target", format="png", interactive=False, height=150,
                                            elem_classes=["pixelated"], buttons=["download"],
                                        )  # fmt: skip
                                        rec = gr.Image(
                                            label="reconstruction", format="png", interactive=False, height=150,
                                            elem_classes=["pixelated"], buttons=["download"],
                                            elem_id=f"recon-{name.lower()}",
                                        )  # fmt: skip
                                    err = gr.Number(
                                        None,
                                        label="RMS error (0 = identical, 1 = opposite)",
                                        interactive=False,
                                        precision=4,
                                    )
                                    if name == "A":
                                        photo_a, tgt_a, rec_a, err_a = photo, tgt, rec, err
                                    else:
                                        photo_b, tgt_b, rec_b, err_b = photo, tgt, rec, err
                            with gr.Column(scale=1, min_width=260):
                                inv_steps = gr.Slider(
                                    10, 1000, value=INVERT_STEPS, step=10, label="Optimisation steps",
                                    info="more: closer, slower (150 take a few seconds on a CPU)",
                                )  # fmt: skip
                                inv_btn = gr.Button("Invert", variant="primary", elem_id="invert")
                                inv_frames = gr.Slider(2, 128, value=24, step=1, label="Frames of the walk A → B")
                                inv_walk_btn = gr.Button("Render the walk again", size="sm")
                                inv_gif = gr.Image(
                                    label="Walk between the two photos (GIF)", type="filepath", interactive=False,
                                    height=260, elem_classes=["pixelated"], buttons=["download", "fullscreen"],
                                )  # fmt: skip
                        inv_state = gr.State({})
                    with gr.Tab("Vector arithmetic", id="arithmetic"):
                        with gr.Row():
                            with gr.Column(scale=1, min_width=300):
                                gr.Markdown(
                                    "As in the DCGAN paper: average the latents of a few seeds per group, then "
                                    "compute **A − B + C** (e.g. smiling woman − woman + man = smiling man). "
                                    "Pick seeds in the Sample tab; ranges like `10-13` work.",
                                    elem_classes=["gan-note"],
                                )
                                ar_a = gr.Textbox("1, 2, 3", label="Seeds A", max_lines=1)
                                ar_b = gr.Textbox("4, 5, 6", label="Seeds B (subtracted)", max_lines=1)
                                ar_c = gr.Textbox("7, 8, 9", label="Seeds C (added)", max_lines=1)
                                ar_trunc = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ")
                                ar_btn = gr.Button("Compute A − B + C", variant="primary")
                            with gr.Column(scale=2):
                                ar_gallery = gr.Gallery(
                                    label="mean A, mean B, mean C, and A − B + C", columns=4, height=260,
                                    object_fit="contain", allow_preview=False, format="png",
                                    elem_id="arithmetic", elem_classes=["pixelated"],
                                )  # fmt: skip

            # ---- Train -------------------------------------------------------------------------------
            with gr.Tab("Train", id="train"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=320):
                        gr.Markdown("### 1 · Data")
                        sources = [("Built-in shapes", "synthetic"), ("Upload images or a zip", "upload")]
                        if not on_space:
                            sources.append(("Folder on this server", "folder"))
                        source = gr.Radio(sources, value="synthetic", label="Source")
                        files = gr.File(
                            label="Images, or a .zip / .npz of them", file_count="multiple",
                            file_types=["image", ".zip", ".npz"], visible=False,
                        )  # fmt: skip
                        folder = gr.Textbox(
                            "", label="Folder, .zip or .npz path on the server", visible=False,
                            placeholder="/data/cats  or  ~/Pictures/cats.zip",
                        )  # fmt: skip
                        with gr.Row():
                            image_size = gr.Dropdown([16, 32, 64, 128], value=td["image_size"], label="Image size (px)")
                            channels = gr.Radio([("RGB", 3), ("Grayscale", 1)], value=3, label="Channels")
                        load_btn = gr.Button("Load and check data", size="sm")
                        gr.Markdown("### 2 · Options")
                        with gr.Row():
                            steps = gr.Number(td["steps"], label="Steps", precision=0, minimum=1, maximum=1_000_000)
                            batch_size = gr.Slider(1, 256, value=td["batch_size"], step=1, label="Batch size")
                        with gr.Row():
                            lr = gr.Number(td["lr"], label="Learning rate (G and D)", minimum=1e-6, maximum=0.1)
                            loss = gr.Radio(list(LOSSES), value=recipe.loss, label="Loss")
                        augment = gr.Dropdown(
                            list(AUGMENTS), value=recipe.augment, label="Augmentation",
                            info="DiffAugment keeps D from memorising a small set; classic: flips, turns, zooms",
                        )  # fmt: skip
                        with gr.Row():
                            ema = gr.Dropdown(
                                ["auto", "off", "0.99", "0.995", "0.999", "0.9999"], value="auto", label="EMA of G",
                                info="auto: half-life of a tenth of the run",
                            )  # fmt: skip
                            precision = gr.Radio(
                                list(PRECISIONS),
                                value="bf16",
                                label="Precision",
                                info="bf16 autocast: ~1.3-1.7x faster on recent CPUs and GPUs; fp32 for old hardware",
                            )
                        with gr.Accordion("Model size and more", open=False):
                            with gr.Row():
                                g_width = gr.Slider(4, 128, value=td["g_width"], step=4, label="G width")
                                d_width = gr.Slider(4, 128, value=td["d_width"], step=4, label="D width")
                                z_dim = gr.Slider(2, 256, value=td["z_dim"], step=1, label="z size")
                            with gr.Row():
                                xflip = gr.Checkbox(recipe.xflip, label="Mirror images (off for digits and text)")
                                train_seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                                preview_every = gr.Number(
                                    0, label="Preview every N steps (0 = auto)", precision=0, minimum=0
                                )
                                max_minutes = gr.Number(
                                    0, label="Time limit in minutes (0 = none)", minimum=0, maximum=1e6
                                )
                        with gr.Row():
                            start_btn = gr.Button("Start", variant="primary", elem_id="start")
                            stop_btn = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop")
                            resume_btn = gr.Button("Resume", interactive=False, visible=False, elem_id="resume")
                        resume_run = gr.Dropdown(
                            [],
                            value="",
                            label="Run to resume (up to Steps in total)",
                            allow_custom_value=True,
                            visible=False,
                        )
                    with gr.Column(scale=2):
                        train_status = gr.Markdown(
                            "No training run yet.", label="status", elem_classes=["gan-status"], elem_id="train-status"
                        )
                        with gr.Row():
                            loss_plot = gr.LinePlot(
                                None, x="step", y="value", color="series", title="Losses",
                                y_title="loss", height=260, elem_id="loss-plot",
                            )  # fmt: skip
                            prob_plot = gr.LinePlot(
                                None, x="step", y="value", color="series", title="Discriminator outputs",
                                y_title="mean probability", y_lim=[0, 1], height=260, elem_id="prob-plot",
                            )  # fmt: skip
                            metric_plot = gr.LinePlot(
                                None, x="step", y="swd", title="SWD (lower is better)", y_title="SWD ×10³",
                                x_title="step", height=260, elem_id="metric-plot", visible=False,
                            )  # fmt: skip
                        live_grid = gr.Image(
                            label="Samples from fixed noise", format="png", interactive=False, height=420,
                            elem_id="live-grid", elem_classes=["pixelated"],
                            buttons=["download", "fullscreen"],
                        )  # fmt: skip
                        with gr.Row():
                            run_zip_btn = gr.DownloadButton("Download model (.zip)", visible=False)
                            use_btn = gr.Button("Use it in Sample and Interpolate", visible=False)
                        data_md = gr.Markdown("")
                        data_examples = gr.Image(
                            label="A few training images", format="png", interactive=False, height=240,
                            visible=False, elem_classes=["pixelated"], buttons=["fullscreen"],
                        )  # fmt: skip

        timer = gr.Timer(1.0)
        # hidden widgets for the script-facing progress endpoint
        progress_btn = gr.Button(visible=False)
        progress_since = gr.Number(0, visible=False, precision=0, label="since")
        progress_json = gr.JSON(visible=False, label="state")
        progress_grid = gr.Image(visible=False, format="png", label="grid")

        # ---- events -----------------------------------------------------------------------------

        model_outs = [model_info, model_zip_btn, notice_s, notice_i, notice_e]
        sample_in = [model_dd, seed, n, truncation]
        gallery_outs = [gallery, seeds_md, png_btn, seeds_state]
        interp_in = [model_dd, seed_a, seed_b, t, mode, truncation_i, *dirs]
        explore_in = [model_dd, ex_seed, *ex_dirs, ex_trunc]
        plane_in = [model_dd, pl_tl, pl_tr, pl_bl, pl_br, pl_u, pl_v, pl_mode, pl_trunc]
        overview_in = [model_dd, pl_tl, pl_tr, pl_bl, pl_br, pl_mode, pl_trunc]
        invert_outs = [tgt_a, rec_a, err_a, tgt_b, rec_b, err_b, inv_gif, inv_state]
        train_outs = [
            train_status, loss_plot, prob_plot, metric_plot, live_grid, start_btn, stop_btn, resume_btn, resume_run,
            run_zip_btn, use_btn, data_md, data_examples, model_dd, sess,
        ]  # fmt: skip
        assert len(train_outs) == n_outputs_train

        def render_sample_quietly(model, seed, n, truncation):
            try:
                return to_hwc(lab.sample_images(model, seed, n, truncation))
            except Exception:
                return None

        def render_interp_quietly(*args):
            try:
                return interpolate(*args)
            except Exception:
                return None

        def render_explore_quietly(*args):
            try:
                return explore(*args)
            except Exception:
                return None

        def render_plane_quietly(*args):
            try:
                return plane(*args)
            except Exception:
                return None

        def random_seeds(k: int):
            return [random.randint(0, 9_999_999) for _ in range(k)]

        # sample
        gen_btn.click(sample, sample_in, grid_img, api_name="sample").success(
            seeds_gallery, sample_in, gallery_outs, api_visibility="private"
        )
        seed.submit(sample, sample_in, grid_img, api_visibility="private").success(
            seeds_gallery, sample_in, gallery_outs, api_visibility="private"
        )
        gr.on(
            [n.release, truncation.release], sample, sample_in, grid_img,
            api_visibility="private", trigger_mode="always_last",
        ).success(seeds_gallery, sample_in, gallery_outs, api_visibility="private")  # fmt: skip
        dice.click(lambda: random.randint(0, 9_999_999), None, seed, api_visibility="private").then(
            sample, sample_in, grid_img, api_visibility="private"
        ).success(seeds_gallery, sample_in, gallery_outs, api_visibility="private")
        gallery.select(pick_seed, seeds_state, [picked, to_a, to_b, to_e], api_visibility="private")
        to_a.click(lambda s: (s, go_to("interpolate")), picked, [seed_a, tabs], api_visibility="private")
        to_b.click(lambda s: (s, go_to("interpolate")), picked, [seed_b, tabs], api_visibility="private")
        to_e.click(lambda s: (s, go_to("explore")), picked, [ex_seed, tabs], api_visibility="private")
        to_train_s.click(lambda: go_to("train"), None, tabs, api_visibility="private")

        # interpolate: t is live (always_last, no progress overlay); other inputs re-render too
        gr.on(
            [t.input, truncation_i.input, *[d.input for d in dirs], mode.change, seed_a.change, seed_b.change],
            interpolate, interp_in, interp_img,
            api_name="interpolate", trigger_mode="always_last", show_progress="hidden",
        )  # fmt: skip
        dice_a.click(lambda: random.randint(0, 9_999_999), None, seed_a, api_visibility="private")
        dice_b.click(lambda: random.randint(0, 9_999_999), None, seed_b, api_visibility="private")
        swap.click(lambda a, b: (b, a), [seed_a, seed_b], [seed_a, seed_b], api_visibility="private")
        reset_dirs.click(lambda: [0.0] * N_DIRECTIONS, None, dirs, api_visibility="private").then(
            render_interp_quietly, interp_in, interp_img, api_visibility="private", show_progress="hidden"
        )
        walk_btn.click(
            walk, [model_dd, seed_a, seed_b, frames, mode, truncation_i, fps, loop, *dirs],
            [walk_gif, walk_mp4, walk_files], api_name="walk",
        )  # fmt: skip

        # explore: directions (live sliders), the seed plane, photo inversion, vector arithmetic
        gr.on(
            [*[d.input for d in ex_dirs], ex_trunc.input, ex_seed.change],
            explore, explore_in, ex_img,
            api_name="explore", trigger_mode="always_last", show_progress="hidden",
        )  # fmt: skip
        ex_dice.click(lambda: random.randint(0, 9_999_999), None, ex_seed, api_visibility="private")
        ex_reset.click(lambda: [0.0] * N_EXPLORE, None, ex_dirs, api_visibility="private").then(
            render_explore_quietly, explore_in, ex_img, api_visibility="private", show_progress="hidden"
        )
        gr.on(
            [pl_u.input, pl_v.input], plane, plane_in, pl_img,
            api_name="plane", trigger_mode="always_last", show_progress="hidden",
        )  # fmt: skip
        gr.on(
            [pl_tl.change, pl_tr.change, pl_bl.change, pl_br.change, pl_mode.change, pl_trunc.input],
            render_plane_quietly, plane_in, pl_img,
            api_visibility="private", trigger_mode="always_last", show_progress="hidden",
        ).then(plane_overview, overview_in, pl_grid, api_visibility="private", show_progress="hidden")  # fmt: skip
        pl_dice.click(lambda: random_seeds(4), None, [pl_tl, pl_tr, pl_bl, pl_br], api_visibility="private")
        inv_btn.click(
            invert, [model_dd, photo_a, photo_b, inv_steps, inv_frames], invert_outs, api_name="invert",
            show_progress_on=[inv_gif],  # one progress bar, under the button
        )  # fmt: skip
        inv_walk_btn.click(walk_photos, [model_dd, inv_frames, inv_state], inv_gif, api_visibility="private")
        ar_btn.click(arithmetic, [model_dd, ar_a, ar_b, ar_c, ar_trunc], ar_gallery, api_name="arithmetic")
        gr.on(
            [ar_a.submit, ar_b.submit, ar_c.submit, ar_trunc.release],
            arithmetic, [model_dd, ar_a, ar_b, ar_c, ar_trunc], ar_gallery,
            api_visibility="private", trigger_mode="always_last",
        )  # fmt: skip

        def render_explore_all(model, seed, truncation, tl, tr, bl, br, u, v, blend, plane_truncation):
            """Everything the Explore tab draws for a model (after a model change or a page load)."""
            panel = explore_panel(model)  # sliders back to 0, new labels and strips
            image = render_explore_quietly(model, seed, *[0.0] * N_EXPLORE, truncation)
            plane_image = render_plane_quietly(model, tl, tr, bl, br, u, v, blend, plane_truncation)
            overview = plane_overview(model, tl, tr, bl, br, blend, plane_truncation)
            return [*panel, image, plane_image, overview]

        explore_all_in = [model_dd, ex_seed, ex_trunc, pl_tl, pl_tr, pl_bl, pl_br, pl_u, pl_v, pl_mode, pl_trunc]
        explore_all_outs = [*ex_dirs, *ex_strips, ex_img, pl_img, pl_grid]

        # the Hub
        hub_load_btn.click(hub_load, hub_repo, hub_status, api_name="hub_load").success(
            lambda rid: gr.Dropdown(choices=models.choices(), value=rid.strip()), hub_repo, model_dd,
            api_visibility="private",
        )  # fmt: skip
        hub_repo.submit(hub_load, hub_repo, hub_status, api_visibility="private").success(
            lambda rid: gr.Dropdown(choices=models.choices(), value=rid.strip()), hub_repo, model_dd,
            api_visibility="private",
        )  # fmt: skip
        hub_push_btn.click(
            hub_push, [model_dd, push_repo, hub_token, hub_private], hub_status, api_name="hub_push"
        ).then(lambda: "", None, hub_token, api_visibility="private", show_progress="hidden")  # the token goes

        # model picker
        model_dd.change(model_widgets, model_dd, model_outs, api_visibility="private").then(
            direction_sliders, model_dd, dirs, api_visibility="private"
        ).then(render_sample_quietly, sample_in, grid_img, api_visibility="private").then(
            seeds_gallery, sample_in, gallery_outs, api_visibility="private"
        ).then(render_interp_quietly, interp_in, interp_img, api_visibility="private", show_progress="hidden").then(
            render_explore_all, explore_all_in, explore_all_outs, api_visibility="private", show_progress="hidden"
        )
        refresh_btn.click(refresh_models, model_dd, model_dd, api_visibility="private").then(
            model_widgets, model_dd, model_outs, api_visibility="private"
        )

        # train
        source.change(source_widgets, source, [files, folder], api_visibility="private")
        train_in = [
            source, files, folder, image_size, channels, steps, batch_size, lr, loss, augment, ema, precision,
            g_width, d_width, z_dim, xflip, train_seed, preview_every, max_minutes,
        ]  # fmt: skip
        load_btn.click(
            preview_data, [source, files, folder, image_size, channels, train_seed], [data_md, data_examples],
            api_visibility="private",
        )  # fmt: skip
        start_btn.click(train, train_in, train_status, api_name="train").success(
            lambda s, m: train_panel(s, m, True), [sess, model_dd], train_outs, api_visibility="private"
        )
        stop_btn.click(stop, None, train_status, api_name="stop").then(
            lambda s, m: train_panel(s, m, True), [sess, model_dd], train_outs, api_visibility="private"
        )
        resume_btn.click(resume, [resume_run, steps], train_status, api_name="resume").success(
            lambda s, m: train_panel(s, m, True), [sess, model_dd], train_outs, api_visibility="private"
        )
        timer.tick(
            train_panel,
            [sess, model_dd],
            train_outs,
            api_visibility="private",
            show_progress="hidden",
            concurrency_limit=None,
        )
        use_btn.click(use_trained_model, None, model_dd, api_visibility="private").then(
            lambda: go_to("sample"), None, tabs, api_visibility="private"
        )
        progress_btn.click(
            progress, progress_since, [progress_json, progress_grid], api_name="progress", concurrency_limit=None
        )

        # page load: fresh model list (models may have been trained since), then first images
        demo.load(refresh_models, model_dd, model_dd, api_visibility="private").then(
            model_widgets, model_dd, model_outs, api_visibility="private"
        ).then(direction_sliders, model_dd, dirs, api_visibility="private").then(
            lambda s, m: train_panel(s, m, True), [sess, model_dd], train_outs, api_visibility="private"
        ).then(render_sample_quietly, sample_in, grid_img, api_visibility="private").then(
            seeds_gallery, sample_in, gallery_outs, api_visibility="private"
        ).then(render_interp_quietly, interp_in, interp_img, api_visibility="private").then(
            render_explore_all, explore_all_in, explore_all_outs, api_visibility="private", show_progress="hidden"
        )

    demo.lab = lab  # for tests and main(): the shared state (trainer, models)
    return demo


def plot_frames(rows: list[dict]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Loss rows -> two long-format frames for the LinePlots: losses, and D's mean outputs."""
    if not rows:
        return None, None
    df = pd.DataFrame(rows)
    names = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))"}
    long = df.melt(id_vars="step", var_name="series", value_name="value")
    long["series"] = long["series"].map(names)
    return (
        long[long.series.isin(["D loss", "G loss"])].reset_index(drop=True),
        long[long.series.isin(["D(x)", "D(G(z))"])].reset_index(drop=True),
    )


def metric_frame(metrics: list[dict]) -> pd.DataFrame | None:
    """Metric rows ({"step": s, "swd": v}) -> the SWD LinePlot's frame."""
    rows = [m for m in metrics if "swd" in m]
    return pd.DataFrame(rows, columns=["step", "swd"]) if rows else None


def status_line(job: Job, snap: dict[str, Any]) -> str:
    step, steps = snap["step"], snap["steps"]
    pct = f"{100 * step / max(steps, 1):.0f}%"
    last = snap["losses"][-1] if snap["losses"] else None
    losses = f" · loss D {last['loss_d']:.3f} · G {last['loss_g']:.3f}" if last else ""
    swd = [m["swd"] for m in snap.get("metrics", []) if "swd" in m]
    losses += f" · SWD {swd[-1]:.1f}" if swd else ""
    st = snap["status"]
    if st == "starting":
        return f"**Starting** `{job.name}`: preparing models…"
    if st == "running":
        return (
            f"**Training** `{job.name}` · step {step} / {steps} ({pct}) · {snap['img_per_s']:.0f} img/s · "
            f"ETA {fmt_duration(snap['eta_s'])}{losses}"
        )
    if st == "stopping":
        return f"**Stopping** `{job.name}` at step {step}: writing a checkpoint and the model folder…"
    took = fmt_duration(snap["elapsed_s"])
    if st == "finished":
        return (
            f"**Finished** `{job.name}`: {step} steps in {took}{losses}. "
            f"It is in the model picker as *{job.name} (trained here)*."
        )
    if st == "stopped":
        return (
            f"**Stopped** `{job.name}` at step {step} of {steps} after {took}; checkpoint saved. "
            "**Resume** continues it; the model so far is in the model picker."
        )
    return f"**{st.capitalize()}** `{job.name}` at step {step}: {snap['message']}"


def env_int(name: str, default: int) -> int:
    """An integer limit from the environment (a bad value is ignored with a warning)."""
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        print(f"warning: {name} is not an integer; using {default}", file=sys.stderr)
        return default


def max_steps(on_space: bool) -> int:
    """GAN_MAX_STEPS: the step budget one training run may ask for (20,000 on a Space: ~2 h of CPU)."""
    return env_int("GAN_MAX_STEPS", 20_000 if on_space else 1_000_000)


def max_upload() -> str:
    """GAN_MAX_UPLOAD_MB: the largest upload the server accepts (200 MB on a Space, else 1 GB)."""
    return f"{env_int('GAN_MAX_UPLOAD_MB', 200 if os.environ.get('SPACE_ID') else 1024)}mb"


def token_note(on_space: bool) -> str:
    """What the Hub panel says about tokens."""
    keep = "It is used for that one push: the box is cleared afterwards, and it is never stored, logged or shown."
    if on_space:
        secret = (
            "Left empty, the push uses this Space's `HF_TOKEN` secret, and that pushes **as the Space owner**, "
            "whoever presses the button (the owner allowed it with `GAN_ALLOW_OWNER_PUSH=1`)."
            if os.environ.get("HF_TOKEN") and os.environ.get("GAN_ALLOW_OWNER_PUSH") == "1"
            else "Pushing needs your own token here: the Space owner's token is never lent to visitors."
        )
        mine = "paste your own write token (huggingface.co/settings/tokens) to push as yourself."
        return f"**Token**: {mine} {secret} {keep}"
    return (
        "**Token**: a write token from huggingface.co/settings/tokens; left empty, the push uses `HF_TOKEN` or "
        f"your `hf auth login`. {keep}"
    )


def launch_options() -> dict[str, Any]:
    """Look-and-feel options that Gradio 6 takes in launch() (tests pass them too)."""
    return {
        "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="pink"),
        "css": CSS,
        "footer_links": ["api", "gradio", "settings"],
    }


def main(argv: list[str] | None = None) -> None:
    on_space = bool(os.environ.get("SPACE_ID"))
    p = argparse.ArgumentParser(description="GAN Lab: train, sample and explore small DCGANs in the browser")
    p.add_argument("--host", default=None, help="default: env GRADIO_SERVER_NAME, else 127.0.0.1 (0.0.0.0 on a Space)")
    p.add_argument("--port", type=int, default=None, help="default: env GRADIO_SERVER_PORT, else 7860")
    p.add_argument("--weights", default=str(ROOT / "weights"), help="folder of shipped model folders")
    p.add_argument("--runs", default=str(ROOT / "runs" / "app"), help="where runs started in the app go")
    args = p.parse_args(argv)
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space else "127.0.0.1")
    port = args.port or int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    demo = build_app(args.weights, args.runs, on_space=on_space)
    import atexit

    atexit.register(demo.lab.trainer.shutdown)  # Ctrl-C: the running job writes its checkpoint first
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name=host, server_port=port, max_file_size=max_upload(), **launch_options())


if __name__ == "__main__":
    sys.exit(main())
