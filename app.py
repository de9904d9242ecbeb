"""GAN Lab: the Gradio app. Sample, Interpolate and Train tabs over the `gan` package.

    python app.py                      # http://127.0.0.1:7860 (0.0.0.0 on a Hugging Face Space)
    python app.py --port 8080 --weights weights --runs runs/app

This file holds the UI only: widgets, events, formatting, and the one background training job.
Every tensor operation is a call into `gan/`. Nothing runs at import time; `build_app()` builds
the Blocks, and `main()` parses arguments and launches it.

API endpoints (see the "Use via API" page, or `gradio_client.Client(url).view_api()`):
  sample(model, seed, n, truncation) -> grid image
  interpolate(model, seed_a, seed_b, t, ...) -> image
  walk(model, seed_a, seed_b, frames, ...) -> GIF, MP4
  train(source, files, folder, image_size, ...) -> status text     (one run per server)
  progress() -> (state dict with status, step, losses ..., latest sample grid)
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
from gan import sampling
from gan.config import AUGMENTS, LOSSES, PRECISIONS
from gan.hub import is_repo_id

ROOT = Path(__file__).resolve().parent
DEFAULT_MODEL = "cats64"  # the app opens on this shipped model when it is present
RUN_PREFIX = "trained:"  # model picker values for models trained in this app: trained:<run name>
MAX_SEED = sampling.MAX_SEED
N_DIRECTIONS = 5  # latent sliders in the Interpolate tab
MODEL_CACHE_SIZE = 4
NO_MODEL = (
    "No model yet. Train one in the **Train** tab (a 32-px run on the built-in shapes shows "
    "recognisable shapes in a few minutes on a CPU); it appears in the model picker when it is done."
)
CSS = """
/* small generated images fill their frame, upscaled with hard pixel edges */
.pixelated .image-container > button, .pixelated .image-frame { width: 100%; height: 100%; }
.pixelated .image-frame img { width: 100% !important; height: 100% !important; object-fit: contain !important; }
.pixelated img, .pixelated video { image-rendering: pixelated; }
.gan-status { min-height: 2.6em; }
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
        return [(n, n) for n in self.shipped()] + [(f"{n} (trained here)", RUN_PREFIX + n) for n in self.trained()]

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

    def get(self, key: str | None) -> torch.nn.Module:
        src = self.folder(key)
        ident = (str(src), (Path(src) / "model.safetensors").stat().st_mtime) if isinstance(src, Path) else (src, 0)
        with self.lock:
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
            return f"Hub model `{src}` (downloaded when first used)."
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
    for reason, k in sorted(r.skipped.items(), key=lambda kv: -kv[1]):
        lines.append(f"- skipped {k}: {reason} (e.g. {', '.join(r.examples.get(reason, []))})")
    for what, k in sorted(r.notes.items()):
        lines.append(f"- note {k}: {what}")
    return "\n".join(lines)


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
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}"
        name, i = base, 1
        while (self.runs_dir / name).exists():
            name, i = f"{base}-{i}", i + 1
        return self.runs_dir / name

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
    ) -> Job:
        with self.lock:
            msg = self.busy_message()
            if msg:
                raise Busy(msg)
            job = Job(
                name=run_dir.name, run_dir=run_dir, steps=train_cfg.steps, batch_size=train_cfg.batch_size,
                data_summary=data.report.summary().splitlines()[0], data=data, spec=spec, rows=list(rows or []),
                max_minutes=train_cfg.max_minutes,
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

    def directions(self, G: torch.nn.Module) -> tuple[torch.Tensor, list[str]]:
        """Unit directions for the latent sliders: raw z components for now -> ((k, z_dim), labels)."""
        k = min(N_DIRECTIONS, G.z_dim)
        return torch.eye(G.z_dim)[:k], [f"z[{i}]" for i in range(k)]

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
        dirs, _ = self.directions(G)
        off = torch.tensor([float(o or 0.0) for o in offsets][: len(dirs)])
        if off.abs().sum() > 0:
            z = z + off @ dirs[: len(off)]  # (k,) @ (k, z_dim) -> (z_dim,)
        return z

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
    "image_size": 32, "steps": 500, "batch_size": 32, "lr": 2e-4, "g_width": 32, "d_width": 32, "z_dim": 100,
}  # fmt: skip
"""CPU-friendly starting values of the Train tab: a 32-px run that shows shapes within minutes."""


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

    @friendly
    def train(
        source: str = "synthetic", files: list[str] | None = None, folder: str = "", image_size: int = 32,
        channels: int = 3, steps: int = 500, batch_size: int = 32, lr: float = 2e-4, loss: str = "bce",
        augment: str = "diffaugment", ema: str = "auto", precision: str = "fp32", g_width: int = 32,
        d_width: int = 32, z_dim: int = 100, xflip: bool = True, seed: int = 0, preview_every: int = 0,
        max_minutes: float = 0.0,
    ) -> str:  # fmt: skip
        """Start a training run in the background (one per server); follow it with `progress`."""
        busy = trainer.busy_message()
        if busy:
            raise Busy(busy)
        steps = clamp_int("steps", steps, 1, 1_000_000)
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
            max_minutes=float(max_minutes or 0.0),
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
        steps = clamp_int("steps", steps, 1, 1_000_000)
        done = int(meta.get("step", 0))
        if steps <= done:
            raise AppError(f"Run {run} is already at step {done}; set Steps above that to continue it.")
        dm = meta["data"]
        spec = DataSpec(dm["kind"], dm["image_size"], dm["channels"], tuple(dm["paths"]), dm.get("seed", 0))
        train_cfg = gan.TrainConfig.from_dict(meta["train_config"]).replace(steps=steps)
        data = lab.data(spec)
        rows = []
        log_p = d / "log.jsonl"
        if log_p.is_file():  # the loss history so far, so the plot continues
            for line in log_p.read_text().splitlines():
                ev = json.loads(line)
                if ev.get("event") == "StepLog" and ev["step"] <= done:
                    rows.append({k: ev[k] for k in ("step", "loss_d", "loss_g", "d_real", "d_fake")})
        job = trainer.start(None, train_cfg, data, spec, d, resume=d, rows=rows)
        return f"Resuming `{job.name}` from step {done} up to {steps}."

    def stop() -> str:
        """Stop the running training job: it writes a checkpoint and its model folder, then ends."""
        return trainer.stop()

    def progress(since: int = 0) -> tuple[dict[str, Any], np.ndarray | None]:
        """The training job's state (status, step, steps, img/s, ETA, model, losses logged after step `since`)
        and its latest sample grid."""
        job = trainer.job
        if job is None:
            return {"status": "idle", "step": 0, "steps": 0, "losses": [], "message": "no training run yet"}, None
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
        )

    def direction_sliders(key: str | None):
        try:
            G = models.get(key) if key else None
        except Exception:
            G = None
        labels = lab.directions(G)[1] if G is not None else [f"z[{i}]" for i in range(N_DIRECTIONS)]
        return [
            gr.Slider(value=0.0, label=labels[i] if i < len(labels) else "", visible=i < len(labels))
            for i in range(N_DIRECTIONS)
        ]

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
            "Click an image below to carry its seed to Interpolate."
            if n > 1
            else f"Seed {seed}."
        )
        return items, info, gr.DownloadButton(value=str(png), visible=True), [seed + i for i in range(n)]

    def pick_seed(seeds: list[int], evt: gr.SelectData):
        i = evt.index if isinstance(evt.index, int) else None
        if i is None or not 0 <= i < len(seeds or []):
            return gr.skip(), gr.skip(), gr.skip()
        s = seeds[i]
        return (
            s,
            gr.Button(interactive=True, value=f"Seed {s} → Interpolate A"),
            gr.Button(interactive=True, value=f"Seed {s} → Interpolate B"),
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

    n_outputs_train = 14

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
            grid = None
            data_md, examples = gr.skip(), gr.skip()
            model_zip, use_btn = gr.DownloadButton(visible=False), gr.Button(visible=False)
        else:
            snap = job.snapshot(max_rows=600)
            alive = job.alive
            status = status_line(job, snap)
            df_loss, df_prob = plot_frames(snap["losses"])
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
                        gr.Markdown("**Latent directions**: move the current latent (raw z components for now).")
                        dirs = [gr.Slider(-3.0, 3.0, value=0.0, step=0.1, label=f"z[{i}]") for i in range(N_DIRECTIONS)]
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
                                list(PRECISIONS), value="fp32", label="Precision", info="bf16 pays off on GPUs"
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

        model_outs = [model_info, model_zip_btn, notice_s, notice_i]
        sample_in = [model_dd, seed, n, truncation]
        gallery_outs = [gallery, seeds_md, png_btn, seeds_state]
        interp_in = [model_dd, seed_a, seed_b, t, mode, truncation_i, *dirs]
        train_outs = [
            train_status, loss_plot, prob_plot, live_grid, start_btn, stop_btn, resume_btn, resume_run,
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
        gallery.select(pick_seed, seeds_state, [picked, to_a, to_b], api_visibility="private")
        to_a.click(lambda s: (s, go_to("interpolate")), picked, [seed_a, tabs], api_visibility="private")
        to_b.click(lambda s: (s, go_to("interpolate")), picked, [seed_b, tabs], api_visibility="private")
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

        # model picker
        model_dd.change(model_widgets, model_dd, model_outs, api_visibility="private").then(
            direction_sliders, model_dd, dirs, api_visibility="private"
        ).then(render_sample_quietly, sample_in, grid_img, api_visibility="private").then(
            seeds_gallery, sample_in, gallery_outs, api_visibility="private"
        ).then(render_interp_quietly, interp_in, interp_img, api_visibility="private", show_progress="hidden")
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
        ).then(render_interp_quietly, interp_in, interp_img, api_visibility="private")

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


def status_line(job: Job, snap: dict[str, Any]) -> str:
    step, steps = snap["step"], snap["steps"]
    pct = f"{100 * step / max(steps, 1):.0f}%"
    last = snap["losses"][-1] if snap["losses"] else None
    losses = f" · loss D {last['loss_d']:.3f} · G {last['loss_g']:.3f}" if last else ""
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
    demo.launch(server_name=host, server_port=port, max_file_size="1gb", **launch_options())


if __name__ == "__main__":
    sys.exit(main())
