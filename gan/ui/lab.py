"""The state every session of one app shares: settings, models, the training job, the last data
set, and per-model caches of principal directions. The endpoint functions take a Lab."""

from __future__ import annotations

import math
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

import gan
from gan import latent, sampling
from gan.device import available_cores

from .common import AppError, Scratch, row_image
from .jobs import JobRunner
from .models import Models
from .run_data import DataSpec, load_data
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
        self.runner = JobRunner(settings.runs_dir, settings.keep_runs, settings.train_threads)
        self.data_cache: tuple[tuple, gan.ImageData] | None = None
        self.data_lock = threading.Lock()
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

    def move(self, G: torch.nn.Module, z: torch.Tensor, amounts: Sequence[Any]) -> torch.Tensor:
        """z moved along G's principal directions by `amounts` in σ (missing ones count 0)."""
        a = [float(x or 0.0) for x in amounts]
        if not all(math.isfinite(x) and abs(x) <= 10 for x in a):
            raise AppError(f"direction amounts are in σ and must be within ±10, got {a}")
        if not any(a):  # nothing to move: no need for the directions
            return z
        dirs = self.directions(G)
        a = a[: len(dirs)]
        return latent.edit(z, dirs, a + [0.0] * (len(dirs) - len(a)))

    # ---- data ---------------------------------------------------------------------------

    def data(self, spec: DataSpec) -> gan.ImageData:
        """The images of a data source (the last one is kept: Load, then Start, reads them once)."""
        key = spec.key()
        with self.data_lock:
            if self.data_cache is not None and self.data_cache[0] == key:
                return self.data_cache[1]
            data = load_data(spec, token=self.settings.hub_token)  # a Space reads hf:// anonymously
            self.data_cache = (key, data)
            return data
