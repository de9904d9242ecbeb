"""The app in a real browser: Playwright driving Debian's Chromium (never `playwright install`).

Opens the page, switches tabs, drags the `t` slider and sees the image change, moves a principal
direction slider in Explore and sees that image change, starts a short training run and sees the
loss plot grow, then stops it. On failure a screenshot goes to
test-artifacts/. Set GAN_LAB_SCREENSHOTS=1 to keep a screenshot of every tab as well.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest
import torch

import gan

from conftest import CHROMIUM, ON_CI

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
KEEP_SHOTS = os.environ.get("GAN_LAB_SCREENSHOTS") == "1"

if not Path(CHROMIUM).exists():  # CI installs Chromium (.ci/run): there, a missing browser is a failure
    if ON_CI:
        raise RuntimeError(f"{CHROMIUM} is missing on CI: the browser test cannot run (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium to run the browser test", allow_module_level=True)
pytestmark = [
    # gradio 6.31's queue calls pandas APIs that pandas 3 deprecates; not ours to fix
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
if ON_CI:
    import playwright.sync_api as sync_api  # CI installs it (requirements-dev.txt): missing is a failure
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright pip package is not installed")
expect = sync_api.expect
expect.set_options(timeout=30_000)  # a busy 2-core machine: the first grid can take more than 5 s

from gan.ui import Settings, build_app, launch_options  # noqa: E402

TINY = gan.ModelConfig(image_size=16, z_dim=16, g_width=8, d_width=8)
TINY_TRAIN = dict(
    image_size=16, steps=3000, batch_size=16, g_width=8, d_width=8, z_dim=16, precision="fp32", preview_every=20
)


class Url(str):
    """The app's address, carrying its Lab (the test compares the page with the running job)."""

    def __new__(cls, url: str, lab):
        self = super().__new__(cls, url)
        self.lab = lab
        return self


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    G = gan.Generator(TINY)
    with torch.no_grad():  # an untrained G draws flat grey; larger weights give images that differ visibly
        for m in G.net:
            if isinstance(m, torch.nn.ConvTranspose2d):
                m.weight.mul_(10)
    gan.save_model(G, root / "weights" / "tiny")
    yield from serve(
        Settings(weights_dir=root / "weights", runs_dir=root / "runs", train_defaults=TINY_TRAIN, train_threads=1,
                 ort_base="cdn")  # the CDN, unreachable here: the sliders these tests watch render on the server
    )  # fmt: skip


def serve(settings: Settings):
    """The app on a free port of 127.0.0.1 until the generator is closed: yields its Url."""
    demo = build_app(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    yield Url(f"http://127.0.0.1:{port}/", demo.lab)
    demo.lab.runner.shutdown()
    demo.close()


@pytest.fixture
def page(browser, url, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.console_messages = []  # every test may check them with console_problems()
    page.on("console", lambda m: page.console_messages.append(m))
    failed_before = request.session.testsfailed
    page.goto(url)
    yield page
    if request.session.testsfailed > failed_before:  # this test failed: keep what the page showed
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"), full_page=True)
    ctx.close()


def shot(page, name: str) -> None:
    if KEEP_SHOTS:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_tabs_and_live_t_slider(page):
    expect(page.get_by_role("heading", name="GAN Lab")).to_be_visible()
    expect(page.locator("#sample-grid img")).to_be_visible()  # the page opens with a sample grid
    shot(page, "tab-sample")
    # pick an image's seed in the gallery and carry it to Interpolate
    page.locator("#seed-gallery button.thumbnail-item").nth(3).click()
    expect(page.locator("#to-a")).to_have_text("Seed 3 → Interpolate A")
    page.locator("#to-a").click()
    expect(page.get_by_role("tab", name="Interpolate")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Seed A", exact=True)).to_have_value("3")

    img = page.locator("#interp-image img")
    expect(img).to_be_visible()
    before = img.get_attribute("src")
    slider = page.locator("#t input[type=range]")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2)  # t from 0.5 to ~0.95
    expect(img).not_to_have_attribute("src", before)
    assert float(page.locator("#t input[type=number]").input_value()) > 0.8
    shot(page, "tab-interpolate")

    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#start")).to_be_enabled()
    shot(page, "tab-train")


def test_explore_direction_slider_moves_the_image(page):
    page.get_by_role("tab", name="Explore").click()
    img = page.locator("#explore-image img")
    expect(img).to_be_visible()
    expect(page.locator("#explore-strip1 img")).to_be_visible()  # what direction 1 does, as a strip
    before = img.get_attribute("src")
    slider = page.locator("#explore-d1 input[type=range]")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)  # 0 -> about +3 σ
    expect(img).not_to_have_attribute("src", before)
    assert float(page.locator("#explore-d1 input[type=number]").input_value()) > 2
    shot(page, "tab-explore")
    for name in ("Seed plane", "Your photos", "Vector arithmetic"):
        page.get_by_role("tab", name=name).click()
        shot(page, "tab-explore-" + name.lower().replace(" ", "-"))


def plotted(page, elem_id: str) -> dict[tuple[str, int], float]:
    """The points a LinePlot draws, read from Vega's SVG: {(series, step): value}."""
    labels = page.eval_on_selector_all(f"#{elem_id} [aria-label]", "els => els.map(e => e.getAttribute('aria-label'))")
    points = {}
    for label in labels:  # "step: 10; loss: 1.369; series: D loss"
        m = re.fullmatch(r"step: (\d+); [^:]+: ([-\d.e]+); series: (.+)", label or "")
        if m:
            points[(m.group(3), int(m.group(1)))] = float(m.group(2))
    return points


def test_training_plot_grows_then_stop(page, url):
    page.get_by_role("tab", name="Train").click()
    # what auto picks on this server and why: fp32 on AVX2, bf16 where the probe found it faster
    expect(page.locator("#precision")).to_contain_text(re.compile(r"auto on this server: (fp32|bf16): \S"))
    page.locator("#start").click()
    status = page.locator("#train-status")
    expect(status).to_contain_text("Training", timeout=60_000)
    expect(status).to_contain_text("fp32: asked for")  # the run's precision and why

    def last_step() -> int:
        return max((step for (_, step) in plotted(page, "loss-plot")), default=0)

    deadline = time.time() + 90
    while last_step() < 20:
        assert time.time() < deadline, f"no points in the loss plot: {status.inner_text()}"
        page.wait_for_timeout(300)
    first = plotted(page, "loss-plot")
    while last_step() < max(s for _, s in first) + 50:
        assert time.time() < deadline, f"the loss plot stopped advancing: {status.inner_text()}"
        page.wait_for_timeout(300)
    later = plotted(page, "loss-plot")
    assert {series for series, _ in later} == {"D loss", "G loss"}
    assert set(first) <= set(later)  # the curve grows: old points stay, new steps are added
    rows = {r["step"]: r for r in url.lab.runner.job.snapshot()["losses"]}
    for (series, step), value in later.items():  # the plotted values are the run's losses
        assert value == pytest.approx(rows[step]["loss_d" if series == "D loss" else "loss_g"], rel=1e-6)
    probs = plotted(page, "prob-plot")
    assert probs and all(0 <= v <= 1 for v in probs.values())
    expect(page.locator("#live-grid img")).to_be_visible(timeout=60_000)  # a preview every 20 steps
    shot(page, "tab-train-running")

    page.reload()  # a reloaded page reattaches to the running job
    page.get_by_role("tab", name="Train").click()
    expect(status).to_contain_text("Training")
    expect(page.locator("#start")).to_be_disabled()

    page.locator("#stop").click()
    expect(status).to_contain_text("Stopped", timeout=60_000)
    expect(page.locator("#start")).to_be_enabled()
    shot(page, "tab-train-stopped")
    assert not console_problems(page.console_messages), console_problems(page.console_messages)


# ---- a public Space: the run belongs to who started it (issue 15); the Train tab's layout (issue 18) ----


@pytest.fixture(scope="module")
def space_url(tmp_path_factory):
    """The app as a Space runs it (ownership enforced), on its own server."""
    root = tmp_path_factory.mktemp("space")
    gan.save_model(gan.Generator(TINY), root / "weights" / "tiny")
    settings = Settings(
        weights_dir=root / "weights", runs_dir=root / "runs", train_defaults=TINY_TRAIN, train_threads=1,
        on_space=True,
    )  # fmt: skip
    yield from serve(settings)


HOSTILE = "boom [click](javascript:evil) **big** <img src=x onerror=alert(1)>.zip"  # a file name holds no "/"


def _hostile_zip(folder: Path) -> Path:
    from conftest import png_zip

    names = [f"[x](javascript:evil) <b>{i}</b>.png" for i in range(8)]
    return png_zip(folder / HOSTILE, names, extra={"**not** an <img src=x>.png": b"broken"})


def _no_markup_from_names(page) -> None:
    assert page.locator("img[src='x']").count() == 0, "a file name became an <img>"
    assert page.locator("a[href^='javascript']").count() == 0, "a file name became a link"
    assert page.locator("strong:text-is('big'), strong:text-is('not'), b:text-is('0')").count() == 0, "markup"


def test_a_run_on_a_space_is_its_starters_and_names_stay_text(browser, space_url, request, tmp_path):
    """Two visitors: A uploads a zip with hostile names and trains; B sees that the trainer is busy and
    when it ends, never A's images, samples or model; only A may stop it; names show as text for A."""
    from gradio_client import Client

    a_ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    b_ctx = browser.new_context(viewport={"width": 1400, "height": 1000})  # another visitor: no shared storage
    try:
        a, b = a_ctx.new_page(), b_ctx.new_page()
        for page in (a, b):
            page.set_default_timeout(30_000)
            page.goto(space_url)
            page.get_by_role("tab", name="Train").click()
        a.get_by_label("Upload images or a zip").check()
        a.locator("#train-files input[type=file]").set_input_files(str(_hostile_zip(tmp_path)))
        expect(a.locator("#train-files")).to_contain_text("boom", timeout=30_000)  # uploaded
        a.get_by_label("Steps", exact=True).fill("2500")  # not the form's default: a reload must show it again
        a.get_by_text("Model size and more").click()
        a.locator("#cooldown input[type=number]").fill("0.25")  # nor is this one
        a.locator("#cooldown input[type=number]").press("Tab")
        a.locator("#start").click()
        expect(a.locator("#train-status")).to_contain_text("Training", timeout=60_000)
        assert space_url.lab.runner.job.form["cooldown"] == 0.25  # the page sent the option to the run
        expect(a.locator("#stop")).to_be_enabled()
        expect(a.locator("#live-grid img")).to_be_visible(timeout=60_000)  # A sees the samples ...
        data = a.locator("#train-data")  # ... and the data report, names as text (Gradio's upload drops
        expect(data).to_contain_text("from boom [click](javascriptevil)")  # ':', '*', '<', '>' from file names)
        expect(data).to_contain_text("skipped 1: not an image (e.g. **not** an <img src=x>.png)")
        _no_markup_from_names(a)

        status = b.locator("#train-status")  # B: that the trainer is busy and when it ends, nothing of the run
        expect(status).to_contain_text("Busy: another visitor's run is training", timeout=30_000)
        expect(status).to_contain_text("Press Start to join the line")
        b.wait_for_timeout(2500)  # a few polls of the page
        expect(b.locator("#live-grid img")).to_have_count(0)
        expect(b.locator("body")).not_to_contain_text("boom")
        expect(b.locator("body")).not_to_contain_text("javascript:evil")
        expect(b.locator("#stop")).to_be_disabled()  # read-only
        expect(b.locator("#start")).to_be_enabled()  # to join the line
        _no_markup_from_names(b)
        with pytest.raises(Exception, match="started by another visitor; only they can stop or resume it"):
            Client(space_url, verbose=False).predict(api_name="/stop")  # nor through the API
        state, grid = Client(space_url, verbose=False).predict(since=0, api_name="/progress")
        assert grid is None and "run" not in state and state["losses"] == [] and state["status"] == "running"
        assert space_url.lab.runner.job.alive and not space_url.lab.runner.job.stop.is_set()

        a.reload()  # A's page reattaches: the Train tab, the run's own settings, and Stop still works
        expect(a.locator("#train-status")).to_contain_text("Training", timeout=30_000)
        expect(a.locator("#train-status")).not_to_contain_text("another visitor")
        expect(a.locator("#stop")).to_be_enabled()
        expect(a.get_by_role("tab", name="Train")).to_have_attribute("aria-selected", "true")
        expect(a.get_by_label("Steps", exact=True)).to_have_value("2500")
        a.get_by_text("Model size and more").click()  # closed again on a new page
        expect(a.locator("#cooldown input[type=number]")).to_have_value("0.25")
        a.locator("#stop").click()
        expect(a.locator("#train-status")).to_contain_text("Stopped", timeout=60_000)
        expect(a.get_by_role("button", name=re.compile(r"^Download \d{8}-"))).to_be_visible()  # A's model
        b.reload()
        b.get_by_role("tab", name="Train").click()
        expect(b.locator("#train-status")).to_contain_text("No run of yours yet", timeout=30_000)
        b.wait_for_timeout(2500)
        expect(b.get_by_role("button", name=re.compile(r"^Download \d{8}-"))).to_have_count(0)
        expect(b.locator("body")).not_to_contain_text("boom")
        expect(b.locator("#resume")).to_be_hidden()  # B is not offered A's run to resume
        expect(a.locator("#resume")).to_be_enabled()
        expect(a.locator("#resume-to input")).to_have_value("2500")  # Resume says its new total
        _no_markup_from_names(a)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        for name, ctx in (("a", a_ctx), ("b", b_ctx)):
            for i, p in enumerate(ctx.pages):
                p.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{name}{i}-failure.png"), full_page=True)
        raise
    finally:
        a_ctx.close()
        b_ctx.close()


LINE_COUNT_JS = """root => [...root.querySelectorAll('[data-testid="block-info"], label > span, .label-text')]
    .filter(e => e.offsetParent !== null && e.innerText.trim())
    .map(e => { const r = e.getBoundingClientRect(); const lh = parseFloat(getComputedStyle(e).lineHeight) || 20;
                return {text: e.innerText.trim(), width: r.width, lines: Math.round(r.height / lh)}; })"""


# every view of the page: (screenshot name, what to click to get there)
VIEWS = [
    ("sample", ["tab:Sample"]),
    ("interpolate", ["tab:Interpolate"]),
    ("explore-directions", ["tab:Explore", "tab:Directions"]),
    ("explore-seed-plane", ["tab:Explore", "tab:Seed plane"]),
    ("explore-your-photos", ["tab:Explore", "tab:Your photos"]),
    ("explore-vector-arithmetic", ["tab:Explore", "tab:Vector arithmetic"]),
    ("train", ["tab:Train", "text:Model size and more"]),  # the accordion open: its labels count too
    ("hub", ["tab:Sample", "text:Hugging Face Hub: load a model by repo id"]),
]
CDN = "https://cdn.jsdelivr.net/"  # onnxruntime-web for the in-browser generator: no internet here
GRADIOS_OWN = ("The input spec uses Vega-Lite v5.17.0",)  # Gradio 6.31's LinePlot spec names an older schema


def console_problems(messages) -> list[str]:
    """Console errors and warnings, except a CDN this machine cannot reach and Gradio's own."""
    return [
        f"{m.type}: {m.text} ({m.location.get('url', '')})"
        for m in messages
        if m.type in ("error", "warning")
        and not m.location.get("url", "").startswith(CDN)
        and not any(g in m.text for g in GRADIOS_OWN)
    ]


@pytest.mark.parametrize("width", [800, 1400, 1920])
def test_every_tab_reads_well(browser, url, width):
    """Screenshots of every tab and sub-tab at three widths (test-artifacts/<view>-<width>px.png); in
    each: no label broken into fragments, every chart titled (also before any run, the SWD chart
    saying when its first point comes), the seed gallery showing every image, and no console error or
    warning from the app."""
    ctx = browser.new_context(viewport={"width": width, "height": 1100})
    messages: list = []
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda m: messages.append(m))
        page.route(CDN + "**", lambda r: r.abort("internetdisconnected"))
        page.goto(url)
        expect(page.locator("#sample-grid img")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        for name, clicks in VIEWS:
            for click in clicks:
                kind, text = click.split(":", 1)
                target = page.get_by_role("tab", name=text, exact=True) if kind == "tab" else page.get_by_text(text)
                if kind == "tab" and target.get_attribute("aria-selected") == "true":
                    continue
                target.first.click()
            page.wait_for_timeout(700)
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}px.png"), full_page=True)
            labels = page.locator("body").evaluate(LINE_COUNT_JS)
            assert len(labels) >= 3, (name, labels)  # the model picker and the view's own
            broken = [x for x in labels if x["lines"] > 2 or (x["lines"] > 1 and x["width"] < 120)]
            assert not broken, f"{name}: labels wrapped into fragments at {width} px: {broken}"
            if name == "sample":
                n = int(page.locator("#sample-n input[type=number]").input_value())
                thumbs = page.locator("#seed-gallery button.thumbnail-item")
                expect(thumbs).to_have_count(n)
                g = page.locator("#seed-gallery").bounding_box()
                boxes = [thumbs.nth(i).bounding_box() for i in range(n)]
                hidden = [i for i, b in enumerate(boxes) if b["x"] + b["width"] > g["x"] + g["width"] + 1
                          or b["y"] + b["height"] > g["y"] + g["height"] + 1]  # fmt: skip
                assert not hidden, f"the gallery cuts off images {hidden} at {width} px"
            if name == "train":
                expect(page.locator("#xflip")).to_be_visible()
                for elem_id, title in (("loss-plot", "Losses"), ("prob-plot", "D's mean output"),
                                       ("metric-plot", "SWD (lower is better)")):  # fmt: skip
                    label = page.locator(f"#{elem_id} [data-testid='block-info']")
                    expect(label).to_be_visible()
                    expect(label).to_contain_text(title)
                    box = page.locator(f"#{elem_id}").bounding_box()
                    assert box["width"] >= 250, f"{elem_id} is {box['width']:.0f} px wide at {width} px"
        assert not console_problems(messages), console_problems(messages)
    finally:
        ctx.close()


def test_a_bad_seed_is_one_message_and_outputs_stay(page):
    """Seed -5 in Sample: its message under the box, no error badge, the grid and gallery unchanged."""
    grid = page.locator("#sample-grid img")
    expect(grid).to_be_visible()
    before = grid.get_attribute("src")
    seed = page.get_by_label("Seed", exact=True).first
    seed.fill("-5")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_text("seed=-5 is out of range").first).to_be_visible()
    page.wait_for_timeout(500)
    assert grid.get_attribute("src") == before
    expect(page.locator("span.error")).to_have_count(0)  # no red "Error" badge on an output
    expect(page.locator("#seed-gallery button.thumbnail-item").first).to_be_visible()


SR_TEXT_JS = """() => [...document.querySelectorAll('.sr-only')].map(e => e.textContent.trim()).filter(t => t)"""


def test_invert_says_complete_not_an_i18n_key(page, tmp_path):
    """Gradio's status tracker announces "common.complete" to screen readers after a run with a
    progress bar unless the app supplies the text (wiring.launch_options)."""
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray((torch.rand(32, 32, 3) * 255).to(torch.uint8).numpy()).save(photo)
    page.get_by_role("tab", name="Explore").click()
    page.get_by_role("tab", name="Your photos").click()
    page.locator("input[type=file]").first.set_input_files(str(photo))
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Invert", exact=True).click()
    announced: set[str] = set()
    deadline = time.time() + 60
    while not re.search(r"RMS error: 0\.\d+", page.locator("body").inner_text()):
        assert time.time() < deadline, "the inversion did not finish"
        announced.update(page.evaluate(SR_TEXT_JS))
        page.wait_for_timeout(100)
    deadline = time.time() + 8  # announcements are throttled to one per 5 s: the last may come late
    while not any("omplete" in t for t in announced) and time.time() < deadline:
        announced.update(page.evaluate(SR_TEXT_JS))
        page.wait_for_timeout(50)
    assert "Complete" in announced, announced


def test_the_job_is_polled_every_second_only_on_the_train_tab(page):
    """20 open pages polling every second would cost a 2-vCPU Space 20 requests a second: pages on
    another tab poll every 5 s."""
    joins: list[str] = []
    page.on("request", lambda r: joins.append(r.url) if "/queue/join" in r.url else None)
    expect(page.locator("#sample-grid img")).to_be_visible()
    page.wait_for_timeout(2500)  # the page's load events are done

    def count(seconds: float) -> int:
        joins.clear()
        page.wait_for_timeout(seconds * 1000)
        return len(joins)

    idle = count(10)  # 2 ticks at 5 s
    page.get_by_role("tab", name="Train").click()
    page.wait_for_timeout(1500)
    train = count(10)  # about 10 at 1 s (fewer while the machine is busy: a tick waits for the last)
    page.get_by_role("tab", name="Interpolate").click()
    page.wait_for_timeout(1500)
    back = count(10)
    assert idle <= 3 and back <= 4 and train >= 5, (idle, train, back)
