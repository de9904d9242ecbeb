"""The training process of the app's job (`gan.ui.jobs`): `gan.fit` in a spawned process, its events
sent back through a pipe, Stop passed on through a multiprocessing Event, the images in shared memory.

Why a process: in a thread of the server, training shares the GIL with every request; on 2 cores,
20 visitors sampling cut its speed to a fifth while the CPU was not even busy (benchmarks/load.py).
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

import gan
from gan.device import ThreadGovernor, default_threads


def isolated_events(data, model_cfg, train_cfg, run_dir: Path, resume, job_stop, threads: int):
    """gan.fit's events from `train_process`; Stop is passed on; a process that dies is a failure."""
    ctx = torch.multiprocessing.get_context("spawn")  # never fork a server with threads
    stop = ctx.Event()
    recv, send = ctx.Pipe(duplex=False)
    data.images.share_memory_()  # the child maps the same memory: no copy through the pipe
    proc = ctx.Process(
        target=train_process, name="gan-lab-train",
        args=(model_cfg, train_cfg, data, str(run_dir), None if resume is None else str(resume), stop,
              send, threads),
        daemon=True,
    )  # fmt: skip
    proc.start()
    send.close()  # the child holds the other end: EOF when it exits
    done = False
    try:
        while not done:
            if job_stop.is_set():
                stop.set()
            if not recv.poll(0.2):
                if not proc.is_alive() and not recv.poll(0):
                    break
                continue
            try:
                msg = recv.recv()
            except EOFError:
                break
            if isinstance(msg, TrainFailure):
                raise TrainProcessError(msg.message)
            done = isinstance(msg, gan.Done)  # its last event: the run ends now, not when the process has exited
            yield msg
    finally:
        stop.set()
        recv.close()
        if done:  # everything is written; the process is only exiting
            threading.Thread(target=proc.join, daemon=True).start()
        else:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
                proc.join(10)
    if not done and proc.exitcode not in (0, None):
        raise TrainProcessError(f"the training process ended with exit code {proc.exitcode}")


class TrainProcessError(RuntimeError):
    """The training process failed: its message, or how it ended."""


@dataclass
class TrainFailure:
    """What train_process sends when gan.fit raises (the traceback goes to the server's stderr)."""

    message: str


def train_process(model_cfg, train_cfg, data, run_dir: str, resume: str | None, stop, conn, threads: int) -> None:
    """The training process: gan.fit's events through `conn`; `stop` (a multiprocessing Event) stops it.

    `threads` > 0: that many torch threads throughout. 0: every core while the machine is otherwise
    idle, one fewer for each core the server's visitors (or anything else) keep busy (ThreadGovernor):
    on 2 cores, 2 threads beside a busy core train at a third of the speed of 1 thread."""
    try:
        governor = None
        if threads > 0:
            train_cfg = dataclasses.replace(train_cfg, threads=threads)  # fit sets the config's count
        elif train_cfg.threads == 0:
            governor = ThreadGovernor(default_threads())
        on_step = None if governor is None else governor.step
        for ev in gan.fit(model_cfg, train_cfg, data, out_dir=run_dir, resume=resume, stop=stop, on_step=on_step):
            conn.send(ev)
    except Exception as e:  # noqa: BLE001 - reported to the runner, which marks the run failed
        traceback.print_exc()
        conn.send(TrainFailure(f"{type(e).__name__}: {e}"))
    finally:
        conn.close()
