"""Abuse: one stranger throws the worst the form and the API allow at a public Space while someone trains.

Starts the real app (`python app.py`) on 127.0.0.1 with SPACE_ID set, so a Space's limits apply, and
with its temporary files (GRADIO_TEMP_DIR, TMPDIR), caches (GAN_CACHE_DIR, HF_HOME) and runs folder
in one temporary folder, whose growth on disk is measured. A loopback Hub server (tests/hubserver.py)
stands in for huggingface.co. Then:

- trainer free: each data attack (1-3), the largest settings (4) and preview_every=1 (5) are sent
  to `train` by a visitor of their own while nothing trains (the path a run takes when it starts);
  a run that starts is watched for a few seconds and stopped by that visitor;
- trainer busy: a victim (its own client and session) trains built-in shapes at 32 px; its speed
  alone is measured from the `progress` endpoint's step; then attacks 1-4 come again (now they are
  decoded and either refused or put in line), a stranger tries `stop` and `resume` on the victim's
  run (7), a model over GAN_MAX_MODEL_MB is pushed to the Hub (8), and five more visitors press
  Start (6: places in line, the estimate, the full line; 6b: an upload while the line is full, is
  it decoded before it is turned away?; 6c: the first in line leaves);
- the victim's speed alone again; the victim stops its run and a stranger tries to resume it.

For each attack it prints: refused or not, the message's first line, the peak RSS of the server and
of its `gan.worker` children (VmRSS read every 50 ms: VmHWM would be the lifetime peak), the growth
on disk of the temporary folder (at the end of the attack, and its peak), and the victim's steps/s
during the attack against its speed alone. The table goes to benchmarks/results/abuse_<CPU class>.md
(+ .json). The attack files are made here, small on disk (bombs are streamed, never held in memory).
Every loop is bounded in count and time; all traffic stays on 127.0.0.1; the app is killed at the end.

    python benchmarks/abuse.py                 # about 4-5 minutes on 2 shared cores
    python benchmarks/abuse.py --quiet 30 --window 8
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from load import free_port, wait_up  # benchmarks/load.py: the same launcher helpers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MB = 1_000_000
HUB_TOKEN = "hf_abuse_bench_token"  # the loopback Hub's only user ("alice")
VICTIM = dict(source="synthetic", image_size=32, steps=20_000, batch_size=32)  # the form's defaults otherwise


# ---- the attack files: small on disk, streamed ------------------------------------------------------


def npz_bomb(path: Path, shape: tuple[int, ...] = (30_000, 3, 128, 128)) -> Path:
    """An .npz whose one zero uint8 array `images` is 1.5 GB unpacked, ~1.4 MB packed (written in chunks)."""
    import numpy as np

    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    chunk = bytes(16 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("images.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        left = int(np.prod(shape))
        while left > 0:
            f.write(chunk if left >= len(chunk) else chunk[:left])
            left -= len(chunk)
    return path


def png_bytes(width: int, height: int, colour=(200, 40, 40)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def png_zip(path: Path, n: int, width: int, height: int, method: int) -> Path:
    """A zip of n copies of one one-colour PNG (encoded once)."""
    png = png_bytes(width, height)
    with zipfile.ZipFile(path, "w", method) as zf:
        for i in range(n):
            zf.writestr(f"imgs/{i:05d}.png", png)
    return path


def big_model(folder: Path, g_width: int = 160) -> Path:
    """An untrained 64-px generator of widths 160: a model.safetensors of ~77 MB (over a Space's 50)."""
    from gan import Generator, ModelConfig, save_model

    save_model(Generator(ModelConfig(image_size=64, g_width=g_width)), folder)
    return folder


# ---- what the server uses: memory (every 50 ms) and disk ----------------------------------------------


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def disk_bytes(roots: list[Path]) -> int:
    """Bytes on disk (allocated blocks, each hard-linked file once) under the roots."""
    seen, total, stack = set(), 0, [str(r) for r in roots if r.exists()]
    while stack and len(seen) < 1_000_000:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
            except OSError:
                continue
    return total


class Monitor:
    """Samples the server's VmRSS and its gan.worker children's (summed) every `every` s, and the
    disk under `roots` every `disk_every` s, in a thread; `begin`/`end` bracket one attack's peaks."""

    def __init__(self, pid: int, roots: list[Path], every: float = 0.05, disk_every: float = 0.5, limit_s=3600):
        self.pid, self.roots, self.every, self.disk_every = pid, roots, every, disk_every
        self.deadline = time.time() + limit_s
        self.lock, self.done = threading.Lock(), threading.Event()
        self.is_worker: dict[int, bool] = {}
        self.server = self.child = self.disk = self.disk0 = 0
        self.thread = threading.Thread(target=self._loop, name="abuse-monitor", daemon=True)
        self.thread.start()

    def children(self) -> list[int]:
        pids = []
        for f in Path(f"/proc/{self.pid}/task").glob("*/children"):
            try:
                pids += [int(p) for p in f.read_text().split()]
            except (OSError, ValueError):
                continue
        for p in pids:
            if not self.is_worker.get(p):  # re-read until it says gan.worker: between fork and exec it is the server's
                try:
                    self.is_worker[p] = b"gan.worker" in Path(f"/proc/{p}/cmdline").read_bytes()
                except OSError:
                    continue
        return [p for p in pids if self.is_worker.get(p)]

    def _loop(self) -> None:
        next_disk = 0.0
        while not self.done.is_set() and time.time() < self.deadline:
            server, child = rss_bytes(self.pid), sum(rss_bytes(p) for p in self.children())
            disk = disk_bytes(self.roots) if time.time() >= next_disk else None
            next_disk = time.time() + self.disk_every if disk is not None else next_disk
            with self.lock:
                self.server, self.child = max(self.server, server), max(self.child, child)
                if disk is not None:
                    self.disk = max(self.disk, disk)
            self.done.wait(self.every)

    def begin(self) -> None:
        disk = disk_bytes(self.roots)
        with self.lock:
            self.server = rss_bytes(self.pid)
            self.child = sum(rss_bytes(p) for p in self.children())
            self.disk0 = self.disk = disk

    def end(self) -> dict[str, float]:
        disk = disk_bytes(self.roots)
        with self.lock:
            return {"server_mb": self.server / MB, "child_mb": self.child / MB, "disk_mb": (disk - self.disk0) / MB,
                    "disk_peak_mb": (max(self.disk, disk) - self.disk0) / MB}  # fmt: skip

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)


# ---- the app and its visitors -------------------------------------------------------------------------


def first_line(x: Any, n: int = 160) -> str:
    text = str(x).strip()
    if isinstance(x, BaseException) and type(x).__name__ != "AppError":  # gradio_client's AppError: the app's text
        text = f"{type(x).__name__}: {text}"
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class Row:
    attack: str
    path: str  # "trainer free" / "trainer busy" / ...
    refused: str  # yes / no / queued / clamped / ...
    message: str
    seconds: float
    server_mb: float = 0.0
    child_mb: float = 0.0
    disk_mb: float = 0.0
    disk_peak_mb: float = 0.0
    victim: str = "n/a"
    victim_rate: float | None = None  # steps/s during the attack


class Bench:
    """The running app, the monitor, the victim and the attacks' rows."""

    def __init__(self, url: str, app: subprocess.Popen, mon: Monitor, runs: Path, args: argparse.Namespace):
        self.url, self.app, self.mon, self.runs, self.args = url, app, mon, runs, args
        self.rows: list[Row] = []
        self.opened: list[Any] = []  # clients of the current attack: closed (their page "leaves") after it
        self.victim: Any = None
        self.line: list[Any] = []  # visitors waiting in line (attack 6), kept open across attacks
        self.quiet: float | None = None  # victim steps/s alone

    def client(self):
        from gradio_client import Client

        c = Client(self.url, verbose=False, download_files=False, analytics_enabled=False)
        self.opened.append(c)
        return c

    @staticmethod
    def call(c, api: str, timeout: float = 300, **kw) -> Any:
        job = c.submit(**kw, api_name=api)
        try:
            return job.result(timeout=timeout)
        except TimeoutError:
            job.cancel()
            raise TimeoutError(f"{api}: no answer in {timeout:.0f} s") from None

    def state(self, c=None) -> dict[str, Any]:
        return self.call(c or self.victim, "/progress", timeout=60, since=10**9)[0]

    def step(self) -> tuple[int, float]:
        return self.state()["step"], time.time()

    def wait_idle(self, c, timeout: float = 120) -> str:
        t0 = time.time()
        while time.time() - t0 < timeout:
            s = self.state(c)
            if s["status"] not in ("starting", "running", "stopping"):
                return s["status"]
            time.sleep(0.5)
        return "still running"

    def measure(
        self, attack: str, path: str, fn: Callable[[], tuple[str, str]], window: float | None = None, track=True
    ) -> Row:
        """Run one attack (fn -> (refused, message)) between the monitor's marks and the victim's steps
        (`track`: the victim trains throughout)."""
        window = self.args.window if window is None else window
        a = self.step() if track and self.victim is not None else None
        self.mon.begin()
        t0 = time.time()
        try:
            refused, msg = fn()
        except Exception as e:  # noqa: BLE001 - a refusal (gradio_client's AppError) or a failure: both shown
            refused, msg = "yes", first_line(e, 400)
        time.sleep(max(0.0, window - (time.time() - t0)))
        took = time.time() - t0
        b = self.step() if a else None
        peaks = self.mon.end()
        victim, rate = "n/a", None
        if a and b:
            rate = (b[0] - a[0]) / (b[1] - a[1])
            victim = (
                f"{rate:.1f} vs {self.quiet:.1f} ({100 * rate / self.quiet:.0f} %)" if self.quiet else f"{rate:.1f}"
            )
        for c in self.opened:
            c.close()  # the visitor's page closes: the app's unload frees their data and place in line
        self.opened = []
        peaks = {k: round(v, 1) for k, v in peaks.items()}
        row = Row(attack, path, refused, first_line(msg, 400), round(took, 1), **peaks, victim=victim, victim_rate=rate)
        self.rows.append(row)
        print(f"[{row.path}] {row.attack}: refused={row.refused} ({row.seconds:.0f} s) server {row.server_mb:.0f} MB, "
              f"children {row.child_mb:.0f} MB, disk +{row.disk_mb:.1f} MB (peak +{row.disk_peak_mb:.1f}), "
              f"victim {row.victim}\n    {row.message}", flush=True)  # fmt: skip
        return row

    def train(self, started_s: float = 8.0, **form) -> tuple[str, str]:
        """A visitor presses Start with `form`. A run that starts is watched for `started_s` seconds,
        then stopped by the same visitor (its peak memory and disk count)."""
        c = self.client()
        msg = self.call(c, "/train", **form)
        if msg.startswith("Queued"):
            return "queued", msg
        if msg.startswith("Started"):
            time.sleep(started_s)
            self.call(c, "/stop", timeout=120)
            return "no (started; stopped: " + self.wait_idle(c) + ")", msg
        return "?", msg


# ---- the attacks ---------------------------------------------------------------------------------------


def data_attacks(files: dict[str, Path]) -> list[tuple[str, dict[str, Any]]]:
    from gradio_client import handle_file

    def up(name: str, size: int) -> dict[str, Any]:
        return dict(source="upload", files=[handle_file(str(files[name]))], image_size=size)

    return [
        ("1. .npz bomb (1.5 GB of zeros, 1.4 MB packed), 128 px", up("npz", 128)),
        ("2. zip of 40,000 one-pixel PNGs, 128 px", up("pixels", 128)),
        ("3. zip of 100 one-colour 6000x6000 PNGs, 64 px", up("huge", 64)),
        ("4. largest settings: 128 px, batch 256, widths 128", dict(source="synthetic", image_size=128,
                                                                      batch_size=256, g_width=128, d_width=128)),
    ]  # fmt: skip


def preview_clamp(bench: Bench) -> tuple[str, str]:
    """5: preview_every=1 on a 20,000-step run; the run's saved form says what it became."""
    c = bench.client()
    msg = bench.call(c, "/train", source="synthetic", image_size=32, steps=20_000, preview_every=1)
    if not msg.startswith("Started"):
        return "yes", msg
    run = bench.state(c)["run"]
    meta = json.loads((bench.runs / run / "app_run.json").read_text())
    every = meta.get("form", {}).get("preview_every")
    bench.call(c, "/stop", timeout=120)
    bench.wait_idle(c)
    verdict = "clamped" if every and every > 1 else "NOT clamped"
    return verdict, f"preview_every 1 -> {every} (at most {20_000 // every if every else '?'} grids); {msg}"


def stranger_stop_resume(bench: Bench, run: str) -> tuple[str, str]:
    """7 (while the victim trains): a stranger's stop and resume of the victim's run, with a guessed key."""
    c = bench.client()
    out = []
    for api, kw in (("/stop", dict(key="guess")), ("/resume", dict(run=run, steps=20_000, key="guess"))):
        try:
            out.append(("no", f"{api}: {first_line(bench.call(c, api, **kw), 90)}"))
        except Exception as e:  # noqa: BLE001 - refused: what we want
            out.append(("yes", f"{api}: {first_line(e, 90)}"))
    return "/".join(r for r, _ in out), " | ".join(m for _, m in out)


def hub_push_big(bench: Bench, model: str) -> tuple[str, str]:
    """8: push a model over GAN_MAX_MODEL_MB to the loopback Hub with a valid token."""
    c = bench.client()
    msg = bench.call(c, "/hub_push", model=model, repo_id="alice/too-big", token=HUB_TOKEN, private=False)
    return "no", msg


def queue_probe(bench: Bench) -> str:
    """The Busy message (it says how many wait in line): a throwaway visitor's resume of a bogus run."""
    c = bench.client()
    try:
        bench.call(c, "/resume", run="no-such-run", steps=10)
    except Exception as e:  # noqa: BLE001 - Busy is the answer
        return str(e)
    return ""


def wait_line_empty(bench: Bench, timeout: float = 45) -> float:
    """Seconds until nobody waits in line (pages that closed leave at the app's next heartbeat, <= 15 s)."""
    t0 = time.time()
    while "waiting in line" in queue_probe(bench) and time.time() - t0 < timeout:
        time.sleep(2)
    return time.time() - t0


SMALL_RUN = dict(source="synthetic", image_size=32, steps=500, max_minutes=2)


def place_of(answer: tuple[str, str]) -> str:
    refused, msg = answer
    if refused == "queued":
        return first_line(msg.split(" in line.")[0].split("you are ")[-1], 40)  # "number 2"
    return "line full" if "line is full" in msg else first_line(msg, 60)


def line_attack(bench: Bench) -> tuple[str, str]:
    """6: five more visitors press Start while the victim trains (their pages stay open: `bench.line`)."""
    wait_line_empty(bench)
    visitors, answers = [], []
    for _ in range(5):
        c = bench.client()
        visitors.append(c)
        try:
            msg = bench.call(c, "/train", **SMALL_RUN)
            answers.append(("queued" if msg.startswith("Queued") else "no", msg))
        except Exception as e:  # noqa: BLE001 - the full line
            answers.append(("yes", str(e)))
        print(f"    visitor {len(answers) + 1}: {answers[-1][0]}: {first_line(answers[-1][1], 400)}")
    bench.line = [c for c, (r, _) in zip(visitors, answers) if r == "queued"]
    bench.opened = [c for c in bench.opened if c not in bench.line]
    est = [m.split("starts by itself ")[1].split(";")[0] for r, m in answers if r == "queued"]
    return "/".join(r for r, _ in answers), f"{', '.join(place_of(a) for a in answers)}; estimates: {', '.join(est)}"


def line_full_upload(bench: Bench, huge: Path) -> tuple[str, str]:
    """6b: with the line full, one more visitor uploads attack 3's zip: is the line checked before the decode?"""
    from gradio_client import handle_file

    try:
        refused, msg = bench.train(source="upload", files=[handle_file(str(huge))], image_size=64)
    except Exception as e:  # noqa: BLE001 - refused: by the full line (checked first) or by the decode budget
        refused, msg = "yes", first_line(e, 400)
    when = "the line was checked first" if "line is full" in msg else "DECODED BEFORE THE FULL LINE WAS CHECKED"
    return refused, f"{when}: {msg}"


def one_leaves(bench: Bench) -> tuple[str, str]:
    """6c: the first in line leaves (closes the page); how long until the second is number 1."""
    line, bench.line = bench.line, []
    bench.opened += line[1:]  # all gone after this attack
    if len(line) < 2:
        return "-", "fewer than two in line"
    line[0].close()  # the app hears it at its next heartbeat (<= 15 s)
    t0, msg = time.time(), ""
    while time.time() - t0 < 45 and "you are number 1 " not in msg:
        time.sleep(1)
        msg = bench.call(line[1], "/train", **SMALL_RUN)  # pressing Start again keeps one's place
    took = time.time() - t0
    return "-", (f"the 2nd was number 1 after {took:.0f} s" if "number 1 " in msg else "the 2nd did NOT move up") + (
        f": {msg}"
    )


def resume_after_stop(bench: Bench, run: str) -> tuple[str, str]:
    """7b: the victim stops its run (allowed); a stranger then resumes it (must be refused)."""
    wait_line_empty(bench)  # else the first in line would take the trainer
    bench.call(bench.victim, "/stop", timeout=120)
    status = bench.wait_idle(bench.victim)
    c = bench.client()
    try:
        msg = bench.call(c, "/resume", run=run, steps=20_000, key="guess")
        return "no", f"victim's stop -> {status}; stranger's resume: {msg}"
    except Exception as e:  # noqa: BLE001 - refused: what we want
        return "yes", f"victim's stop -> {status}; stranger's resume: {first_line(e, 110)}"


# ---- the run ---------------------------------------------------------------------------------------------


def make_files(d: Path, weights: Path) -> tuple[dict[str, Path], Path, str]:
    """The attack files, and the app's weights folder: the given models + one over GAN_MAX_MODEL_MB."""
    d.mkdir(parents=True)
    t0 = time.time()
    files = {
        "npz": npz_bomb(d / "bomb.npz"),
        "pixels": png_zip(d / "pixels.zip", 40_000, 1, 1, zipfile.ZIP_STORED),
        "huge": png_zip(d / "huge.zip", 100, 6000, 6000, zipfile.ZIP_DEFLATED),  # 120 KB PNGs, deflated again
    }
    app_weights = d / "weights"
    for m in sorted(weights.glob("*")):
        if (m / "model.safetensors").is_file():
            shutil.copytree(m, app_weights / m.name)
    big = big_model(app_weights / "zz-big64")
    sizes = ", ".join(f"{p.name} {p.stat().st_size / MB:.1f} MB" for p in files.values())
    print(f"attack files ({time.time() - t0:.0f} s): {sizes}; big model "
          f"{(big / 'model.safetensors').stat().st_size / MB:.0f} MB", flush=True)  # fmt: skip
    return files, app_weights, big.name


def start_app(args, tmp: Path, weights: Path, runs: Path, hub) -> tuple[subprocess.Popen, str]:
    home = tmp / "app"
    for sub in ("gradio", "cache", "hf", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = hub.client_env(home / "hf") if hub else {**os.environ, "HF_HOME": str(home / "hf")}
    env.update(SPACE_ID="bench/abuse", GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(home / "gradio"),
               GAN_CACHE_DIR=str(home / "cache"), TMPDIR=str(home / "tmp"))  # fmt: skip
    port = free_port()
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--host", "127.0.0.1", "--weights", str(weights),
         "--runs", str(runs)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "app.log", "w"),
    )  # fmt: skip
    return app, f"http://127.0.0.1:{port}/"


def start_hub():
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from hubserver import HubServer

        return HubServer(tokens={HUB_TOKEN: "alice"}).start()
    except Exception as e:  # noqa: BLE001 - attack 8 is optional
        print(f"no loopback Hub ({e}); attack 8 is skipped")
        return None


def scenario(bench: Bench, files: dict[str, Path], big: str, hub) -> None:
    bench.measure("idle: the app alone, before any attack", "baseline", lambda: ("-", ""), window=3)
    for name, form in data_attacks(files):
        bench.measure(name, "trainer free", lambda form=form: bench.train(**form))
    bench.measure("5. preview_every=1 on a 20,000-step run", "trainer free", lambda: preview_clamp(bench))

    bench.victim = bench.client()
    bench.opened = []  # the victim's page stays open
    print("victim:", bench.call(bench.victim, "/train", **VICTIM), flush=True)
    t0 = time.time()
    while bench.state()["step"] < 30 and time.time() - t0 < 120:  # past the first steps' warm-up
        time.sleep(1)
    run = bench.state()["run"]
    bench.quiet = bench.measure(
        "quiet: the victim alone", "baseline", lambda: ("-", ""), window=bench.args.quiet
    ).victim_rate
    print(f"victim alone: {bench.quiet:.1f} steps/s", flush=True)
    for name, form in data_attacks(files):
        bench.measure(name, "trainer busy", lambda form=form: bench.train(**form))
    bench.measure(
        "7. stranger: stop, resume the victim's run", "trainer busy", lambda: stranger_stop_resume(bench, run)
    )
    if hub is not None:
        bench.measure(f"8. hub_push of {big} (~77 MB) > GAN_MAX_MODEL_MB", "trainer busy",
                      lambda: hub_push_big(bench, big))  # fmt: skip
    bench.measure("6. five more visitors press Start", "trainer busy", lambda: line_attack(bench))
    bench.measure("6b. line full: a visitor uploads attack 3's zip", "trainer busy",
                  lambda: line_full_upload(bench, files["huge"]))  # fmt: skip
    bench.measure("6c. the first in line leaves", "trainer busy", lambda: one_leaves(bench))
    bench.measure("quiet again: the victim alone", "baseline", lambda: ("-", ""), window=bench.args.quiet)
    bench.measure("7b. victim stops; a stranger resumes its run", "after", lambda: resume_after_stop(bench, run),
                  track=False)  # fmt: skip


def table(rows: list[Row]) -> str:
    def cell(s: Any) -> str:
        return str(s).replace("|", "\\|")

    lines = ["| attack | path | refused? | message | peak server RSS MB | peak child RSS MB | disk growth MB "
             "(peak) | victim steps/s vs quiet | s |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        disk = f"{r.disk_mb:+.1f} ({r.disk_peak_mb:+.1f})"
        mem = (f"{r.server_mb:.0f}", f"{r.child_mb:.0f}")
        msg = cell(first_line(r.message, 160))
        lines.append(f"| {cell(r.attack)} | {r.path} | {cell(r.refused)} | {msg} | {mem[0]} | {mem[1]} | {disk} "
                     f"| {cell(r.victim)} | {r.seconds:.0f} |")  # fmt: skip
    return "\n".join(lines)


def report(rows: list[Row], header: str, out: Path) -> None:
    text = f"{header}\n\n{table(rows)}\n"
    print("\n" + text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    print(f"written: {out} (+ .json)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=str(ROOT / "weights"), help="model folders for the app (copied)")
    p.add_argument("--runs", default=None, help="the app's runs folder (default: in the temporary folder)")
    p.add_argument("--quiet", type=float, default=30.0, help="seconds the victim trains alone, before and after")
    p.add_argument("--window", type=float, default=8.0, help="the least seconds each attack is watched")
    p.add_argument("--out", default=None, help="the Markdown table (default: benchmarks/results/abuse_<CPU>.md)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (its app.log)")
    args = p.parse_args()

    import torch

    from gan.device import cpu_info

    started = time.time()
    info = cpu_info()
    load0 = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, {info.describe()}; load average {load0:.2f} (shared with other work: "
          "the victim's speed and the timings move with it)", flush=True)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="ganlab-abuse-"))
    runs = Path(args.runs) if args.runs else tmp / "app" / "runs"
    files, weights, big = make_files(tmp / "files", Path(args.weights))
    hub = start_hub()
    app, url = start_app(args, tmp, weights, runs, hub)
    mon = None
    try:
        wait_up(url, app)
        roots = [tmp / "app"] + ([runs] if not runs.is_relative_to(tmp / "app") else [])
        mon = Monitor(app.pid, roots, limit_s=1800)
        bench = Bench(url, app, mon, runs, args)
        try:
            scenario(bench, files, big, hub)
        finally:
            for c in bench.opened + bench.line + ([bench.victim] if bench.victim else []):
                c.close()
        hwm = next((ln.split()[1] for ln in Path(f"/proc/{app.pid}/status").read_text().splitlines()
                    if ln.startswith("VmHWM:")), "?")  # fmt: skip
        alive = "The server stayed up" if app.poll() is None else f"THE SERVER EXITED ({app.returncode})"
        header = (
            f"# benchmarks/abuse.py on {os.cpu_count()}-core {info.describe()}, CPU class {info.cpu_class}, "
            f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}\n\n"
            f"A Space's limits (SPACE_ID set, defaults). The machine is shared with other work (load average "
            f"{load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end), so the victim's speed and the "
            f"timings move with it. Victim: built-in shapes, 32 px, batch 32, widths 32, 20,000 steps. "
            f"Memory: peak VmRSS sampled every 50 ms (children: `gan.worker` processes summed, the victim's "
            f"training child included while it trains); disk: the temporary folder (uploads, scratch, caches, "
            f"runs) at the end of each attack (its peak during it). The victim's rate comes from the `progress` "
            f"endpoint's step (it moves in 10-step jumps); the rows of attacks refused at once (4, 7, 8) show how "
            f"much it moves by itself on this machine. {alive}; its lifetime VmHWM {int(hwm) // 1024} MB. Wall "
            f"time {time.time() - started:.0f} s."
        )
        report(bench.rows, header, Path(args.out or ROOT / "benchmarks" / "results" / f"abuse_{info.cpu_class}.md"))
    finally:
        if mon is not None:
            mon.stop()
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
        if hub is not None:
            hub.stop()
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
