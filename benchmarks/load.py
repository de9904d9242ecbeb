"""Load: N users sample and slide for a while, as one training job runs.

Starts the real app (`python app.py`) on 127.0.0.1, starts one training run through the `train`
endpoint, checks that a second trainer gets the busy message, measures the run's speed alone, then
lets N users (threads, each with its own client and Gradio session like a browser page, no pauses:
the worst case) alternate `sample` and `interpolate` calls for the given time, then measures the
run alone again. Prints both sides: the training img/s alone and with the users (the target: >= 60 %
of alone), and p50/p95 latency per endpoint (the target: p95 of a single image < 500 ms), with the
machine's load average (other work on the machine skews both). All traffic stays on the loopback;
every loop is bounded in count and time.

    python benchmarks/load.py --users 20 --seconds 60
    python benchmarks/load.py --render-share 1   # renders not throttled while training: compare
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import urllib.request

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit(f"the app exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"the app did not answer at {url} within {timeout:.0f} s")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


class Caller:
    """A light client that calls like a browser page: one Gradio session for all its calls (POST
    /gradio_api/queue/join with the session's hash, then read the session's event stream until
    `process_completed`), one keep-alive connection. (Gradio's stateless /call/ route makes a new
    session per call, and a new session of this app costs about 60 ms of CPU building the state of
    every component: a real visitor pays that once per page.) gradio_client costs several times
    the CPU per call (threads, file downloads), and here it shares the 2 cores with the server."""

    def __init__(self, url: str, fn_index: dict[str, int]):
        import uuid

        import httpx

        self.url, self.http = url.rstrip("/"), httpx.Client(timeout=120)
        self.fn_index, self.session = fn_index, uuid.uuid4().hex[:11]

    @staticmethod
    def endpoints(url: str) -> dict[str, int]:
        import httpx

        deps = httpx.get(url.rstrip("/") + "/config", timeout=60).json()["dependencies"]
        return {d["api_name"]: d["id"] for d in deps if d.get("api_name")}

    def __call__(self, api: str, *data) -> None:
        body = {"data": list(data), "fn_index": self.fn_index[api], "session_hash": self.session,
                "event_data": None, "trigger_id": None}  # fmt: skip
        r = self.http.post(f"{self.url}/gradio_api/queue/join", json=body)
        r.raise_for_status()
        event_id = r.json()["event_id"]
        params = {"session_hash": self.session}
        with self.http.stream("GET", f"{self.url}/gradio_api/queue/data", params=params) as s:
            for line in s.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") == event_id and msg.get("msg") == "process_completed":
                    if not msg.get("success", True):
                        raise RuntimeError(f"{api}: {str(msg.get('output'))[:200]}")
                    return


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TrainLog:
    """The run's speed from its log.jsonl: steps and the run's own clock (`elapsed_s`) of its
    StepLog events, written every 10 steps. Exact at those marks, where the progress endpoint's step
    alone would be off by up to 10 steps: at 64 px a minute holds about 70."""

    def __init__(self, runs: Path, run: str, batch: int):
        self.path, self.batch = runs / run / "log.jsonl", batch

    def mark(self) -> tuple[int, float]:
        from gan.runlog import read_log

        last = read_log(self.path, events=("StepLog",))[-1]
        return last["step"], last["elapsed_s"]

    def img_per_s(self, a: tuple[int, float], b: tuple[int, float]) -> float:
        return (b[0] - a[0]) * self.batch / max(b[1] - a[1], 1e-9)

    def speed(self, seconds: float) -> float:
        """img/s between the last marks before and after `seconds` of waiting."""
        a = self.mark()
        time.sleep(seconds)
        return self.img_per_s(a, self.mark())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0, help="how long the users sample while it trains")
    p.add_argument("--solo", type=float, default=30.0, help="seconds of training alone, before and after the users")
    p.add_argument("--weights", default=str(ROOT / "weights"), help="model folders for the app")
    p.add_argument("--image-size", type=int, default=32, help="the training run's image size (synthetic shapes)")
    p.add_argument("--batch", type=int, default=32, help="the training run's batch size")
    p.add_argument("--train-threads", type=int, default=None, help="GAN_TRAIN_THREADS for the app (default: adaptive)")
    p.add_argument("--max-requests", type=int, default=20_000, help="a hard bound on calls in all")
    p.add_argument("--render-share", type=float, default=None, help="GAN_RENDER_SHARE for the app (default: its own)")
    p.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval for the app (seconds)")
    p.add_argument("--concurrency", type=int, default=None, help="the app's default queue concurrency (an experiment)")
    args = p.parse_args()

    from gradio_client import Client

    from gan.device import cpu_info

    tmp = Path(tempfile.mkdtemp(prefix="ganlab-load-"))
    weights = Path(args.weights)
    if not any((d / "model.safetensors").exists() for d in weights.glob("*")):
        from gan import Generator, ModelConfig, save_model

        weights = tmp / "weights"
        save_model(Generator(ModelConfig()), weights / "cats64")  # an untrained 64 px model
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    if args.render_share is not None:
        env["GAN_RENDER_SHARE"] = str(args.render_share)
    if args.train_threads is not None:
        env["GAN_TRAIN_THREADS"] = str(args.train_threads)
    print(f"machine: {os.cpu_count()} CPUs, {cpu_info().describe()}; load average {os.getloadavg()[0]:.2f}")
    launcher = [sys.executable, str(ROOT / "app.py")]
    if args.switch_interval is not None or args.concurrency is not None:  # experiments on the launcher's knobs
        code = "import sys, runpy, functools, gradio; "
        if args.switch_interval is not None:  # the GIL handed over more often
            code += f"sys.setswitchinterval({args.switch_interval}); "
        if args.concurrency is not None:  # more requests of one endpoint at a time
            code += (f"q = gradio.Blocks.queue; gradio.Blocks.queue = lambda self, **kw: q(self, "
                     f"**{{**kw, 'default_concurrency_limit': {args.concurrency}}}); ")  # fmt: skip
        code += "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
        launcher = [sys.executable, "-c", code, str(ROOT / "app.py")]
    app = subprocess.Popen(
        [*launcher, "--port", str(port), "--host", "127.0.0.1", "--weights", str(weights), "--runs", str(tmp / "runs")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "app.log", "w"),
    )  # fmt: skip
    try:
        wait_up(url, app)
        admin = Client(url, verbose=False)
        names = sorted(d.name for d in weights.iterdir() if (d / "model.safetensors").exists())
        model = "cats64" if "cats64" in names else names[0]
        print(
            admin.predict(
                source="synthetic", image_size=args.image_size, steps=100_000, batch_size=args.batch, api_name="/train"
            )
        )
        busy = None
        try:
            Client(url, verbose=False).predict(source="synthetic", steps=10, api_name="/train")
        except Exception as e:  # the second trainer is turned away with a message
            busy = str(e)
        print(f"second trainer: {busy!r}")
        t0 = time.time()
        while admin.predict(api_name="/progress")[0]["step"] < 20:  # past the first steps' warm-up
            if time.time() - t0 > 120:
                sys.exit("training did not reach step 20 in 2 minutes")
            time.sleep(1)
        log = TrainLog(tmp / "runs", admin.predict(api_name="/progress")[0]["run"], args.batch)
        solo1 = log.speed(args.solo)
        threads_solo = admin.predict(api_name="/progress")[0].get("threads")
        print(f"training alone: {solo1:.0f} img/s (load average {os.getloadavg()[0]:.2f})")

        lat: dict[str, list[float]] = {"sample n=1": [], "sample n=4/16": [], "interpolate": []}
        errors: list[str] = []
        count = [0]
        lock = threading.Lock()

        fns = Caller.endpoints(url)
        clients = [Caller(url, fns) for _ in range(args.users)]  # connected before the clock starts

        def user(i: int) -> None:
            rng = random.Random(i)
            c = clients[i]
            k = 0
            while time.time() < stop_at:
                with lock:
                    if count[0] >= args.max_requests:
                        return
                    count[0] += 1
                k += 1
                t0 = time.perf_counter()
                try:
                    if k % 4 == 0:
                        n = rng.choice([1, 1, 4, 16])
                        c("sample", model, rng.randrange(10_000), n, 1.0)
                        name = "sample n=1" if n == 1 else "sample n=4/16"
                    else:
                        c("interpolate", model, i, i + 1, (k % 20) / 19, "slerp", 1.0, 0, 0, 0, 0, 0)
                        name = "interpolate"
                    with lock:
                        lat[name].append(time.perf_counter() - t0)
                except Exception as e:  # every failure is counted and shown
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}"[:200])

        before = log.mark()
        cpu0 = (cpu_seconds(app.pid), time.process_time())
        stop_at = time.time() + args.seconds
        threads = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds + 120)
        wall = time.time() - t0
        cpu_app, cpu_users = cpu_seconds(app.pid) - cpu0[0], time.process_time() - cpu0[1]
        after = log.mark()
        threads_crowd = admin.predict(api_name="/progress")[0].get("threads")
        crowd = log.img_per_s(before, after)
        load_crowd = os.getloadavg()[0]
        solo2 = log.speed(args.solo)
        admin.predict(api_name="/stop")
        solo = (solo1 + solo2) / 2

        served = sum(len(v) for v in lat.values())
        print(f"{args.users} users for {wall:.0f} s while training: {served} requests served "
              f"({served / wall:.1f}/s), errors {len(errors)}")  # fmt: skip
        for name, xs in lat.items():
            if xs:
                print(f"  {name:14s} n={len(xs):5d}  p50 {1e3 * statistics.median(xs):7.0f} ms  "
                      f"p95 {1e3 * pct(xs, 0.95):7.0f} ms")  # fmt: skip
        print(f"CPU meanwhile: the app {cpu_app / wall:.2f} cores, the {args.users} users (this process) "
              f"{cpu_users / wall:.2f} cores, of {os.cpu_count()}")  # fmt: skip
        print(f"training's torch threads (now, at start): alone {threads_solo}, with the users {threads_crowd}")
        print(f"training: alone {solo1:.0f} img/s before, {solo2:.0f} after (mean {solo:.0f}); with {args.users} "
              f"users {crowd:.0f} img/s = {100 * crowd / solo:.0f} % of alone "
              f"(step {before[0]} -> {after[0]}; load average {load_crowd:.2f})")  # fmt: skip
        p95_one = pct(lat["sample n=1"], 0.95)
        ok = crowd >= 0.6 * solo and p95_one < 0.5
        print(f"targets (training >= 60 % of alone, p95 of a single image < 500 ms): {'met' if ok else 'NOT met'}")
        print(f"busy message to a second trainer: {busy}")
        for e in errors[:5]:
            print("  error:", e)
        if errors or not busy:
            sys.exit(1)
    finally:
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()


if __name__ == "__main__":
    main()
