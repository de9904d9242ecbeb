"""The in-browser generator as a Gradio component: one `gr.HTML` per live image.

The view (static/gradio_on_load.js + static/browser_gen.js) runs the model's ONNX export with
onnxruntime-web in the visitor's browser and redraws a canvas on every move of the sliders it is
given (by elem_id), without a server call. The server sends, once per seed / model change, the few
latents the browser needs (`gan.onnx_export.*_payload`). When the runtime cannot load or the model
cannot be exported, the view triggers its `submit` event on each move instead, and the tab binds
that to the usual server endpoint (same API name and parameters): the server image shows as before.
The runtime comes from this app when its pinned files are installed next to it (local_ort_dir: the
npm copy; or GAN_ORT_URL's folder), else from GAN_ORT_URL's URL or the pinned CDN (runtime_base).

    view = browser_view.make(settings, "interp-view", controls={"t": "#t"}, server_image="#interp-image")
    view.submit(endpoint(ep.interpolate, lab), inputs, image, api_name="interpolate", **browser_view.LIVE)
    seed.change(lambda key, a, b, mode: browser_view.props(lab, key, lambda G: interpolate_payload(...)), ...)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from gan import fileio
from gan.onnx_export import OnnxExportError, export_onnx

from .common import USER_ERRORS
from .lab import Lab
from .settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
ORT_CANDIDATES = [Path(__file__).resolve().parents[2] / "node_modules" / "onnxruntime-web" / "dist"]  # npm ci
TEMPLATE = '<div class="gan-view"><canvas style="display: none"></canvas><small data-gan-where></small></div>'
LIVE = dict(trigger_mode="always_last", show_progress="hidden")  # slider events: the newest position wins
CSS = """
.gan-view { display: flex; flex-direction: column; align-items: center; }
.gan-view canvas { border-radius: var(--block-radius, 8px); }
.gan-view small[data-gan-where] { opacity: 0.6; font-size: 0.75em; margin-top: 2px; }
"""


def _js_constant(name: str) -> str:
    m = re.search(rf"export const {name} = (.+?);\n", (STATIC / "browser_gen.js").read_text(), re.S)
    if m is None:
        raise RuntimeError(f"browser_gen.js has no {name}")
    return m.group(1)


def pinned_runtime() -> dict[str, tuple[str, str]]:
    """The onnxruntime-web files the page loads, as browser_gen.js pins them: {"module": (file name,
    SRI hash), "wasm": (...)}."""
    files = dict(re.findall(r'(\w+): "([^"]+)"', _js_constant("ORT_FILES")))
    sri = dict(re.findall(r'(\w+): "(sha384-[^"]+)"', _js_constant("ORT_INTEGRITY")))
    return {k: (files[k], sri[k]) for k in files}


@functools.lru_cache(maxsize=8)
def _holds_pinned(folder: Path, stamp: tuple) -> bool:
    for name, sri in pinned_runtime().values():
        digest = base64.b64encode(hashlib.sha384((folder / name).read_bytes()).digest()).decode()
        if f"sha384-{digest}" != sri:
            return False
    return True


def local_ort_dir(candidates: list[Path] | None = None) -> Path | None:
    """onnxruntime-web's files installed next to the app, when they are the very files the page pins
    (their SHA-384 equals browser_gen.js's SRI hashes): the npm copy, node_modules/onnxruntime-web/dist
    (`npm ci` in the repo root; no pip package ships these files). None when there is none: then
    pages load the runtime from the pinned CDN."""
    for folder in candidates if candidates is not None else ORT_CANDIDATES:
        try:
            names = [name for name, _ in pinned_runtime().values()]
            stamp = tuple((s.st_size, s.st_mtime_ns) for s in ((folder / n).stat() for n in names))
            if _holds_pinned(folder.resolve(), stamp):
                return folder.resolve()
        except OSError:  # missing or unreadable: not this one
            continue
    return None


def _local_folder(settings: Settings) -> Path | None:
    """The folder this app serves onnxruntime-web from: GAN_ORT_URL's local folder, else the pinned
    files found next to the app (local_ort_dir), unless GAN_ORT_URL names a URL or "cdn"."""
    raw = (settings.ort_base or "").strip()
    if not raw:
        return local_ort_dir()
    if "://" not in raw and raw.lower() != "cdn" and Path(raw).expanduser().is_dir():
        return Path(raw).expanduser().resolve()
    return None


def runtime_base(settings: Settings) -> str | None:
    """Where pages load onnxruntime-web from (browser_gen.js checks its SRI hashes wherever it comes
    from): a folder this app serves (gradio_api/file=...: GAN_ORT_URL's local folder, or, without
    GAN_ORT_URL, the pinned files found by local_ort_dir), a URL from GAN_ORT_URL, or None: the
    pinned CDN (no local copy, or GAN_ORT_URL=cdn)."""
    local = _local_folder(settings)
    if local is not None:
        return f"gradio_api/file={local}/"
    raw = (settings.ort_base or "").strip()
    if not raw or raw.lower() == "cdn":
        return None
    return raw if raw.endswith("/") else raw + "/"


def static_paths(settings: Settings) -> list[Path]:
    """Files and folders the page may fetch: the view's JS, the ONNX cache, the runtime this app
    serves (GAN_ORT_URL's folder, or just the two pinned files of a local copy). gr.set_static_paths
    must get them before the Blocks is built."""
    paths = [STATIC, fileio.cache_dir("onnx")]
    local = _local_folder(settings)
    if local is not None and (settings.ort_base or "").strip():
        paths.append(local)
    elif local is not None:
        paths += [local / name for name, _ in pinned_runtime().values()]
    return paths


def make(
    settings: Settings, elem_id: str, controls: dict[str, Any], server_image: str, display_px: int = 400
) -> gr.HTML:
    """The view for the sliders in `controls` ({param: "#elem-id" or a list of them}); the server
    image `server_image` (a CSS selector) is hidden while the canvas shows the picture."""
    base = runtime_base(settings)
    config = {
        "module_url": f"gradio_api/file={STATIC / 'browser_gen.js'}",
        "controls": controls,
        "server_image": server_image,
        "display_px": display_px,
        **({"ort_base": base} if base else {}),
    }
    js = f"const GAN_VIEW = {json.dumps(config)};\n" + (STATIC / "gradio_on_load.js").read_text()
    return gr.HTML(
        html_template=TEMPLATE,
        css_template=CSS,
        js_on_load=js,
        elem_id=elem_id,
        model_url=None,
        manifest=None,
        payload=None,
        **config,
    )


def props(lab: Lab, key: str | None, payload: Callable[[torch.nn.Module], dict]) -> gr.HTML:
    """The view's model (its ONNX export, cached by the weights' hash) and the payload for the current
    seeds; no model (None) when it cannot load or export: then the view uses the server."""
    try:
        G = lab.models.get(key)
        exp = export_onnx(G)
        p = payload(G)
    except (OnnxExportError, *USER_ERRORS):
        return gr.HTML(model_url=None, manifest=None, payload=None)
    p["nonce"] = time.monotonic_ns()  # a new value each time: the page redraws even for the same seeds
    return gr.HTML(model_url=f"gradio_api/file={exp.path}", manifest=exp.manifest, payload=p)


def payload_only(lab: Lab, key: str | None, payload: Callable[[torch.nn.Module], dict]) -> gr.HTML:
    """New latents for the same model (a seed or path changed): the view redraws (or asks the server)."""
    try:
        p = payload(lab.models.get(key))
    except USER_ERRORS:
        return gr.HTML(payload=None)
    p["nonce"] = time.monotonic_ns()
    return gr.HTML(payload=p)
