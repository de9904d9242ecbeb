"""Load: N gradio_client users sample and slide for a while, as one training job runs.

Starts the real app (`python app.py`) on 127.0.0.1, starts one training run through the `train`
endpoint, checks that a second trainer gets the busy message, then lets N users (threads, each
with its own client) alternate `sample` and `interpolate` calls for the given time. Prints the
requests served, errors (must be 0), p50/p95 latency per endpoint and the training progress made
meanwhile. All traffic stays on the loopback; every loop is bounded in count and time.

    python benchmarks/load.py --users 20 --seconds 60
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--weights", default=str(ROOT / "weights"), help="model folders for the app")
    p.add_argument("--max-requests", type=int, default=20_000, help="a hard bound on calls in all")
    args = p.parse_args()

    from gradio_client import Client

    tmp = Path(tempfile.mkdtemp(prefix="ganlab-load-"))
    weights = Path(args.weights)
    if not any((d / "model.safetensors").exists() for d in weights.glob("*")):
        from gan import Generator, ModelConfig, save_model

        weights = tmp / "weights"
        save_model(Generator(ModelConfig()), weights / "cats64")  # an untrained 64 px model
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--host", "127.0.0.1",
         "--weights", str(weights), "--runs", str(tmp / "runs")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "app.log", "w"),
    )  # fmt: skip
    try:
        wait_up(url, app)
        admin = Client(url, verbose=False)
        names = sorted(d.name for d in weights.iterdir() if (d / "model.safetensors").exists())
        model = "cats64" if "cats64" in names else names[0]
        print(admin.predict(source="synthetic", image_size=32, steps=100_000, batch_size=32, api_name="/train"))
        busy = None
        try:
            Client(url, verbose=False).predict(source="synthetic", steps=10, api_name="/train")
        except Exception as e:  # the second trainer is turned away with a message
            busy = str(e)
        print(f"second trainer: {busy!r}")

        lat: dict[str, list[float]] = {"sample": [], "interpolate": []}
        errors: list[str] = []
        count = [0]
        lock = threading.Lock()
        stop_at = time.time() + args.seconds

        def user(i: int) -> None:
            rng = random.Random(i)
            c = Client(url, verbose=False)
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
                        c.predict(model, rng.randrange(10_000), rng.choice([1, 4, 16]), 1.0, api_name="/sample")
                        name = "sample"
                    else:
                        c.predict(model, i, i + 1, (k % 20) / 19, api_name="/interpolate")
                        name = "interpolate"
                    with lock:
                        lat[name].append(time.perf_counter() - t0)
                except Exception as e:  # every failure is counted and shown
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}"[:200])

        before = admin.predict(api_name="/progress")[0]
        threads = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds + 120)
        wall = time.time() - t0
        after = admin.predict(api_name="/progress")[0]
        admin.predict(api_name="/stop")

        served = sum(len(v) for v in lat.values())
        print(f"{args.users} users for {wall:.0f} s while training: {served} requests served "
              f"({served / wall:.1f}/s), errors {len(errors)}")  # fmt: skip
        for name, xs in lat.items():
            if xs:
                print(f"  {name:11s} n={len(xs):5d}  p50 {1e3 * statistics.median(xs):7.0f} ms  "
                      f"p95 {1e3 * pct(xs, 0.95):7.0f} ms")  # fmt: skip
        print(f"training meanwhile: step {before.get('step')} -> {after.get('step')} ({after.get('status')})")
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
