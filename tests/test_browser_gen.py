"""The in-browser generator inside the real app (build_app on 127.0.0.1), in headless Chromium.

With no internet: the pinned CDN URL of onnxruntime-web is routed to the npm files (node_modules,
`npm ci`), checked against the SRI hashes as on the real CDN. On cats64, the Interpolate tab's t and
direction sliders and the Explore tab's direction sliders redraw the canvas in the browser, with no
request to the server for the move, and the pixels match the server's render of the same z. With the
runtime URL blocked, the same moves go to the server endpoints (`interpolate`, `explore`) and the
server image updates.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.ui_latency import CDN_PREFIX, ORT_DIST, router, serve_ort

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = REPO / "weights"
CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning:torch.onnx"),
]


def need(ok: bool, why: str) -> None:
    if not ok:
        (pytest.fail if IN_CI else pytest.skip)(why)


@pytest.fixture(scope="module")
def ort_site():
    need(ORT_DIST.is_dir(), "node_modules/onnxruntime-web is missing: run `npm ci` in the repo root")
    server = serve_ort()  # the benchmark's: the npm files, answered as the CDN answers (CORS)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    need((WEIGHTS / "cats64" / "model.safetensors").exists(), "weights/cats64 is missing")
    need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium")
    from gan.ui import Settings, build_app, launch_options

    os.environ.setdefault("GAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    settings = Settings(weights_dir=WEIGHTS, runs_dir=tmp_path_factory.mktemp("runs"), train_threads=1)
    demo = build_app(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


def open_page(browser, url: str, ort: str, *, block_runtime: bool = False):
    """The app, with the CDN routed to the npm files (or blocked) and every other outside request refused."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)  # a busy 2-core machine: the first export takes a while
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))

    page.route("**/*", router(ort, block=block_runtime))  # the CDN to the npm files, or refused
    page.goto(url)
    return page


def view_state(page, view: str) -> dict:
    return page.evaluate(
        """(id) => { const el = document.querySelector(`#${id} [data-gan-mode]`);
        return el ? {...el.dataset, where: el.querySelector("[data-gan-where]")?.textContent,
                     params: el.ganView?.last?.params ?? null} : null; }""",
        view,
    )


def wait_mode(page, view: str, mode: str, timeout_s: float = 180) -> None:
    """Wait until the view knows where it renders (the first export and the runtime's load take a while)."""
    deadline = time.monotonic() + timeout_s
    while (st := view_state(page, view)) is None or st.get("ganMode") != mode:
        assert time.monotonic() < deadline, f"{view} is not in {mode} mode: {st}"
        page.wait_for_timeout(250)


def canvas_rgb(page, view: str) -> np.ndarray:
    px = page.evaluate(
        """(id) => { const c = document.querySelector(`#${id} canvas`);
        return [c.width, Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data)]; }""",
        view,
    )
    s = px[0]
    return np.array(px[1], dtype=float).reshape(s, s, 4)[..., :3]


def press(page, slider: str, key: str, times: int) -> None:
    page.locator(f"{slider} input[type=range]").focus()
    for _ in range(times):
        page.keyboard.press(key)


def server_calls(page, since: int) -> list[str]:
    return [u for u in page.requests[since:] if "/gradio_api/" in u and "/file=" not in u]


def test_sliders_render_in_the_browser_without_server_calls(browser, app, ort_site):
    from gan.ui import endpoints as ep

    demo, url = app
    lab = demo.lab
    page = open_page(browser, url, ort_site)
    try:
        page.get_by_role("tab", name="Interpolate").click()
        wait_mode(page, "interp-view", "browser")
        page.wait_for_function("document.querySelector('#interp-view [data-gan-mode]').dataset.ganRendered")
        assert any(u.startswith(CDN_PREFIX) for u in page.requests)  # the runtime came via the pinned CDN URL
        assert not page.locator("#interp-image").is_visible()  # the canvas shows the picture

        # t: 0.5 -> 0.55, then direction 1: 0 -> 0.3
        n = len(page.requests)
        press(page, "#t", "ArrowRight", 5)
        page.wait_for_function(
            "document.querySelector('#interp-view [data-gan-mode]').ganView.last?.params?.t === 0.55"
        )
        press(page, "#interp-d1", "ArrowRight", 3)
        page.wait_for_function(
            "Math.abs(document.querySelector('#interp-view [data-gan-mode]').ganView.last?.params?.amounts[0] - 0.3)"
            " < 1e-9"
        )
        page.wait_for_timeout(300)  # anything the moves might have sent would be on its way by now
        assert server_calls(page, n) == [], "a slider move reached the server"
        st = view_state(page, "interp-view")
        assert st["ganRendered"] == "browser" and re.fullmatch(r"in your browser, [\d.]+ ms", st["where"]), st
        p = st["params"]
        ref = ep.interpolate(lab, "cats64", 1, 2, p["t"], "slerp", p["truncation"], *p["amounts"]).astype(float)
        diff = np.abs(canvas_rgb(page, "interp-view") - ref)
        assert diff.mean() <= 2.0, f"interpolate: mean |browser - server| = {diff.mean():.3f}/255"
        assert ref.std() > 10

        # Explore: direction 2 of seed 0
        page.get_by_role("tab", name="Explore").click()
        wait_mode(page, "explore-view", "browser")
        page.wait_for_function("document.querySelector('#explore-view [data-gan-mode]').dataset.ganRendered")
        n = len(page.requests)
        press(page, "#explore-d2", "ArrowLeft", 7)
        page.wait_for_function(
            "Math.abs(document.querySelector('#explore-view [data-gan-mode]').ganView.last?.params?.amounts[1] + 0.7)"
            " < 1e-9"
        )
        page.wait_for_timeout(300)
        assert server_calls(page, n) == [], "a slider move reached the server"
        st = view_state(page, "explore-view")
        assert st["ganRendered"] == "browser" and st["where"].startswith("in your browser"), st
        p = st["params"]
        ref = ep.explore(lab, "cats64", 0, *p["amounts"], p["truncation"]).astype(float)
        diff = np.abs(canvas_rgb(page, "explore-view") - ref)
        assert diff.mean() <= 2.0, f"explore: mean |browser - server| = {diff.mean():.3f}/255"
        print(f"parity: explore mean |browser - server| = {diff.mean():.4f}/255")

        # a new seed: the server sends its latent once; the browser redraws
        page.fill("#explore-seed input", "5")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "document.querySelector('#explore-view [data-gan-mode]').ganView.payload?.seed === 5"
            " && document.querySelector('#explore-view [data-gan-mode]').ganView.last?.params"
        )
        page.wait_for_timeout(500)
        ref = ep.explore(lab, "cats64", 5, *view_state(page, "explore-view")["params"]["amounts"], 1.0)
        assert np.abs(canvas_rgb(page, "explore-view") - ref.astype(float)).mean() <= 2.0
    finally:
        page.close()


def test_without_the_runtime_the_same_moves_use_the_server(browser, app, ort_site):
    _, url = app
    page = open_page(browser, url, ort_site, block_runtime=True)
    try:
        for tab, view, slider, image, api in (
            ("Interpolate", "interp-view", "#t", "#interp-image", "interpolate"),
            ("Explore", "explore-view", "#explore-d1", "#explore-image", "explore"),
        ):
            page.get_by_role("tab", name=tab).click()
            deadline = time.monotonic() + 180  # the model arrives, then the runtime fails to load
            while "could not load" not in ((st := view_state(page, view) or {}).get("ganReason") or ""):
                assert time.monotonic() < deadline, st
                page.wait_for_timeout(250)
            assert st["ganMode"] == "server" and "onnxruntime-web could not load" in st["ganReason"], st
            assert st["where"] == "on the server"
            img = page.locator(f"{image} img")
            img.wait_for()
            before = img.get_attribute("src")
            n = len(page.requests)
            press(page, slider, "ArrowRight", 4)
            page.wait_for_function(
                "([sel, before]) => document.querySelector(sel)?.getAttribute('src') !== before",
                arg=[f"{image} img", before],
            )
            assert page.locator(image).is_visible()
            assert any("/queue/join" in u for u in server_calls(page, n)), f"{api}: no server call"
    finally:
        page.close()
