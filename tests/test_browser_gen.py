"""The in-browser generator inside the real app (build_app on 127.0.0.1), in headless Chromium.

With no internet: the pinned CDN URL of onnxruntime-web is routed to the npm files (node_modules,
`npm ci`), checked against the SRI hashes as on the real CDN. On cats64, the Interpolate tab's t and
direction sliders and the Explore tab's direction sliders redraw the canvas in the browser, with no
request to the server for the move, and the pixels match the server's render of the same z. With the
runtime URL blocked, the same moves go to the server endpoints (`interpolate`, `explore`) and the
server image updates. With no GAN_ORT_URL, the app serves the npm files itself: the same moves
render in the browser with the CDN unreachable.

Without node_modules/onnxruntime-web (`npm ci`), weights/cats64 or /usr/bin/chromium the whole module
is skipped, saying which (`pytest -rs` shows it); under CI=true that is a failure.
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


MISSING = [
    why
    for ok, why in (
        (ORT_DIST.is_dir(), "node_modules/onnxruntime-web is missing: run `npm ci` in the repo root"),
        ((WEIGHTS / "cats64" / "model.safetensors").exists(), "weights/cats64 is missing"),
        (Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"),
    )
    if not ok
]
if MISSING and not IN_CI:  # said once for the module, in pytest's summary (-rs), rather than per test
    pytest.skip("the in-browser generator's browser tests: " + "; ".join(MISSING), allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def complete():
    """Under CI a missing piece fails each test here (the other modules still run)."""
    if MISSING:
        pytest.fail("the in-browser generator cannot be tested: " + "; ".join(MISSING), pytrace=False)


@pytest.fixture(scope="module")
def ort_site():
    server = serve_ort()  # the benchmark's: the npm files, answered as the CDN answers (CORS)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def launch(tmp_path_factory, **settings):
    from gan.ui import Settings, build_app, launch_options

    os.environ.setdefault("GAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    settings = Settings(weights_dir=WEIGHTS, runs_dir=tmp_path_factory.mktemp("runs"), train_threads=1, **settings)
    demo = build_app(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app as on a Space without the npm files: the runtime from the pinned CDN (GAN_ORT_URL=cdn)."""
    demo, url = launch(tmp_path_factory, ort_base="cdn")
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def local_app(tmp_path_factory):
    """The app with no GAN_ORT_URL, next to node_modules: it serves the runtime itself."""
    demo, url = launch(tmp_path_factory)
    yield demo, url
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


def move_explore_slider(page, d: int, key: str, presses: int, want: float) -> dict:
    """Open Explore, wait for the in-browser view, press `key` on direction slider `d` until its amount
    is `want`; no request may reach the server. Returns the view's state."""
    page.get_by_role("tab", name="Explore").click()
    wait_mode(page, "explore-view", "browser")
    page.wait_for_function("document.querySelector('#explore-view [data-gan-mode]').dataset.ganRendered")
    n = len(page.requests)
    press(page, f"#explore-d{d}", key, presses)
    page.wait_for_function(
        f"Math.abs(document.querySelector('#explore-view [data-gan-mode]').ganView.last?.params?.amounts[{d - 1}]"
        f" - ({want})) < 1e-9"
    )
    page.wait_for_timeout(300)
    assert server_calls(page, n) == [], "a slider move reached the server"
    return view_state(page, "explore-view")


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
        st = move_explore_slider(page, 2, "ArrowLeft", 7, -0.7)
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


def test_the_app_serves_the_runtime_itself_when_the_cdn_is_unreachable(browser, local_app):
    from gan.ui import browser_view

    demo, url = local_app
    base = browser_view.runtime_base(demo.lab.settings)
    assert base == f"gradio_api/file={ORT_DIST.resolve()}/"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url) else r.abort("internetdisconnected"))
    page.route("**/cdn.jsdelivr.net/**", lambda r: r.abort("internetdisconnected"))  # the CDN: unreachable
    page.goto(url)
    try:
        st = move_explore_slider(page, 1, "ArrowRight", 4, 0.4)
        assert st["ganRendered"] == "browser" and re.fullmatch(r"in your browser, [\d.]+ ms", st["where"]), st
        assert page.locator("#explore-view small[data-gan-where]").inner_text().startswith("in your browser")
        runtime = [u for u in page.requests if "onnxruntime-web/dist/" in u]
        assert {u.rsplit("/", 1)[1] for u in runtime} == {"ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"}
        assert all(u.startswith(url + "gradio_api/file=") for u in runtime), runtime  # from the app itself
        assert not [u for u in page.requests if "cdn.jsdelivr.net" in u], "the page asked the CDN"
    finally:
        page.close()
