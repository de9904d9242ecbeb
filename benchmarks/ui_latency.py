"""Round-trip latency of the app's two interactive endpoints, as a client sees it.

    python benchmarks/ui_latency.py                       # launches the app on a free port
    python benchmarks/ui_latency.py --url http://127.0.0.1:7860/ --model cats64
    python benchmarks/ui_latency.py --calls 50 --model-size 32

Through gradio_client: `--calls` calls of `interpolate` with t sweeping 0..1 (what a dragged slider
sends), then `--calls` calls of `sample` with n=64 and a new seed each time. Each time covers the
queue, the generator, PNG encoding and the client's download of the image. Prints p50 / p95 / mean
in milliseconds. Without --url the app is launched here on the model in --weights (cats64 when
present); when that folder holds no model, a fresh untrained generator of --model-size pixels
(the default 64-px DCGAN) is written to a temporary folder, so the timing covers the real network
size even before the shipped weights exist.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def timed(fn, calls: int) -> list[float]:
    out = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def report(name: str, ms: list[float]) -> str:
    return (
        f"{name:<32} p50 {percentile(ms, 0.5):7.1f} ms   p95 {percentile(ms, 0.95):7.1f} ms   "
        f"mean {statistics.fmean(ms):7.1f} ms   ({len(ms)} calls)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running app; default: launch one here")
    p.add_argument("--model", help="model picker value (default: the app's default model)")
    p.add_argument("--weights", default=str(ROOT / "weights"), help="weights folder when launching")
    p.add_argument("--model-size", type=int, default=64, help="image size of the untrained stand-in model")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args(argv)

    from gradio_client import Client

    demo = None
    model = args.model
    if args.url is None:
        import gan
        from gan.ui import Settings, build_app
        from gan.ui.models import is_model_dir

        weights = Path(args.weights)
        has_model = weights.is_dir() and any(is_model_dir(d) for d in weights.iterdir() if d.is_dir())
        if not has_model:
            weights = Path(tempfile.mkdtemp(prefix="ui-latency-")) / "weights"
            name = f"untrained{args.model_size}"
            gan.save_model(gan.Generator(gan.ModelConfig(image_size=args.model_size)), weights / name)
            print(f"no model in {args.weights}: using a fresh untrained {gan.ModelConfig(image_size=args.model_size)}")
        demo = build_app(Settings(weights_dir=weights, runs_dir=Path(tempfile.mkdtemp(prefix="ui-latency-runs-"))))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
        url = f"http://127.0.0.1:{port}/"
        model = model or demo.lab.models.default()
        print(f"app launched at {url}; model {model}: {demo.lab.models.info(model)}")
    else:
        url = args.url

    try:
        client = Client(url, verbose=False)

        def interp(i: int) -> None:
            t = (i % 100) / 99  # a slider dragged back and forth
            client.predict(model=model, seed_a=1, seed_b=2, t=t, api_name="/interpolate")

        def sample(i: int) -> None:
            client.predict(model=model, seed=1000 + 64 * i, n=64, truncation=1.0, api_name="/sample")

        timed(interp, args.warmup)
        timed(sample, args.warmup)
        r1 = timed(interp, args.calls)
        r2 = timed(sample, args.calls)
        print(report("interpolate (t changing)", r1))
        print(report("sample (n=64)", r2))
    finally:
        if demo is not None:
            demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
