"""Round-trip latency of the app's two interactive endpoints, as a client sees it.

    python benchmarks/ui_latency.py                       # launches the app on a free port
    python benchmarks/ui_latency.py --url http://127.0.0.1:7860/ --model cats64
    python benchmarks/ui_latency.py --calls 50 --model-size 32
    python benchmarks/ui_latency.py --only browser --moves 100 --json benchmarks/results/ui_latency_browser.json

Through gradio_client: `--calls` calls of `interpolate` with t sweeping 0..1 (what a dragged slider
sends), then `--calls` calls of `sample` with n=64 and a new seed each time. Each time covers the
queue, the generator, PNG encoding and the client's download of the image. Prints p50 / p95 / mean
in milliseconds. Without --url the app is launched here on the model in --weights (cats64 when
present); when that folder holds no model, a fresh untrained generator of --model-size pixels
(the default 64-px DCGAN) is written to a temporary folder, so the timing covers the real network
size even before the shipped weights exist.

In the browser (`--only browser`, or both by default; needs the playwright pip package, /usr/bin/chromium
and node_modules/onnxruntime-web from `npm ci`): headless Chromium opens the Interpolate tab and presses
the `t` slider's arrow key `--moves` times, one move at a time. A move's latency runs from the input
event's own timestamp to its pixels: for the in-browser path until the canvas holds the new image
(the view's render for that t has finished), for the server path (the same page with the runtime
URL blocked, so the view falls back to the `interpolate` endpoint) until the new server image has
loaded and decoded. The runtime's pinned CDN URL is routed to the npm files on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
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


def stats(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(percentile(ms, 0.5), 2), "p95_ms": round(percentile(ms, 0.95), 2),
            "mean_ms": round(statistics.fmean(ms), 2)}  # fmt: skip


def report(name: str, ms: list[float]) -> str:
    if not ms:
        return f"{name:<32} no measurements"
    return (
        f"{name:<32} p50 {percentile(ms, 0.5):7.1f} ms   p95 {percentile(ms, 0.95):7.1f} ms   "
        f"mean {statistics.fmean(ms):7.1f} ms   ({len(ms)} calls)"
    )


CHROMIUM = "/usr/bin/chromium"
ORT_DIST = ROOT / "node_modules" / "onnxruntime-web" / "dist"
CDN_PREFIX = "https://cdn.jsdelivr.net/npm/onnxruntime-web@"

# in the page: each input event on the t slider starts a clock (its own timeStamp); the move is done when
# the canvas shows a render for that t (browser) or the server image's new src has decoded (server)
PROBE = """() => {
  window.ganLat = [];
  const view = () => document.querySelector("#interp-view [data-gan-mode]");
  const slider = document.querySelector("#t input[type=range]");
  let pending = null;
  slider.addEventListener("input", (ev) => { pending = { t0: ev.timeStamp, t: Number(slider.value),
      renders: view().ganView?.renders ?? 0, src: document.querySelector("#interp-image img")?.src }; });
  const tick = async () => {
    if (pending) {
      const v = view().ganView;
      const img = document.querySelector("#interp-image img");
      if (v && v.mode === "browser" && v.renders > pending.renders && v.last?.params?.t === pending.t) {
        window.ganLat.push({ where: "browser", ms: performance.now() - pending.t0, render_ms: v.last.ms });
        pending = null;
      } else if (v && v.mode !== "browser" && img && img.src !== pending.src) {
        const p = pending;
        pending = null;
        try { await img.decode(); } catch (e) {}
        window.ganLat.push({ where: "server", ms: performance.now() - p.t0 });
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


STATE = """() => { const el = document.querySelector("#interp-view [data-gan-mode]");
  return el ? {...el.dataset} : null; }"""


def cpu_line() -> str:
    from gan.device import cpu_info

    load = os.getloadavg()
    return f"{cpu_info().describe()}; {os.cpu_count()} cores; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def serve_ort() -> http.server.ThreadingHTTPServer:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            return str(ORT_DIST / Path(path.split("?")[0]).name)

        def end_headers(self) -> None:
            self.send_header("Access-Control-Allow-Origin", "*")
            super().end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def router(ort_base: str, *, block: bool):
    """Playwright route handler: 127.0.0.1 as is, the pinned CDN to the npm files (or refused), nothing else."""

    def route(r):
        u = r.request.url
        if u.startswith(("http://127.0.0.1", "blob:", "data:")):
            return r.continue_()
        if u.startswith(CDN_PREFIX) and not block:
            loc = f"{ort_base}/{u.rsplit('/', 1)[1]}"
            return r.fulfill(status=302, headers={"Location": loc, "Access-Control-Allow-Origin": "*"})
        r.abort("internetdisconnected")

    return route


def browser_latency(url: str, moves: int, warmup: int) -> dict[str, list[float]]:
    """Slider-move-to-pixels latency (ms) of the Interpolate tab's t slider, in-browser and server paths."""
    from playwright.sync_api import sync_playwright

    if not ORT_DIST.is_dir():
        raise SystemExit("node_modules/onnxruntime-web is missing: run `npm ci` in the repo root")
    ort = serve_ort()
    base = f"http://127.0.0.1:{ort.server_address[1]}"
    out: dict[str, list[float]] = {}
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"])
            for path in ("browser", "server"):
                page = b.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(180_000)

                page.route("**/*", router(base, block=path == "server"))
                page.goto(url)
                page.get_by_role("tab", name="Interpolate").click()
                want = "browser" if path == "browser" else "server"
                page.on("console", lambda m: print("console:", m.text[:200]) if m.type == "error" else None)
                deadline = time.monotonic() + 300  # the first visit: the model's export, then the runtime's load
                while True:
                    st = page.evaluate(STATE)
                    ok = st and st.get("ganMode") == want
                    if ok and (
                        st.get("ganRendered") if want == "browser" else "could not load" in st.get("ganReason", "")
                    ):
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the {path} path never became ready: {st}")
                    page.wait_for_timeout(250)
                page.locator("#interp-image img").wait_for(state="attached")
                print(f"{path} path: the page is ready; {moves} moves", flush=True)
                page.evaluate(PROBE)
                page.locator("#t input[type=range]").focus()
                ms: list[float] = []
                for i in range(warmup + moves):
                    key = "ArrowRight" if (i // 40) % 2 == 0 else "ArrowLeft"  # t 0.5 -> 0.9 -> 0.5 ...
                    n = page.evaluate("window.ganLat.length")
                    page.keyboard.press(key)
                    try:
                        page.wait_for_function(f"window.ganLat.length > {n}", timeout=15_000)
                    except Exception:  # noqa: BLE001 - e.g. an identical server image (same URL): not counted
                        continue
                    got = page.evaluate("window.ganLat[window.ganLat.length - 1]")
                    if got["where"] != path:
                        raise SystemExit(f"expected the {path} path, the page rendered {got}")
                    if i >= warmup:
                        ms.append(got["ms"])
                out[path] = ms
                page.close()
            b.close()
    finally:
        ort.shutdown()
        ort.server_close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running app; default: launch one here")
    p.add_argument("--model", help="model picker value (default: the app's default model)")
    p.add_argument("--weights", default=str(ROOT / "weights"), help="weights folder when launching")
    p.add_argument("--model-size", type=int, default=64, help="image size of the untrained stand-in model")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--only", choices=["client", "browser"], help="one part only (default: both)")
    p.add_argument("--moves", type=int, default=100, help="slider moves per path in the browser")
    p.add_argument("--json", help="also write the figures (and the CPU line) to this file")
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
        from gan.ui import launch_options

        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
        url = f"http://127.0.0.1:{port}/"
        model = model or demo.lab.models.default()
        print(f"app launched at {url}; model {model}: {demo.lab.models.info(model)}")
    else:
        url = args.url

    results: dict[str, dict] = {}
    try:
        print(cpu_line())
        if args.only in (None, "client"):
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
            results["client_interpolate"], results["client_sample"] = stats(r1), stats(r2)
        if args.only in (None, "browser"):
            got = browser_latency(url, args.moves, args.warmup)
            for path, ms in got.items():
                print(report(f"slider move -> pixels ({path})", ms))
                results[f"browser_page_{path}_path"] = stats(ms)
    finally:
        if demo is not None:
            demo.close()
    if args.json:
        record = {"model": model, "cpu": cpu_line(), "machine": platform.machine(), "results": results,
                  "when": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
