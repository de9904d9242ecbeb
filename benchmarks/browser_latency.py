"""Slider-move-to-pixels latency of the in-browser generator (ONNX + onnxruntime-web), in a real browser.

    python benchmarks/browser_latency.py                      # cats64, 200 key moves + a mouse drag
    python benchmarks/browser_latency.py --model weights/mnist32 --moves 400 --json out.json

The page holds a plain <input type=range> (what a Gradio slider is underneath) and the view of
gan/ui/static/browser_gen.js on an interpolation between two seeds. Headless Chromium
(/usr/bin/chromium) gets real input from Playwright: arrow-key presses, one at a time (each waits
for its image), then a fast mouse drag across the slider (moves arrive faster than frames; the view
renders the latest and each move counts until the image that covers it). A move's latency runs from
the input event's own timestamp to (a) the pixels being in the canvas (putImageData done) and (b) the
next animation frame, the one that paints them. The runtime is served from 127.0.0.1 (node_modules,
`npm ci`), as a deployment with GAN_ORT_URL would; its load time from a CDN is not measured here.
Needs the playwright pip package, onnxruntime (the export check) and node_modules/onnxruntime-web.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ORT_DIST = ROOT / "node_modules" / "onnxruntime-web" / "dist"
JS = ROOT / "gan" / "ui" / "static" / "browser_gen.js"

PAGE = """<!doctype html><meta charset="utf-8">
<input id="t" type="range" min="0" max="1" step="0.002" value="0" style="width: 600px">
<div id="view" style="width: 256px"></div>"""

MOUNT = """async ([payload, base]) => {
  const g = await import("/static/browser_gen.js");
  const manifest = await (await fetch("/manifest.json")).json();
  const t0 = performance.now();
  const rt = await g.loadRuntime({base});
  const t1 = performance.now();
  window.view = await g.mountView(document.getElementById("view"),
                                  {modelUrl: "/model.onnx", manifest, payload, runtime: {base}});
  const t2 = performance.now();
  window.lat = {pixels: [], frame: [], render: []};
  const range = document.getElementById("t");
  range.addEventListener("input", (ev) => {
    const start = ev.timeStamp;  // when the browser got the input
    view.show({t: Number(range.value)}).then((res) => {
      if (res.where !== "browser") return;
      lat.pixels.push(performance.now() - start);
      lat.render.push(res.ms);
      requestAnimationFrame(() => lat.frame.push(performance.now() - start));
    });
  });
  return {mode: view.mode, reason: view.reason, runtime_ms: t1 - t0, model_ms: t2 - t1, threads: rt.threads,
          version: rt.version, ua: navigator.userAgent};
}"""


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "p50": pct(xs, 0.5), "p95": pct(xs, 0.95), "mean": statistics.fmean(xs), "max": max(xs)}


def serve(files: dict[str, Path]) -> http.server.ThreadingHTTPServer:
    class Site(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            path = path.split("?")[0]
            p = files.get(path) or (ORT_DIST / Path(path).name if path.startswith("/ort/") else None)
            return str(p) if p is not None else "/nonexistent"

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "weights" / "cats64"), help="model folder or Hub repo id")
    ap.add_argument("--moves", type=int, default=200, help="arrow-key moves, one at a time")
    ap.add_argument("--drag-steps", type=int, default=300, help="mouse moves in the fast drag")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if not ORT_DIST.is_dir():
        sys.exit("node_modules/onnxruntime-web is missing: run `npm ci` in the repo root")

    import tempfile

    from playwright.sync_api import sync_playwright

    from gan import load_model
    from gan.device import cpu_info
    from gan.onnx_export import export_onnx, interpolate_payload

    G = load_model(args.model)
    t = time.perf_counter()
    exp = export_onnx(G)
    export_s = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp(prefix="gan-browser-latency-"))
    (tmp / "index.html").write_text(PAGE)
    (tmp / "manifest.json").write_text(json.dumps(exp.manifest))
    server = serve({"/": tmp / "index.html", "/manifest.json": tmp / "manifest.json", "/model.onnx": exp.path,
                    "/static/browser_gen.js": JS})  # fmt: skip
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(120_000)
        page.goto(url)
        info = page.evaluate(MOUNT, [interpolate_payload(G, 3, 7), "/ort/"])
        if info["mode"] != "browser":
            sys.exit(f"the in-browser path did not load: {info['reason']}")
        page.focus("#t")
        for _ in range(10):  # warm-up, not counted
            page.keyboard.press("ArrowRight")
        page.wait_for_function("lat.frame.length >= 10")
        page.evaluate("lat.pixels = []; lat.frame = []; lat.render = []")
        for i in range(args.moves):
            page.keyboard.press("ArrowRight" if (i // 100) % 2 == 0 else "ArrowLeft")
            page.wait_for_function(f"lat.frame.length >= {i + 1}")
        keys = page.evaluate("lat")
        page.evaluate("lat.pixels = []; lat.frame = []; lat.render = []")
        box = page.locator("#t").bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + 2, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] - 2, y, steps=args.drag_steps)
        page.mouse.up()
        page.wait_for_timeout(500)
        drag = page.evaluate("lat")
        renders = page.evaluate("view.renders")
        browser.close()
    server.shutdown()

    result = {
        "model": str(Path(args.model).resolve().relative_to(ROOT))
        if Path(args.model).resolve().is_relative_to(ROOT)
        else str(args.model),
        "load_avg_1min": os.getloadavg()[0],  # other work on the machine while measuring
        "size": f"{G.config.channels}x{G.config.image_size}x{G.config.image_size}",
        "cpu": cpu_info().describe(),
        "cpu_class": cpu_info().cpu_class,
        "browser": info["ua"].split(") ")[-1],
        "onnxruntime_web": info["version"],
        "wasm_threads": info["threads"],
        "export_s": export_s,
        "max_abs_diff": exp.max_abs_diff,
        "runtime_load_ms": info["runtime_ms"],
        "model_load_ms": info["model_ms"],
        "keys_pixels_ms": summary(keys["pixels"]),
        "keys_frame_ms": summary(keys["frame"]),
        "keys_run_ms": summary(keys["render"]),
        "drag_pixels_ms": summary(drag["pixels"]),
        "drag_frame_ms": summary(drag["frame"]),
        "drag_moves": len(drag["pixels"]),
        "renders_total": renders,
    }
    print(
        f"in-browser generator, {result['model']} ({result['size']}), {result['cpu']}, "
        f"load average {result['load_avg_1min']:.1f}"
    )
    threads = result["wasm_threads"]
    print(f"  {result['browser']}, onnxruntime-web {result['onnxruntime_web']}, {threads} wasm thread(s)")
    print(f"  export or cache hit {export_s:.2f} s (max |onnx - torch| {exp.max_abs_diff:.1e}); runtime load "
          f"{info['runtime_ms']:.0f} ms from 127.0.0.1, model load + first run {info['model_ms']:.0f} ms")  # fmt: skip
    rows = [
        ("key move -> pixels in canvas", "keys_pixels_ms"),
        ("key move -> next frame", "keys_frame_ms"),
        ("  of which model run + draw", "keys_run_ms"),
        ("drag move -> pixels in canvas", "drag_pixels_ms"),
        ("drag move -> next frame", "drag_frame_ms"),
    ]
    for name, key in rows:
        s = result[key]
        print(f"  {name:32s} p50 {s['p50']:6.1f} ms  p95 {s['p95']:6.1f} ms  mean {s['mean']:6.1f}  (n={s['n']})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
