"""The in-browser generator as a Gradio component: one `gr.HTML` per live image.

The view (static/gradio_on_load.js + static/browser_gen.js) runs the model's ONNX export with
onnxruntime-web in the visitor's browser and redraws a canvas on every move of the sliders it is
given (by elem_id), without a server call. The server sends, once per seed / model change, the few
latents the browser needs (`gan.onnx_export.*_payload`). When the runtime cannot load or the model
cannot be exported, the view triggers its `submit` event on each move instead, and the tab binds
that to the usual server endpoint (same API name and parameters): the server image shows as before.

    view = browser_view.make(settings, "interp-view", controls={"t": "#t"}, server_image="#interp-image")
    view.submit(endpoint(ep.interpolate, lab), inputs, image, api_name="interpolate", **browser_view.LIVE)
    seed.change(lambda key, a, b, mode: browser_view.props(lab, key, lambda G: interpolate_payload(...)), ...)
"""

from __future__ import annotations

import json
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
TEMPLATE = '<div class="gan-view"><canvas style="display: none"></canvas><small data-gan-where></small></div>'
LIVE = dict(trigger_mode="always_last", show_progress="hidden")  # slider events: the newest position wins
CSS = """
.gan-view { display: flex; flex-direction: column; align-items: center; }
.gan-view canvas { border-radius: var(--block-radius, 8px); }
.gan-view small[data-gan-where] { opacity: 0.6; font-size: 0.75em; margin-top: 2px; }
"""


def runtime_base(settings: Settings) -> str | None:
    """Where pages load onnxruntime-web from: None (the pinned CDN, SRI-checked), a URL from
    GAN_ORT_URL, or a local folder from GAN_ORT_URL served by this app (gradio_api/file=...)."""
    raw = (settings.ort_base or "").strip()
    if not raw:
        return None
    if "://" not in raw and Path(raw).expanduser().is_dir():
        return f"gradio_api/file={Path(raw).expanduser().resolve()}/"
    return raw if raw.endswith("/") else raw + "/"


def static_paths(settings: Settings) -> list[Path]:
    """Folders the page may fetch files from: the view's JS, the ONNX cache, a local runtime folder.
    gr.set_static_paths must get them before the Blocks is built."""
    paths = [STATIC, fileio.cache_dir("onnx")]
    raw = (settings.ort_base or "").strip()
    if raw and "://" not in raw and Path(raw).expanduser().is_dir():
        paths.append(Path(raw).expanduser().resolve())
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
