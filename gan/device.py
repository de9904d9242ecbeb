"""What the machine can do: the device, the CPU's capability, the precision and the thread count.

Defaults are chosen from the machine a run is on, never from the machine a developer happened to
have. `precision="auto"` means bf16 autocast only where the device runs it natively *and* it was
measured faster; everywhere else fp32. On x86 CPUs without AVX512-BF16 or AMX, oneDNN has no bf16
kernels and PyTorch falls back to reference loops that are 8-13x slower than fp32 (pytorch/pytorch
#118499, #111456), so there `auto` is fp32 without measuring anything.

    choice = choose_precision("auto", torch.device("cpu"))
    choice.precision, choice.reason   # ('fp32', 'fp32: this CPU (AVX2) has no native bf16 kernels')
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

SLOWDOWN_NO_BF16 = "8-13x"  # measured: fwd+bwd of G and D, one thread, AVX2-only CPU (issue 13)
PROBE_MARGIN = 1.10  # bf16 must be at least this much faster than fp32 to be chosen
PROBE_FILE = "precision.json"


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda (this process's LOCAL_RANK) if available, else mps, else cpu."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device=cuda was asked for, but CUDA is not available here")
        return torch.device("cuda", local_rank)
    if name == "mps" and not _mps_available():
        raise RuntimeError("device=mps was asked for, but Apple MPS is not available here")
    return torch.device(name)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


# ---------------------------------------------------------------------------------------------
# the CPU


@dataclass(frozen=True)
class CpuInfo:
    capability: str  # torch's vector ISA: DEFAULT, AVX2, AVX512, ... (ZVECTOR, VSX on other arches)
    native_bf16: bool  # oneDNN has bf16 kernels here (AVX512-BF16 or AMX on x86; bf16 on arm64)
    amx: bool  # Intel AMX tiles (the fastest bf16 path)
    model: str  # processor name, as far as the OS tells it

    @property
    def cpu_class(self) -> str:
        """A short name for benchmark tables: AMX, AVX512-BF16, AVX512, AVX2, ..."""
        if self.amx:
            return "AMX"
        if self.native_bf16:
            return f"{self.capability}-BF16" if self.capability != "DEFAULT" else "BF16"
        return self.capability

    def describe(self) -> str:
        bf16 = "native bf16" if self.native_bf16 else "no native bf16"
        return f"{self.model or platform.machine()} ({self.cpu_class}, {bf16})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_info() -> CpuInfo:
    """What this CPU offers to torch (read from torch itself, not guessed from flags)."""
    try:
        cap = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # very old torch
        cap = "DEFAULT"
    try:
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        bf16 = False
    return CpuInfo(cap, bf16, _amx_tiles(), _cpu_model())


def _amx_tiles() -> bool:
    """AMX tiles usable here. torch.cpu has the probe (torch 2.14); older torch had it in torch._C._cpu."""
    for probe in (getattr(torch.cpu, "_is_amx_tile_supported", None),
                  getattr(torch._C._cpu, "_is_amx_tile_supported", None)):  # fmt: skip
        if probe is not None:
            try:
                return bool(probe())
            except Exception:
                return False
    return False


# ---------------------------------------------------------------------------------------------
# precision


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # what runs: fp32 | bf16
    requested: str  # what was asked for: auto | fp32 | bf16
    reason: str  # one line for the log and the UI, e.g. "fp32: this CPU (AVX2) has no native bf16 kernels"
    warning: str | None = None  # set when the user forced something slow


def _probe_key(info: CpuInfo) -> str:
    # probe=2: the default recipe's step (the first probe's tiny model did not tell AMX's gain)
    return f"{info.model}|{info.capability}|bf16={info.native_bf16}|amx={info.amx}|torch={torch.__version__}|probe=2"


_PROBE_STEP: Callable[[str], Callable[[], object]] | None = None  # precision -> one step; gan.train sets it


def register_probe_step(make_step: Callable[[str], Callable[[], object]]) -> None:
    """The training step the bf16 probe times, made for a precision (gan.train registers its own:
    the device layer sits below the trainer and never imports it)."""
    global _PROBE_STEP
    _PROBE_STEP = make_step


def measure_bf16_speedup(reps: int = 2) -> float:
    """fp32 time / bf16 time of the real training step (G and D, forward and backward, both
    optimizers) of the default `cpu` recipe's shape (64 px, widths 32, batch 32), on one thread,
    alternating the two precisions so that a busy machine hurts both alike. Two to five seconds
    where bf16 is native (only there is it run).

    Not a smaller model: at 32 px, widths 32, batch 16 (the probe until 2026-12) an AMX Xeon measured
    1.00-1.15x, straddling the 10 % margin, while this step runs 1.5x faster in bf16 there: auto
    picked fp32 about half the time. One thread: with two threads on two cores that other work kept
    busy, the same probe measured 0.51x (a spinning oneDNN thread pool, 58 s a probe), which would be
    cached as "fp32" for good; one thread measured 1.47-2.00x quiet, 1.25-2.59x beside a training run."""
    if _PROBE_STEP is None:
        raise RuntimeError("no training step to time: gan.train registers it (import gan)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps = {p: _PROBE_STEP(p) for p in ("fp32", "bf16")}
        for p in ("fp32", "bf16", "fp32", "bf16"):  # warm-up: oneDNN primitive creation, the allocator
            steps[p]()
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        order = ["fp32", "bf16", "bf16", "fp32"]  # ABBA
        for i in range(reps):
            for p in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                steps[p]()
                times[p].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times["fp32"]) / statistics.median(times["bf16"])


_MEASURED: dict[str, float] = {}  # the real probe's result in this process, for a cache that cannot be written


def _cached_speedup(info: CpuInfo, cache: Path | None, measure) -> float:
    """The measured bf16 speed-up for this machine and torch version, measured once per cache
    folder, and the real probe (2-5 s) at most once per process, also where the cache cannot be
    written (each page build in the app asks again)."""
    key = _probe_key(info)
    if measure is measure_bf16_speedup and key in _MEASURED:
        return _MEASURED[key]
    store: dict = {}
    path = cache / PROBE_FILE if cache is not None else None
    if path is not None and path.is_file():
        try:
            store = json.loads(path.read_text())
            if isinstance(store.get(key), (int, float)):
                return float(store[key])
        except (OSError, ValueError):
            store = {}
    speedup = float(measure())
    if measure is measure_bf16_speedup:
        _MEASURED[key] = speedup
    if path is not None:
        from .fileio import atomic_write_json

        try:
            atomic_write_json(path, {**store, key: round(speedup, 3)})
        except OSError:  # a read-only cache costs a probe per start, nothing more
            pass
    return speedup


def choose_precision(
    requested: str,
    device: torch.device | str = "cpu",
    *,
    info: CpuInfo | None = None,
    probe: bool = True,
    cache: Path | None | str = "default",
    measure=None,
) -> PrecisionChoice:
    """Resolve 'auto' | 'fp32' | 'bf16' for `device`.

    auto: bf16 on CUDA with bf16 support; on a CPU only where oneDNN has native bf16 kernels and
    a short probe of the real step (cached per machine and torch version in the cache folder)
    found bf16 faster by 10 %; else fp32. bf16 asked for where it is not native runs, with a
    warning that names the expected slowdown. `info`, `cache` and `measure` are for tests."""
    device = torch.device(device)
    if requested not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision={requested!r} is not allowed; choose auto, fp32 or bf16")
    if requested == "fp32":
        return PrecisionChoice("fp32", requested, "fp32: asked for")
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        if requested == "bf16":
            return PrecisionChoice("bf16", requested, "bf16: asked for", None if ok else "this GPU has no native bf16")
        return PrecisionChoice(*(("bf16", requested, "bf16: this GPU runs it natively") if ok else
                                 ("fp32", requested, "fp32: this GPU has no native bf16")))  # fmt: skip
    if device.type != "cpu":
        if requested == "bf16":
            return PrecisionChoice("bf16", requested, "bf16: asked for")
        return PrecisionChoice("fp32", requested, f"fp32: the safe default on {device.type}")
    info = info or cpu_info()
    if requested == "bf16":
        if info.native_bf16:
            return PrecisionChoice("bf16", requested, f"bf16: asked for (this CPU, {info.cpu_class}, runs it natively)")
        return PrecisionChoice(
            "bf16",
            requested,
            f"bf16: asked for, but this CPU ({info.cpu_class}) has no native bf16 kernels",
            warning=(
                f"precision bf16 on a CPU without native bf16 ({info.cpu_class}): expect training "
                f"{SLOWDOWN_NO_BF16} slower than fp32; use precision auto or fp32"
            ),
        )
    if not info.native_bf16:
        return PrecisionChoice("fp32", requested, f"fp32: this CPU ({info.cpu_class}) has no native bf16 kernels")
    if not probe:
        return PrecisionChoice("bf16", requested, f"bf16: this CPU ({info.cpu_class}) has native bf16 kernels")
    if cache == "default":
        from .fileio import cache_dir

        try:
            cache = cache_dir()
        except OSError:
            cache = None
    speedup = _cached_speedup(info, Path(cache) if cache else None, measure or measure_bf16_speedup)
    if speedup >= PROBE_MARGIN:
        why = f"bf16: measured {speedup:.2f}x fp32's speed on this CPU ({info.cpu_class})"
        return PrecisionChoice("bf16", requested, why)
    return PrecisionChoice(
        "fp32", requested, f"fp32: bf16 is native on this CPU ({info.cpu_class}) but measured only {speedup:.2f}x"
    )


# ---------------------------------------------------------------------------------------------
# threads


def available_cores() -> int:
    """CPU cores this process may run on: its CPU affinity, capped by a container's CPU quota
    (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`): a 2-vCPU container on a 64-core host has 2."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota - 0.01)))
    return max(1, n)


CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP) -> float | None:
    """The container's CPU limit in cores, or None (no limit, or not Linux)."""
    try:
        raw = (root / "cpu.max").read_text().split()  # v2: "max 100000" or "200000 100000"
    except OSError:
        try:  # v1
            raw = [(root / "cpu" / f).read_text().strip() for f in ("cpu.cfs_quota_us", "cpu.cfs_period_us")]
        except OSError:
            return None
    try:
        quota, period = raw[0], float(raw[1])
        return None if quota in ("max", "-1") or period <= 0 else float(quota) / period
    except (IndexError, ValueError):
        return None


def cpu_seconds_used(root: Path = CGROUP) -> float | None:
    """CPU seconds used so far by everything that shares this machine's cores with us: the
    container's cgroup (v2 `cpu.stat`, v1 `cpuacct.usage`), else the whole machine (/proc/stat);
    None where neither can be read (not Linux)."""
    try:
        for line in (root / "cpu.stat").read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int((root / "cpuacct" / "cpuacct.usage").read_text()) / 1e9
    except (OSError, ValueError):
        pass
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
        return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class ThreadGovernor:
    """Torch threads for a training process that shares its cores: all of `max_threads` while the
    machine is otherwise idle, one fewer for each busy core.

    Why: intra-op threads meet at a barrier after every op, so when another process (a server
    answering visitors) keeps one of 2 cores busy, a 2-thread run waits at each barrier for the
    thread that lost its core: measured on a 2-core AVX2 EPYC, 32 px DCGAN, batch 32, a busy loop on
    the other core cut 2 threads from 424 to 135 img/s, while 1 thread kept 312-331 (300 alone).
    At 64 px, batch 64 (150 img/s with 2 threads alone, 75 with 1), 2 threads beat 1 beside a
    core busy 30 % of the time (107 vs 85) and tie at 60 % (92 vs 88): the slack, 0.4 of a core,
    lies between.

    `step()` is called between training steps in the training thread (torch's count is per thread);
    every `interval` seconds it reads the cores used by others (`cpu_seconds_used` minus this
    process's CPU time, over the wall time) and sets max_threads - ceil(others - slack) threads, at
    least 1: fewer at once, more again only after two calm readings in a row. Where the CPU time
    cannot be read it keeps max_threads."""

    def __init__(self, max_threads: int, interval: float = 0.5, slack: float = 0.4, used=cpu_seconds_used,
                 clock=time.monotonic):  # fmt: skip
        self.max_threads, self.interval, self.slack = max(1, max_threads), interval, slack
        self.used, self.clock = used, clock
        self.threads = self.max_threads
        self.others = 0.0  # cores used by others in the last window
        self.calm = 0
        self._last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        total = self.used()
        return None if total is None else (self.clock(), total, time.process_time())

    def want(self, others: float) -> int:
        return max(1, min(self.max_threads, self.max_threads - math.floor(others - self.slack + 1)))

    def step(self) -> int:
        """Re-read the load when due; set torch's threads in this thread if the count changes."""
        if self._last is None or self.clock() - self._last[0] < self.interval:
            return self.threads
        now = self._read()
        if now is None:
            return self.threads
        (t0, u0, p0), (t1, u1, p1) = self._last, now
        self._last = now
        self.others = max(0.0, ((u1 - u0) - (p1 - p0)) / max(t1 - t0, 1e-6))
        want = self.want(self.others)
        self.calm = self.calm + 1 if want > self.threads else 0
        if want < self.threads or self.calm >= 2:
            self.threads, self.calm = want, 0
            torch.set_num_threads(self.threads)
        return self.threads


def default_threads() -> int:
    """Threads for one training process: $OMP_NUM_THREADS when set, else the available cores
    shared among the processes torchrun started on this machine ($LOCAL_WORLD_SIZE)."""
    try:
        omp = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        omp = 0
    if omp > 0:
        return omp
    try:
        local_world = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local_world = 1
    return max(1, available_cores() // local_world)


def set_threads(n: int = 0) -> int:
    """Set torch's intra-op threads for the calling thread explicitly and return the count:
    `n`, or default_threads() when n == 0. A worker thread inherits whatever count its parent
    had when it started (1, if a render thread had just set 1), so the training thread calls this
    itself instead of trusting the default."""
    n = int(n) if n and n > 0 else default_threads()
    torch.set_num_threads(n)
    return n


def machine_summary() -> dict:
    """CPU, torch and threads, for benchmark results and `Started` logs."""
    info = cpu_info()
    return {
        **asdict(info),
        "cpu_class": info.cpu_class,
        "torch": torch.__version__,
        "cores": available_cores(),
        "python": platform.python_version(),
    }
