"""The training job runner: one `gan.fit` run at a time per app, in a process of its own, and a
short line of visitors waiting for it.

What happens when you press Start: the Train tab (`gan.ui.tab_train`) calls the `train` endpoint
(`gan.ui.train_endpoints.train`), which checks the options and their cost, builds the configs from
the CPU recipe and decodes the data into a file (`gan.ui.run_data`); then `JobRunner.start` below
makes the run folder and starts `JobRunner._run` in a thread. That thread starts the training child
(`gan.ui.train_process`: `python -m gan.worker`, which iterates `gan.fit(...)` and sends each event
back through a pipe), writes each event to the run's log.jsonl and folds it into the `Job`
(`gan.ui.job`) that the Train tab polls. When the run ends, the first visitor in line starts theirs.

Run folders are pruned by count, bytes and visitor before a run starts (`prune_runs`); Resume
continues a run's time limit (`minutes_left`). `isolate=False` runs `gan.fit` in the thread itself
(tests that replace `gan.fit`).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import gan
from gan.datafile import load_saved
from gan.device import set_threads
from gan.fileio import atomic_write_json
from gan.runlog import LOG_NAME, RunLog
from gan.train import CKPT_NAME, checkpoint_info

from .common import AppError, Busy
from .job import META_NAME, Job, Waiting, _dir_bytes, last_run_line, visitor_digest
from .ownership import Owner
from .run_data import DataSpec, Prepared, keep_in_run
from .train_process import TrainProcessError, isolated_events

MIN_RESUME_MINUTES = 0.1  # a run with less of its time limit left is not resumed (it would stop at once)


class JobRunner:
    """Starts, stops and reports the one training job of this process."""

    def __init__(
        self, runs_dir: Path, keep_runs: int = 20, threads: int = 0, isolate: bool = True, *, mem_mb: int = 0,
        max_bytes: int = 0, per_visitor: int = 0, max_queue: int = 0,
    ):  # fmt: skip
        self.runs_dir, self.keep_runs = Path(runs_dir), keep_runs
        self.mem_mb = mem_mb  # RLIMIT_DATA of the training child above its imports (0: none)
        self.max_bytes = max_bytes  # run folders' disk in all (GAN_MAX_RUNS_MB; 0: no limit)
        self.per_visitor = per_visitor  # run folders one visitor keeps (GAN_RUNS_PER_VISITOR; 0: no limit)
        self.max_queue = max_queue  # visitors waiting for the trainer (GAN_MAX_QUEUE; 0: Busy)
        self.queue: list[Waiting] = []
        self.closing = False  # the server is shutting down: no run starts any more
        self.notices: dict[str | None, str] = {}  # session -> why their run in line did not start
        self.max_minutes = 0.0  # the server's time limit of a run (GAN_MAX_MINUTES; 0: none), Resume included
        self.max_steps = 10**9  # the most steps a run may ask for (GAN_MAX_STEPS)
        self.threads = threads  # torch threads of the training (0: every core)
        self.isolate = isolate  # train in a process of its own (else in the runner's thread)
        self.job: Job | None = None
        self.lock = threading.Lock()
        self.owners: dict[str, Owner] = {}  # run name -> who started it (this process's runs)
        self.adopted: dict[str, set[str]] = {}  # run name -> later sessions of its starter (a reload, by the key)
        self.pending_keys: dict[str | None, str] = {}  # session -> the run key its page has yet to claim

    def claim_key(self, session: str | None) -> str | None:
        """The run key for the page of `session` that just started (or resumed) a run, handed out once."""
        with self.lock:
            return self.pending_keys.pop(session, None)

    def owner_of(self, run: str) -> Owner | None:
        """Who may resume a run: its starter in this process, else the key recorded in its folder."""
        with self.lock:
            if run in self.owners:
                return self.owners[run]
        try:
            digest = json.loads((self.runs_dir / run / META_NAME).read_text()).get("owner_key_sha256")
        except (OSError, ValueError, AttributeError):
            return None
        return Owner(None, digest) if isinstance(digest, str) and digest else None

    def may_control(self, run: str, session: str | None, key: str | None, shared: bool) -> bool:
        owner = self.owner_of(run)
        return not shared or owner is None or owner.matches(session, key) or session in self.adopted.get(run, ())

    def adopt(self, session: str | None, key: str | None) -> list[str]:
        """A page of a run's starter came back (a reload: a new session, the run key in its
        localStorage): that session may see and steer the run and its model like the first one."""
        if not session or not key:
            return []
        names = [d.name for d in self.runs_dir.iterdir() if d.is_dir()] if self.runs_dir.is_dir() else []
        got = []
        for run in names:
            owner = self.owner_of(run)
            if owner is not None and owner.matches(None, key):
                with self.lock:
                    self.adopted.setdefault(run, set()).add(session)
                got.append(run)
        return got

    def can_see(self, run: str, session: str | None) -> bool:
        """Whether a visitor of a shared server may see a run's data, samples and model: its starter
        (or a session adopted by the run key) only; the live view also when the starter shares it."""
        if self.may_control(run, session, None, shared=True):
            return True
        job = self.job
        return job is not None and job.name == run and job.alive and job.shared

    def busy_message(self) -> str | None:
        job = self.job
        if job is None or not job.alive:
            return None
        line = f" {len(self.queue)} waiting in line." if self.queue else ""
        return (
            f"Busy: a training run (`{job.name}`, step {job.step} of {job.steps}) is already going on this "
            f"server, and it trains one run at a time.{line} {job.limits()} Sample and Interpolate keep working "
            "meanwhile."
        )

    def check_idle(self) -> None:
        msg = self.busy_message()
        if msg:
            raise Busy(msg)

    # ---- the line for the trainer ----------------------------------------------------------

    def wait_s(self, ahead: int) -> float | None:
        """Seconds until the trainer is free for the visitor after the first `ahead` in line: the
        running job's estimate, plus the time limit of each run ahead (None: no estimate)."""
        job = self.job
        now = job.eta_s() if job is not None and job.alive else 0.0
        if now is None:
            now = 60 * job.max_minutes if job.max_minutes else None
        rest = [60 * w.minutes if w.minutes else None for w in self.queue[:ahead]]
        if now is None or None in rest:
            return None
        return now + sum(rest)

    def enqueue(self, waiting: Waiting) -> tuple[int, float | None]:
        """Put a visitor in line (a second Start of theirs replaces their place's run); their place
        (1 = next) and the estimated wait in seconds. Busy when the line is full or there is none."""
        with self.lock:
            if not (self.job is not None and self.job.alive):
                raise AppError("The trainer is free: start the run instead.")
            mine = [i for i, w in enumerate(self.queue) if waiting.session and w.session == waiting.session]
            if mine:
                self.queue[mine[0]] = waiting
                place = mine[0] + 1
            elif len(self.queue) >= self.max_queue:
                msg = self.busy_message() or "Busy."
                raise Busy(msg + (" The line is full; try again later." if self.max_queue else ""))
            else:
                self.queue.append(waiting)
                place = len(self.queue)
            return place, self.wait_s(place - 1)

    def check_room(self, session: str | None) -> None:
        """Busy unless the trainer is free, or the line has room (or a place of this visitor's already)."""
        msg = self.busy_message()
        if not msg:
            return
        if not self.max_queue:
            raise Busy(msg)
        with self.lock:
            mine = any(session and w.session == session for w in self.queue)
            if not mine and len(self.queue) >= self.max_queue:
                raise Busy(msg + " The line is full; try again later.")

    def place(self, session: str | None) -> tuple[int, float | None] | None:
        """This visitor's place in line and estimated wait, or None."""
        with self.lock:
            for i, w in enumerate(self.queue):
                if session and w.session == session:
                    return i + 1, self.wait_s(i)
        return None

    def leave(self, session: str | None) -> bool:
        """The visitor left (or cancelled): their place goes to the next."""
        with self.lock:
            n = len(self.queue)
            self.queue = [w for w in self.queue if not (session and w.session == session)]
            return len(self.queue) < n

    def _start_next(self) -> None:
        """The trainer is free: the first in line starts (one that fails is told nothing more: its
        run folder says why), else the next."""
        while True:
            with self.lock:
                if not self.queue:
                    return
                w = self.queue.pop(0)
            try:
                self.start(run_dir=self.new_run_dir(w.label, w.session), **w.start)
                return
            except Exception as e:  # noqa: BLE001 - the next in line must still get their turn
                traceback.print_exc()
                self.notices[w.session] = (
                    f"Your run in line could not start ({type(e).__name__}: {e}); press Start again."
                )

    # ---- run folders ------------------------------------------------------------------------

    def new_run_dir(self, label: str, session: str | None = None) -> Path:
        self.prune_runs(self.keep_runs, session)
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{label}"
        name, i = base, 1
        while (self.runs_dir / name).exists():
            name, i = f"{base}-{i}", i + 1
        return self.runs_dir / name

    def prune_runs(self, keep: int, session: str | None = None) -> list[str]:
        """Delete app run folders, oldest first and never the running one, until at most `keep`
        remain (GAN_KEEP_RUNS) with room for one more, their disk is within GAN_MAX_RUNS_MB, and
        the visitor of `session` keeps at most GAN_RUNS_PER_VISITOR - 1 (room for the one they start)."""
        if not self.runs_dir.is_dir():
            return []
        runs = [d for d in self.runs_dir.iterdir() if d.is_dir() and (d / META_NAME).is_file()]
        live = self.job.run_dir if self.job is not None and self.job.alive else None
        runs = sorted((d for d in runs if d != live), key=lambda d: d.stat().st_mtime)
        gone: list[Path] = []
        if keep > 0:
            gone += runs[: max(0, len(runs) - keep + 1)]  # room for the run about to start
        who = visitor_digest(session)
        if self.per_visitor and who:
            theirs = [d for d in runs if d not in gone and self._visitor(d) == who]
            gone += theirs[: max(0, len(theirs) - self.per_visitor + 1)]
        if self.max_bytes:
            sizes = {d: _dir_bytes(d) for d in runs if d not in gone}
            total = sum(sizes.values()) + (_dir_bytes(live) if live else 0)
            for d, size in sizes.items():  # oldest first
                if total <= self.max_bytes:
                    break
                gone.append(d)
                total -= size
        for d in gone:
            shutil.rmtree(d, ignore_errors=True)
        return [d.name for d in gone]

    def _visitor(self, d: Path) -> str | None:
        try:
            return json.loads((d / META_NAME).read_text()).get("visitor")
        except (OSError, ValueError, AttributeError):
            return None

    def start(
        self,
        model_cfg: gan.ModelConfig | None,
        train_cfg: gan.TrainConfig,
        data: Prepared | gan.ImageData,
        spec: DataSpec,
        run_dir: Path,
        *,
        resume: Path | None = None,
        rows: list[dict] | None = None,
        metrics: list[dict] | None = None,
        session: str | None = None,
        owner: Owner | None = None,
        form: dict[str, Any] | None = None,
    ) -> Job:
        """Start `gan.fit` in a thread (Busy when a run is going); rows/metrics: the plots so far.

        The run belongs to `owner` (a resumed run keeps its key), else to a new Owner of `session`,
        whose page claims the run key once (`claim_key`)."""
        with self.lock:
            self.check_idle()
            if owner is None:
                owner, key = Owner.start(session)
                self.pending_keys = {session: key}  # only the newest run's key waits to be claimed
            else:
                self.pending_keys = {}
            job = Job(
                name=run_dir.name,
                run_dir=run_dir,
                steps=train_cfg.steps,
                batch_size=train_cfg.batch_size,
                data_summary=data.report.summary().splitlines()[0],
                data=data,
                spec=spec,
                rows=list(rows or []),
                metrics=list(metrics or []),
                metric_every=train_cfg.metric_every,
                max_minutes=train_cfg.max_minutes,
                owner=owner,
                form=dict(form or {}),
            )
            self.owners[job.name] = owner
            run_dir.mkdir(parents=True, exist_ok=True)
            path = keep_in_run(data, run_dir)  # the child reads it; Resume too (uploads vanish)
            job.data = Prepared.open(path)
            if spec.kind == "upload":
                job.spec = DataSpec("saved", spec.image_size, spec.channels, (str(path),))
            self._write_meta(job, train_cfg, model_cfg)
            job.thread = threading.Thread(
                target=self._run, args=(job, model_cfg, train_cfg, resume), name="gan-lab-train", daemon=True
            )
            self.job = job
            job.thread.start()
            return job

    def _write_meta(
        self, job: Job, train_cfg: gan.TrainConfig, model_cfg: gan.ModelConfig | None = None, status: str | None = None
    ) -> None:
        p = job.run_dir / META_NAME
        meta = json.loads(p.read_text()) if p.is_file() else {}
        meta.update(
            name=job.name,
            data=asdict(job.spec),
            train_config=train_cfg.to_dict(),
            step=job.step,
            status=status or job.status,
        )
        meta["data"]["paths"] = list(job.spec.paths)
        if job.owner is not None and job.owner.key_digest:
            meta["owner_key_sha256"] = job.owner.key_digest  # a hash: Resume after a restart needs the key
        if job.owner is not None and job.owner.session:
            meta.setdefault("visitor", visitor_digest(job.owner.session))  # GAN_RUNS_PER_VISITOR counts these
        if job.form:
            meta["form"] = job.form
        if model_cfg is not None:
            meta["model_config"] = model_cfg.to_dict()
        atomic_write_json(p, meta)

    def _run(self, job: Job, model_cfg, train_cfg: gan.TrainConfig, resume: Path | None) -> None:
        """The runner's thread: the training's events into the log and the Job, whatever happens."""
        try:
            with RunLog(job.run_dir / LOG_NAME) as log:  # the same log the command line writes
                if self.isolate:
                    events = isolated_events(
                        job.data.path, model_cfg, train_cfg, job.run_dir, resume, job.stop, self.threads, self.mem_mb
                    )
                else:
                    events = self._events_here(job, model_cfg, train_cfg, resume)
                for ev in events:
                    log.write(ev)
                    with job.lock:
                        job.apply(ev)
                    if isinstance(ev, gan.Checkpoint):
                        self._write_meta(job, train_cfg)
        except Exception as e:  # noqa: BLE001 - any failure ends the run; the status line says why
            if not isinstance(e, TrainProcessError):  # (its process printed its own trace)
                traceback.print_exc()  # the trace goes to the server log
            what = str(e) if isinstance(e, TrainProcessError) else f"{type(e).__name__}: {e}"
            with job.lock:
                job.status, job.message = "failed", f"Training failed: {what}"
                job.version += 1
        finally:  # the run folder first, then the job ends: a new run never meets a half-written folder
            with job.lock:
                live = job.status in ("starting", "running", "stopping")
                final = (job.outcome or "stopped") if live else job.status  # no Done: "stopped"
            self._write_meta(job, train_cfg, status=final)  # iterator ended without Done: "stopped"
            with job.lock:
                job.status, job.finished = final, time.time()
                job.version += 1
            if self.queue and not self.closing:
                self._start_next()  # the trainer is handed over in order

    def _events_here(self, job: Job, model_cfg, train_cfg, resume):
        set_threads(self.threads)  # a thread inherits its parent's count: 1 if a render thread had just set 1
        if self.threads > 0:  # fit sets the config's count (0: every core)
            train_cfg = replace(train_cfg, threads=self.threads)
        data = load_saved(job.data.path)
        yield from gan.fit(model_cfg, train_cfg, data, out_dir=job.run_dir, resume=resume, stop=job.stop)

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
        """Stop a running job and wait for its checkpoint (SIGTERM, atexit, test teardown); nobody
        waiting in line starts any more."""
        self.closing = True
        self.queue = []
        job = self.job
        if job is not None and job.alive:
            job.stop.set()
            job.thread.join(timeout)

    def last_run(self, session: str | None = None, key: str | None = None, shared: bool = False) -> str | None:
        """The newest run folder's outcome, for the status line after a restart (no job in memory); with
        `shared` (a Space), only among the runs this visitor started."""
        return last_run_line(self.runs_dir, lambda run: self.may_control(run, session, key, shared))

    def resumable(
        self, session: str | None = None, key: str | None = None, shared: bool = False
    ) -> list[tuple[str, str]]:
        """Runs of this app with a checkpoint, newest first: (label, run name); with `shared` (a
        Space), only the runs this visitor may resume."""
        if not self.runs_dir.is_dir():
            return []
        out = []
        for d in sorted(self.runs_dir.iterdir(), key=lambda p: p.name, reverse=True):
            meta_p = d / META_NAME
            if not (d / "checkpoint.safetensors").is_file() or not meta_p.is_file():
                continue
            if self.job is not None and self.job.alive and self.job.name == d.name:
                continue
            try:
                meta = json.loads(meta_p.read_text())
                steps = meta["train_config"]["steps"]
            except (OSError, ValueError, KeyError):  # a half-copied or foreign folder: not offered
                continue
            if shared and not self.may_control(d.name, session, key, shared):
                continue
            if not self.can_continue(d, meta):
                continue
            out.append((f"{d.name} (step {meta.get('step', '?')} of {steps}, {meta.get('status', '?')})", d.name))
        return out

    def time_limit(self, meta: dict[str, Any]) -> float:
        """A run's time limit in minutes in all its sessions (0: none): what it started with, within
        the server's GAN_MAX_MINUTES."""
        try:
            asked = float(meta.get("form", {}).get("max_minutes") or meta["train_config"].get("max_minutes") or 0)
        except (TypeError, ValueError, KeyError, AttributeError):
            asked = 0.0
        cap = self.max_minutes or 0.0
        return cap if cap and (asked <= 0 or asked > cap) else asked

    def minutes_left(self, d: Path, meta: dict[str, Any]) -> float | None:
        """What is left of a run's time limit (None: it has none); Resume continues it, never renews it."""
        limit = self.time_limit(meta)
        if not limit:
            return None
        return limit - checkpoint_info(d / CKPT_NAME).get("elapsed_s", 0.0) / 60

    def can_continue(self, d: Path, meta: dict[str, Any]) -> bool:
        """Whether Resume can take a run further: steps below the server's limit and time left."""
        left = self.minutes_left(d, meta)
        return int(meta.get("step", 0)) < self.max_steps and (left is None or left >= MIN_RESUME_MINUTES)

    def read_meta(self, run: str) -> tuple[Path, dict[str, Any]]:
        """A run's folder and app_run.json, checked for Resume."""
        if not run or "/" in run or "\\" in run or run.startswith("."):
            raise AppError("Pick a run to resume (runs with a checkpoint are listed next to Resume).")
        d = self.runs_dir / run
        meta_p = d / META_NAME
        if not meta_p.is_file() or not (d / "checkpoint.safetensors").is_file():
            raise AppError(f"Run {run!r} has no checkpoint to resume from.")
        try:
            return d, json.loads(meta_p.read_text())
        except (OSError, ValueError) as e:
            raise AppError(f"Run {run!r} cannot be resumed: its {META_NAME} is unreadable ({e}).") from None
