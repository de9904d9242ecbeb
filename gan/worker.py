"""Work in a child process of its own: a training run (`gan.fit`) or the decoding of untrusted data.

The app starts `python -m gan.worker` (a plain subprocess, so the child imports neither gradio nor
the launcher) and talks to it through its standard streams:

- the parent writes one pickled request (`TrainRequest` or `DecodeRequest`) to the child's stdin
  and keeps stdin open. A line on stdin, or stdin closing (the parent exited or was killed, even by
  SIGKILL), sets the child's stop event: a training run then writes a checkpoint of its last
  finished step and its model folder, and ends.
- the child writes length-prefixed pickled messages on its stdout: gan.fit's events, `Decoded`,
  or `Failure`. Anything the child prints goes to stderr (the real stdout is kept for messages).

The data reaches a training child as a file (`data.safetensors`, uint8 images): no shared memory,
so a small /dev/shm (64 MB in a default container) is no limit. With `mem_mb` the child caps its
own data segment (RLIMIT_DATA) at what it used after its imports plus that many MB: a decoder that
slips past the size checks ends that child with a clear message, never the server.

Pickle is used only between this parent and its own child, never for anything from outside.
"""

from __future__ import annotations

import os
import pickle
import resource
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<Q")
MAX_MESSAGE = 1 << 30  # a length above this is a corrupt stream, not a message


@dataclass
class TrainRequest:
    model_cfg: Any  # gan.ModelConfig | None (None: resuming)
    train_cfg: Any  # gan.TrainConfig
    data_path: str  # uint8 images (N, C, S, S) as safetensors ("images"), report JSON in the metadata
    run_dir: str
    resume: str | None = None
    threads: int = 0  # > 0: that many torch threads; 0: the config's (0 = adaptive, gan.device.ThreadGovernor)
    mem_mb: int = 0  # RLIMIT_DATA above the child's own imports (0: none)


@dataclass
class DecodeRequest:
    paths: list[str]  # files and archives (gan.data.load_files), or one source (gan.load_images)
    image_size: int
    channels: int
    out_path: str  # where the decoded images go (safetensors, written atomically)
    limits: Any = None  # gan.data.Limits (None: from the environment)
    token: Any = None  # for hf://datasets sources
    many: bool = True  # paths are uploaded files (load_files), else one source (load_images)
    mem_mb: int = 0


@dataclass
class Decoded:
    """What a decode child sends: the report, and the shape of the images it wrote."""

    report: Any  # gan.DatasetReport
    shape: tuple[int, ...]


@dataclass
class Failure:
    """What a child sends when its work raised: the message (the traceback went to stderr)."""

    message: str
    kind: str = "error"  # error | memory | the name of one of gan's errors for the user (DataError, HubError, ...)


class WorkerError(RuntimeError):
    """The child failed or died: its message, or how it ended; `kind` as in Failure."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------------------------------------
# the wire


def write_message(f, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_HEADER.pack(len(data)) + data)
    f.flush()


def read_message(f) -> Any:
    """The next message, or raise EOFError at the end of the stream (also mid-message: a child that
    died while writing leaves half a message, which is the same as none)."""
    head = f.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    (n,) = _HEADER.unpack(head)
    if n > MAX_MESSAGE:
        raise EOFError
    data = f.read(n)
    if len(data) < n:
        raise EOFError
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001 - a corrupt message ends the stream like a dead child
        raise EOFError from None


# ---------------------------------------------------------------------------------------------
# the parent's side


class Worker:
    """A child process doing one request; iterate `messages()`; `stop()` asks it to finish."""

    def __init__(self, request: TrainRequest | DecodeRequest, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gan.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=str(Path(__file__).resolve().parents[1]),  # `gan` importable as in the parent
        )
        self._stdin_lock = threading.Lock()
        try:
            write_message(self.proc.stdin, request)
        except OSError:  # the child died at once (e.g. could not start): messages() reports it
            pass

    def messages(self) -> Iterator[Any]:
        """Messages until the child closes its end; a Failure is raised as WorkerError."""
        while True:
            try:
                msg = read_message(self.proc.stdout)
            except (EOFError, OSError, ValueError):
                return
            if isinstance(msg, Failure):
                raise WorkerError(msg.message, msg.kind)
            yield msg

    def stop(self) -> None:
        """Ask the child to finish (a training run writes its checkpoint first)."""
        with self._stdin_lock:
            try:
                self.proc.stdin.write(b"stop\n")
                self.proc.stdin.flush()
            except (OSError, ValueError):  # already gone or closed
                pass

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self, timeout: float = 60.0) -> int | None:
        """Stop, wait up to `timeout` s, then kill; the exit code (negative: a signal)."""
        self.stop()
        code = self.wait(timeout)
        if code is None:
            self.proc.kill()
            code = self.wait(10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        return code

    def ended(self) -> str:
        """How the child ended, in words (after close)."""
        code = self.proc.returncode
        if code is not None and code < 0:
            return f"the worker process was killed by signal {-code}"
        return f"the worker process ended with exit code {code}"


def _user_errors() -> dict[str, type[Exception]]:
    """gan's errors whose message is for the user, by name: a child's is raised again as the same type."""
    from .config import ConfigError
    from .data import DataError
    from .hubclient import HubError
    from .models import ModelLoadError
    from .train import CheckpointError

    return {e.__name__: e for e in (ConfigError, DataError, HubError, ModelLoadError, CheckpointError)}


def decode_in_child(request: DecodeRequest, timeout: float = 600.0) -> Decoded:
    """Run a decode request in a child; its Decoded, or the child's own error for the user (DataError,
    HubError, ...), or DataError when it ran out of memory, or WorkerError (anything else)."""
    from .data import DataError

    w = Worker(request)
    got, failed = None, None
    try:
        for msg in w.messages():
            if isinstance(msg, Decoded):
                got = msg
    except WorkerError as e:
        failed = e
    finally:
        code = w.close(timeout)
    if failed is not None and failed.kind in _user_errors():
        raise _user_errors()[failed.kind](str(failed))
    if failed is not None and failed.kind == "memory" or got is None and code is not None and code < 0:
        limit = f" ({request.mem_mb:,} MB)" if request.mem_mb else ""
        raise DataError(
            f"decoding this data needed more memory than one upload may use here{limit}, so it was stopped; "
            "upload fewer or smaller images"
        )
    if failed is not None:
        raise WorkerError(f"decoding the data failed: {failed}")
    if got is None:
        raise WorkerError(f"decoding the data failed: {w.ended()}")
    return got


# ---------------------------------------------------------------------------------------------
# the child's side


def _data_mb() -> int:
    """This process's data segment (VmData) in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def limit_memory(mb: int) -> None:
    """Cap the data segment at what the process uses now plus `mb` MB (allocations past it fail)."""
    if mb > 0:
        cap = (_data_mb() + mb) << 20
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


def _watch_stdin(stdin, stop: threading.Event) -> None:
    """Any line on stdin, or its end (the parent is gone), sets `stop`."""
    try:
        stdin.readline()
    except (OSError, ValueError):
        pass
    stop.set()


def _train(req: TrainRequest, stop: threading.Event, out) -> None:
    import dataclasses

    import gan

    from .datafile import load_saved
    from .device import ThreadGovernor, default_threads

    data = load_saved(Path(req.data_path))
    limit_memory(req.mem_mb)
    governor = None
    train_cfg = req.train_cfg
    if req.threads > 0:
        train_cfg = dataclasses.replace(train_cfg, threads=req.threads)  # fit sets the config's count
    elif train_cfg.threads == 0:
        governor = ThreadGovernor(default_threads())
    on_step = None if governor is None else governor.step
    orphan = False  # the parent is gone: the run still ends properly (checkpoint, model folder)
    for ev in gan.fit(req.model_cfg, train_cfg, data, out_dir=req.run_dir, resume=req.resume, stop=stop,
                      on_step=on_step):  # fmt: skip
        if not orphan:
            try:
                write_message(out, ev)
            except OSError:  # BrokenPipeError: nobody reads any more
                orphan = True
                stop.set()


def _decode(req: DecodeRequest, out) -> None:
    from . import data as gdata
    from .datafile import save_images

    limit_memory(req.mem_mb)
    if req.many:
        got = gdata.load_files(req.paths, req.image_size, req.channels, req.limits, token=req.token)
    else:
        got = gdata.load_images(req.paths[0], req.image_size, req.channels, limits=req.limits, token=req.token)
    save_images(got, Path(req.out_path))
    write_message(out, Decoded(got.report, tuple(got.images.shape)))


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")  # messages; print() and warnings go to stderr from now on
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer
    try:
        req = read_message(stdin)
    except EOFError:
        return 2
    stop = threading.Event()
    threading.Thread(target=_watch_stdin, args=(stdin, stop), daemon=True).start()
    try:
        if isinstance(req, TrainRequest):
            _train(req, stop, out)
        elif isinstance(req, DecodeRequest):
            _decode(req, out)
        else:
            raise TypeError(f"unknown request {type(req).__name__}")
    except BrokenPipeError:  # the parent is gone: nobody to tell
        return 1
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which shows the message
        if isinstance(e, MemoryError) or "can't allocate memory" in str(e):
            fail = Failure("it ran out of the memory one job may use here (GAN_WORKER_MEM_MB)", "memory")
        elif type(e).__name__ in _user_errors():
            fail = Failure(str(e), type(e).__name__)
        else:
            import traceback

            traceback.print_exc()
            fail = Failure(f"{type(e).__name__}: {e}")
        try:
            write_message(out, fail)
        except OSError:
            return 1
        return 1
    finally:
        try:
            out.close()
        except OSError:
            pass
    return 0


if __name__ == "__main__":  # run as `python -m gan.worker`: use the module's classes, which pickle names
    from gan.worker import main as module_main

    code = module_main()
    sys.stderr.flush()
    os._exit(code)  # not sys.exit: the stdin watcher thread may still be reading
