"""The training process of the app's job (`gan.ui.jobs`): `gan.fit` in a child process of its own
(`gan.worker`: a plain `python -m gan.worker`, which imports neither gradio nor the launcher), its
events read back through a pipe, Stop passed on through the child's stdin, the images read by the
child from the run's `data.safetensors` (no shared memory, so a 64 MB /dev/shm is no limit).

Why a process: in a thread of the server, training shares the GIL with every request; on 2 cores,
20 visitors sampling cut its speed to a fifth while the CPU was not even busy (benchmarks/load.py).
When the server dies, even by SIGKILL, the child's stdin closes: it writes a checkpoint and ends.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gan
from gan.worker import TrainRequest, Worker, WorkerError


class TrainProcessError(RuntimeError):
    """The training process failed: its message, or how it ended."""


def _relay_stop(job_stop: threading.Event, ended: threading.Event, worker: Worker) -> None:
    while not ended.is_set():
        if job_stop.wait(0.2):
            worker.stop()
            return


def isolated_events(
    data_path: Path, model_cfg, train_cfg, run_dir: Path, resume, job_stop: threading.Event, threads: int,
    mem_mb: int = 0,
):  # fmt: skip
    """gan.fit's events from a training child; Stop is passed on; a child that dies is a failure."""
    req = TrainRequest(model_cfg, train_cfg, str(data_path), str(run_dir), None if resume is None else str(resume),
                       threads, mem_mb)  # fmt: skip
    worker = Worker(req)
    ended = threading.Event()
    threading.Thread(target=_relay_stop, args=(job_stop, ended, worker), daemon=True, name="gan-lab-stop").start()
    done = False
    try:
        for msg in worker.messages():
            done = isinstance(msg, gan.Done)  # its last event: the run ends now, not when the process has exited
            yield msg
            if done:
                break
    except WorkerError as e:  # its own message; gan's errors for the user keep their name
        raise TrainProcessError(str(e) if e.kind in ("error", "memory") else f"{e.kind}: {e}") from None
    finally:
        ended.set()
        if done:  # everything is written; the process is only exiting
            threading.Thread(target=worker.close, daemon=True).start()
        else:
            worker.close(60)
    if not done:
        raise TrainProcessError(worker.ended())
