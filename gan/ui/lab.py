"""The state every session of one app shares: settings, models, the training job, the last data
set, and per-model caches of principal directions. The endpoint functions take a Lab."""

from __future__ import annotations

import math
import os
import shutil
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gan
import gan.hub
from gan import latent, sampling
from gan.device import available_cores
from gan.fileio import prune_cache

from .common import AppError, Scratch, row_image
from .jobs import JobRunner
from .models import Models
from .ownership import current_session
from .run_data import DataSpec, Prepared, prepare_data
from .settings import Settings

N_DIRECTIONS = 5  # principal-direction sliders in the Interpolate tab (the first of the Explore tab's)
N_EXPLORE = 8  # principal-direction sliders in the Explore tab
STRIP_SEED = 0  # the seed each direction's strip is shown on
STRIP_AMOUNTS = (-4.0, -2.0, 0.0, 2.0, 4.0)  # in σ: the Explore sliders' range


def _stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Lab:
    """Models, the job runner, scratch files and caches of one app process."""

    def __init__(self, settings: Settings, warn: Callable[[str], None] = _stderr_warning):
        self.settings = settings
        self.warn = warn  # shows a warning to the user (gr.Warning in the app)
        self.scratch = Scratch()
        self.models = Models(
            settings.weights_dir,
            settings.runs_dir,
            self.scratch,
            token=settings.hub_token,
            max_bytes=settings.max_model_bytes,
            hub_cache_bytes=settings.hub_cache_bytes,
        )
        self.runner = JobRunner(
            settings.runs_dir, settings.keep_runs, settings.train_threads, mem_mb=settings.worker_mem_mb or 0,
            max_bytes=(settings.max_runs_mb or 0) * 1_000_000, per_visitor=settings.runs_per_visitor or 0,
            max_queue=settings.max_queue or 0,
        )  # fmt: skip
        self.runner.max_minutes, self.runner.max_steps = settings.max_minutes or 0.0, settings.max_steps
        if settings.on_space:  # a visitor's models are theirs until they push them to the Hub
            self.models.visible = lambda run: self.runner.can_see(run, current_session())
        self.data_dir = settings.runs_dir / ".data-cache"  # decoded data sets (files; the server holds none)
        self.data_files: dict[tuple, Prepared] = {}  # (session on a Space, DataSpec.key()) -> its file
        self.data_lock = threading.Lock()  # one decode at a time
        shutil.rmtree(self.data_dir, ignore_errors=True)  # an earlier process's: nothing refers to them now
        self.last_sample: tuple = (None, None, None)  # (G, args, images): the grid and its gallery share a render
        # per loaded generator (dropped with it): its principal directions and their strip images
        self.dirs_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.strip_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.dirs_lock = threading.Lock()
        self.max_threads = min(torch.get_num_threads(), available_cores())  # for renders on an idle machine
        self.render_gate = threading.RLock()  # while a run trains: one render at a time ...
        self.render_free_at = 0.0  # ... starting no earlier than this (time.monotonic), see threads()

    # ---- renders ------------------------------------------------------------------------

    @contextmanager
    def threads(self, batch: int) -> Iterator[None]:
        """CPU threads for one render, in this request's thread only (torch's setting is per thread).

        One image, or anything while a training run is going, uses one thread: a render must never
        slow the run down, and on a busy 2-core machine a second thread costs more in contention
        than it saves. Large batches on an idle machine use the process's threads (every core by default).

        While a run trains, renders also go one at a time and pause after each in proportion to its
        length, so that they take at most `settings.render_share` of one core: a crowd of visitors queues for
        its turns instead of starving the run (single images take ~10-20 ms, so the turns are short)."""
        busy = bool(self.runner.busy_message())
        n = 1 if batch <= 2 or busy else self.max_threads
        if not busy:
            with _torch_threads(n):
                yield
            return
        with self.render_gate:
            wait = self.render_free_at - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 1.0))
            t0 = time.monotonic()
            try:
                with _torch_threads(n):
                    yield
            finally:
                t1 = time.monotonic()
                self.render_free_at = t1 + (t1 - t0) * (1 / self.settings.render_share - 1)

    def sample_images(self, G: torch.nn.Module, seed: int, n: int, truncation: float) -> torch.Tensor:
        """Seeds seed..seed+n-1 as uint8 (n, C, H, W); the last render is reused by the gallery."""
        args = (seed, n, float(truncation))
        last_G, last_args, last_imgs = self.last_sample
        if last_G is G and last_args == args:
            return last_imgs
        with self.threads(n):
            imgs = sampling.sample(G, range(seed, seed + n), float(truncation))
        self.last_sample = (G, args, imgs)
        return imgs

    def generate(self, G: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
        with self.threads(len(z)):
            return sampling.generate(G, z)

    # ---- latent directions ----------------------------------------------------------------

    def directions(self, G: torch.nn.Module) -> latent.Directions:
        """G's first N_EXPLORE principal directions: read from the app's cache folder (keyed by the
        weights' hash; written there on first use), computed once per loaded model (about a second)."""
        with self.dirs_lock:
            dirs = self.dirs_cache.get(G)
            if dirs is None:
                with self.threads(64):  # cached under the app's cache folder, never in the model's
                    dirs = latent.load_or_compute_directions(G, k=min(N_EXPLORE, G.z_dim))
                self.dirs_cache[G] = dirs
            return dirs

    def strips(self, G: torch.nn.Module, seed: int = STRIP_SEED, truncation: float = 1.0) -> list[np.ndarray]:
        """One image per direction: `seed` moved by each of STRIP_AMOUNTS σ (the last few seeds kept per model)."""
        key = (int(seed), float(truncation))
        with self.dirs_lock:
            got = self.strip_cache.get(G, {}).get(key)
        if got is None:
            dirs = self.directions(G)
            with self.threads(1):
                imgs = latent.direction_strips(G, key[0], dirs, STRIP_AMOUNTS, truncation=key[1])  # (k, T, C, H, W)
            got = [row_image(strip) for strip in imgs]
            with self.dirs_lock:
                cache = self.strip_cache.setdefault(G, {})
                cache[key] = got
                while len(cache) > 8:  # dicts keep insertion order: drop the oldest
                    cache.pop(next(iter(cache)))
        return got

    def move(
        self, G: torch.nn.Module, z: torch.Tensor, amounts: Sequence[Any], limit: float = 10.0, names: str = "d"
    ) -> torch.Tensor:
        """z moved along G's principal directions by `amounts` in σ (missing ones count 0), each within
        ±limit (the sliders' range; `names`: the parameters' letter, for the message)."""
        a = [float(x or 0.0) for x in amounts]
        for i, x in enumerate(a):
            if not (math.isfinite(x) and abs(x) <= limit):
                raise AppError(f"{names}{i + 1}={x:g} is out of range: direction amounts are in σ, within ±{limit:g}")
        if not any(a):  # nothing to move: no need for the directions
            return z
        dirs = self.directions(G)
        a = a[: len(dirs)]
        return latent.edit(z, dirs, a + [0.0] * (len(dirs) - len(a)))

    # ---- data ---------------------------------------------------------------------------

    def data(self, spec: DataSpec, session: str | None = None) -> Prepared:
        """The images of a data source, decoded into the data cache (one decode at a time; a second
        visitor is told they wait). Load, then Start, decode once. On a Space each visitor's
        decoded data is theirs alone, and dropped when their session ends (`release`)."""
        owner = session if self.settings.on_space else None
        key = (owner, spec.key())
        if not self.data_lock.acquire(blocking=False):
            self.warn("Waiting: another visitor's data is being read; yours is next.")
            if not self.data_lock.acquire(timeout=600):
                raise AppError("The server is still busy reading another visitor's data; try again in a minute.")
        try:
            got = self.data_files.get(key)
            if got is not None and got.path.is_file():
                os.utime(got.path)  # recently used: pruned last
                return got
            self.data_dir.mkdir(parents=True, exist_ok=True)
            out = self.data_dir / f"{uuid.uuid4().hex[:16]}.safetensors"
            s = self.settings
            got = prepare_data(
                spec, out, token=s.hub_token, limits=s.data_limits, isolate=bool(s.isolate_data), mem_mb=s.worker_mem_mb
            )  # a Space reads hf:// anonymously
            self.data_files[key] = got
            waiting = {w.start["data"].path for w in list(self.runner.queue) if hasattr(w.start["data"], "path")}
            self.prune_data(keep={got.path} | waiting)  # never the data of a visitor waiting in line
            self.prune_caches(keep_dataset=spec.paths[0] if spec.kind == "hub" else None)
            return got
        finally:
            self.data_lock.release()

    def prune_data(self, keep: set[Path] = frozenset()) -> None:
        """Drop decoded data sets, least recently used first, until they fit GAN_DATA_CACHE_MB."""
        cap = (self.settings.data_cache_mb or 0) * 1_000_000
        files = [p for p in self.data_dir.glob("*.safetensors")] if self.data_dir.is_dir() else []
        total = sum(p.stat().st_size for p in files)
        for p in sorted(files, key=lambda p: p.stat().st_mtime):
            if not cap or total <= cap:
                break
            if p not in keep:
                total -= p.stat().st_size
                self._forget(p)

    def prune_caches(self, keep_dataset: str | None = None) -> None:
        """The Hub dataset cache within GAN_DATASET_CACHE_MB and the app's cache folder (ONNX exports,
        directions) within GAN_CACHE_MB, least recently used first."""
        s = self.settings
        if s.dataset_cache_mb:
            keep = [keep_dataset.removeprefix(gan.data.HF_DATASET_PREFIX).split("@")[0]] if keep_dataset else []
            gan.hub.prune_dataset_cache(s.dataset_cache_mb * 1_000_000, keep=keep)
        if s.cache_mb:
            prune_cache(s.cache_mb * 1_000_000)

    def _forget(self, path: Path) -> None:
        for k, v in list(self.data_files.items()):
            if v.path == path:
                del self.data_files[k]
        path.unlink(missing_ok=True)

    def release(self, session: str | None) -> int:
        """A visitor left (Gradio's unload): their decoded data goes. Returns the files removed."""
        gone = [v.path for (owner, _), v in list(self.data_files.items()) if owner is not None and owner == session]
        for p in gone:
            self._forget(p)
        return len(gone)
