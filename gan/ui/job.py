"""One training run as the UI shows it (`Job`, updated from gan.fit's events), its history for a
resumed run's plots, a visitor waiting in line for the trainer (`Waiting`), and small helpers of the
runner (`gan.ui.jobs`) for run folders."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import gan
from gan.runlog import LOG_NAME, read_log

from .common import fmt_duration
from .models import RUN_PREFIX
from .ownership import Owner
from .run_data import DataSpec, Prepared

LOSS_FIELDS = ("step", "loss_d", "loss_g", "d_real", "d_fake")
META_NAME = "app_run.json"  # what Resume needs besides the checkpoint: data source, configs, status


@dataclass
class Job:
    """One training run's state as the UI shows it; updated by the runner's thread under `lock`."""

    name: str
    run_dir: Path
    steps: int
    batch_size: int
    data_summary: str
    data: Prepared | None
    spec: DataSpec | None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    status: str = "starting"  # starting | running | stopping | finished | stopped | diverged | failed
    outcome: str = ""  # Done's reason, the status once the runner has written the run's folder
    message: str = ""
    precision: str = ""  # e.g. "fp32: this CPU (AVX2) has no native bf16 kernels", from Started
    start_step: int = 0
    step: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)  # {"step": s, "swd": v} every metric_every
    metric_every: int = 0
    grid: np.ndarray | None = None
    grid_step: int = -1
    img_per_s: float = 0.0
    lr_factor: float = 1.0  # of the last logged update: below 1 in the cool-down
    threads: tuple[int, int] = (0, 0)  # torch threads (now, at the start): fewer while visitors keep a core busy
    max_minutes: float = 0.0  # the run's time budget (0 = none)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    model_key: str | None = None
    owner: Owner | None = None  # who may stop it (gan.ui.ownership); None: anyone
    shared: bool = False  # its starter lets others watch it live (its samples, curves and data report)
    form: dict[str, Any] = field(default_factory=dict)  # the Train tab's values that started it (a reload shows them)
    version: int = 0  # bumped on every change: the page redraws only what changed
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def alive(self) -> bool:
        """Its thread runs and it has not ended (the thread's last act is to set `finished`)."""
        return self.thread is not None and self.thread.is_alive() and self.finished is None

    def eta_s(self) -> float | None:
        """Seconds until the run ends: its steps left at its mean speed since it started (the speed of the
        last few steps jumps with the machine's load; the line's estimates are built on this)."""
        if self.img_per_s <= 0 or self.status not in ("running", "stopping"):
            return None
        done, took = self.step - self.start_step, time.time() - self.started
        per_step = took / done if done > 0 and took > 0 else self.batch_size / self.img_per_s
        eta = (self.steps - self.step) * per_step
        if self.max_minutes:
            eta = min(eta, max(0.0, self.started + 60 * self.max_minutes - time.time()))
        return eta

    def limits(self) -> str:
        """When the run ends by itself, for visitors who may not stop it."""
        parts = [f"it ends at step {self.steps:,}"]
        if self.max_minutes:
            end = self.started + 60 * self.max_minutes
            parts.append(f"after {self.max_minutes:g} minutes (in {fmt_duration(max(0.0, end - time.time()))})")
        text = " or ".join(parts)
        return text[0].upper() + text[1:] + "."

    def snapshot(self, since: int = 0, max_rows: int | None = None) -> dict[str, Any]:
        """The job's state as a JSON-able dict: losses after step `since`, thinned to max_rows if given."""
        with self.lock:
            rows = self.rows if not since else [r for r in self.rows if r["step"] > since]
            if max_rows and len(rows) > max_rows:
                keep = np.linspace(0, len(rows) - 1, max_rows).round().astype(int)
                rows = [rows[i] for i in keep]
            eta = self.eta_s()
            return {
                "status": self.status,
                "run": self.name,
                "step": self.step,
                "steps": self.steps,
                "img_per_s": round(self.img_per_s, 1),
                "lr_factor": self.lr_factor,
                "threads": list(self.threads),
                "eta_s": None if eta is None else round(eta, 1),
                "elapsed_s": round((self.finished or time.time()) - self.started, 1),
                "message": self.message,
                "precision": self.precision,
                "data": self.data_summary,
                "model": self.model_key,
                "losses": [dict(r) for r in rows],
                "metric_every": self.metric_every,
                "metrics": [dict(m) for m in self.metrics if m["step"] > since],
                "grid_step": self.grid_step if self.grid is not None else None,
            }

    def apply(self, ev: Any) -> None:
        """Fold one event of gan.fit into the state (the caller holds `lock`)."""
        if isinstance(ev, gan.Started):
            self.start_step = self.step = ev.step
            self.status = "stopping" if self.stop.is_set() else "running"
            self.precision = ev.precision_reason or ev.precision
            self.threads = (ev.threads, ev.threads) if ev.device == "cpu" else (0, 0)
            where = f"resumed from step {ev.step}" if ev.resumed_from else "started"
            self.message = f"{where}: {ev.n_images:,} images, batch {ev.batch_size}, {ev.device}, {ev.precision}"
        elif isinstance(ev, gan.StepLog):
            self.step, self.img_per_s, self.lr_factor = ev.step, ev.img_per_s, ev.lr_factor
            if ev.threads:  # the count at the start stays Started's
                self.threads = (ev.threads, self.threads[1])
            self.rows.append({k: getattr(ev, k) for k in LOSS_FIELDS})
        elif isinstance(ev, gan.Samples):
            self.grid, self.grid_step = ev.grid, ev.step
        elif isinstance(ev, gan.Metric):
            self.metrics.append({"step": ev.step, ev.name: ev.value})
        elif isinstance(ev, gan.Checkpoint):
            self.step = ev.step
        elif isinstance(ev, gan.Rollback):
            self.message = ev.message
        elif isinstance(ev, gan.Done):  # the status changes when the runner has finished (JobRunner._run)
            self.step, self.outcome, self.message = ev.step, ev.reason, ev.message
            if ev.model_dir:
                self.model_key = RUN_PREFIX + self.name
        self.version += 1


def history(run_dir: Path, upto: int) -> tuple[list[dict], list[dict]]:
    """A run's loss rows and metric points up to step `upto`, from its log (so Resume's plots continue)."""
    rows, metrics = [], []
    for ev in read_log(run_dir / LOG_NAME, events=("StepLog", "Metric")):
        if ev["step"] > upto:
            continue
        if ev["event"] == "StepLog":
            rows.append({k: ev[k] for k in LOSS_FIELDS})
        else:
            metrics.append({"step": ev["step"], ev["name"]: ev["value"]})
    return rows, metrics


@dataclass
class Waiting:
    """A visitor in line for the trainer: what `JobRunner.start` will be called with."""

    session: str | None
    label: str
    minutes: float  # the run's time limit (0: none), for the others' estimates
    start: dict[str, Any]  # JobRunner.start's arguments, run folder aside
    since: float = field(default_factory=time.time)


def _dir_bytes(d: Path) -> int:
    total = 0
    for p in d.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def visitor_digest(session: str | None) -> str | None:
    return hashlib.sha256(session.encode()).hexdigest()[:16] if session else None


def last_run_line(runs_dir: Path, visible) -> str | None:
    """The newest run folder's outcome among the runs `visible(name)` allows, for the status line after a
    restart (no job in memory)."""
    if not runs_dir.is_dir():
        return None
    for d in sorted(runs_dir.iterdir(), key=lambda p: p.name, reverse=True):
        try:
            meta = json.loads((d / META_NAME).read_text())
            steps = meta["train_config"]["steps"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not visible(d.name):
            continue
        step, status = meta.get("step", 0), meta.get("status", "?")
        if status in ("starting", "running", "stopping"):  # the app ended while it ran
            status = "stopped"
        resumable = (d / "checkpoint.safetensors").is_file()
        tail = " **Resume** continues it." if resumable and step < steps else ""
        return f"Last run (before this app started): `{d.name}`, {status} at step {step:,} of {steps:,}.{tail}"
    return None
