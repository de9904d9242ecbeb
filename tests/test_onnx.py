"""The generator as ONNX, and in the visitor's browser.

- Export: cats64, mnist32 and fresh tiny generators (both G styles, BatchNorm statistics that make the
  fold matter) run in onnxruntime like in PyTorch (< 1e-3); no BatchNormalization node is left;
  the batch axis is dynamic; the cache is keyed by the weights' hash; nothing is written into weights/.
- The JS latent math (gan/ui/static/browser_gen.js, under node) equals gan.sampling / gan.latent.
- In headless Chromium with no internet: the CDN URL of onnxruntime-web is routed to the npm files,
  cats64 renders into the canvas within 2/255 on average of PyTorch's image for the same z, moves
  make no network request; a blocked or altered runtime gives the server fallback.

The node and browser parts need `npm ci` (node_modules/onnxruntime-web) and /usr/bin/chromium; they
skip without them, except under CI=true, where a missing piece is a failure.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import gan
from gan import onnx_export as ox
from gan.latent import blend_corners, edit, load_or_compute_directions
from gan.sampling import generate, interpolate, latents

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -r requirements.txt)")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install -r requirements-dev.txt)")

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = REPO / "weights"
JS = REPO / "gan" / "ui" / "static" / "browser_gen.js"
ORT_DIST = REPO / "node_modules" / "onnxruntime-web" / "dist"
CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TINY = dict(image_size=16, z_dim=16, g_width=8, d_width=8)
pytestmark = [  # gan.onnx_export uses torch's TorchScript exporter on purpose (see its docstring)
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning:torch.onnx"),
]


def need(ok: bool, why: str) -> None:
    """Skip when a dev tool is missing on a developer's machine; under CI it is a failure."""
    if not ok:
        (pytest.fail if IN_CI else pytest.skip)(why)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan-cache")
    old = os.environ.get("GAN_CACHE_DIR")
    os.environ["GAN_CACHE_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("GAN_CACHE_DIR", None)
    else:
        os.environ["GAN_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def cats64():
    return gan.load_model(WEIGHTS / "cats64")


def _fresh(seed: int = 0, **kw) -> gan.Generator:
    """A new tiny G whose BatchNorm layers hold non-trivial statistics and affine parameters, as after
    training, so a wrong fold shows (fresh running stats are mean 0, var 1: folding them is almost a no-op)."""
    torch.manual_seed(seed)
    G = gan.Generator(gan.ModelConfig(**{**TINY, **kw}))
    with torch.no_grad():
        for m in G.net:
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.2, 3.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.mul_(10)  # an untrained G draws flat grey; larger weights give real images
    return G.eval()


def _ort_diff(path_or_bytes, G, z: torch.Tensor) -> float:
    sess = ort.InferenceSession(
        path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes), providers=["CPUExecutionProvider"]
    )
    out = sess.run(["image"], {"z": z.numpy()})[0]
    with torch.no_grad():
        ref = G.eval()(z).numpy()
    assert out.shape == ref.shape
    return float(np.abs(out - ref).max())


# ---------------------------------------------------------------------------------------------
# export


@pytest.mark.parametrize("name", ["cats64", "mnist32"])
def test_shipped_generators_export_and_match_pytorch(name, cache_root):
    before = _snapshot(WEIGHTS)
    G = gan.load_model(WEIGHTS / name)
    exp = ox.export_onnx(G)
    # cached beside other derived files, named by the weights' hash; never in weights/ or the Hub cache
    assert exp.path.parent == cache_root / "onnx"
    assert exp.path.name.startswith(gan.latent.weights_hash(G))
    assert WEIGHTS not in exp.path.parents
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(123))
    assert _ort_diff(exp.path, G, z) < 1e-3
    assert _ort_diff(exp.path, G, z[:1]) < 1e-3  # batch 1 from the same file: the batch axis is dynamic
    m = exp.manifest
    assert 0 <= m["max_abs_diff"] < 1e-3
    assert (m["z_dim"], m["image_size"], m["channels"]) == (G.z_dim, G.config.image_size, G.config.channels)
    assert m["output_range"] == [-1.0, 1.0] and m["sha256"] == hashlib.sha256(exp.read_bytes()).hexdigest()
    graph = onnx.load(str(exp.path)).graph
    ops = {n.op_type for n in graph.node}
    assert "BatchNormalization" not in ops and "ConvTranspose" in ops
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert _snapshot(WEIGHTS) == before  # nothing written into weights/


STYLES = [dict(g_style="deconv"), dict(g_style="upsample", channels=1)]


@pytest.mark.parametrize("kw", STYLES, ids=["deconv", "upsample-gray"])
def test_fresh_generator_with_batchnorm_statistics(kw, cache_root):
    G = _fresh(**kw)
    exp = ox.export_onnx(G)
    assert "BatchNormalization" not in {n.op_type for n in onnx.load(str(exp.path)).graph.node}
    z = torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(1))
    assert _ort_diff(exp.path, G, z) < 1e-3
    assert not G.training  # export leaves G's mode alone


def test_skip_layer_excitation_is_exported(cache_root):
    """A G with SLE gates exports them (Sigmoid nodes) and matches PyTorch."""
    G = _fresh(seed=4, image_size=32, g_sle=True)
    with torch.no_grad():
        for p in G.sle.parameters():
            p.mul_(50)  # gates that vary with z, not a constant 0.5 a dropped gate would hide in
    exp = ox.export_onnx(G)
    assert "Sigmoid" in {n.op_type for n in onnx.load(str(exp.path)).graph.node}
    z = torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(2))
    assert _ort_diff(exp.path, G, z) < 1e-3


def test_a_wrong_fold_is_caught(monkeypatch, cache_root):
    """The export's own check against PyTorch: fold without the running mean and it must fail."""
    real = ox._fold

    def bad(conv, bn):
        bn = __import__("copy").deepcopy(bn)
        bn.running_mean.zero_()
        return real(conv, bn)

    monkeypatch.setattr(ox, "_fold", bad)
    with pytest.raises(ox.OnnxExportError, match="differs from PyTorch"):
        ox.export_onnx(_fresh(seed=3), use_cache=False)


def test_cache_is_keyed_by_the_weights_hash(monkeypatch, cache_root):
    G = _fresh(seed=5)
    first = ox.export_onnx(G)
    stamp = first.path.stat().st_mtime_ns

    def no_export(*a, **k):
        raise AssertionError("exported again although the cache holds these weights")

    monkeypatch.setattr(ox, "export_bytes", no_export)
    again = ox.export_onnx(G)
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    monkeypatch.undo()
    with torch.no_grad():
        G.net[0].weight[0, 0, 0, 0] += 0.5  # other weights: another file, the old one stays
    other = ox.export_onnx(G)
    assert other.path != first.path and first.path.exists()
    z = torch.randn(2, G.z_dim)
    assert _ort_diff(other.path, G, z) < 1e-3
    other.path.write_bytes(other.path.read_bytes()[:1000])  # a damaged cache entry is not served
    fixed = ox.export_onnx(G)
    assert _ort_diff(fixed.path, G, z) < 1e-3


def test_write_into_folder_and_cli_file(tmp_path, cache_root):
    G = _fresh(seed=7)
    path = ox.write_onnx_into(G, tmp_path / "stage")
    assert path == tmp_path / "stage" / "model.onnx"
    assert _ort_diff(path, G, torch.randn(2, G.z_dim)) < 1e-3
    msg = ox.export_onnx_file(G, tmp_path / "out.onnx")
    assert (tmp_path / "out.onnx").read_bytes() == path.read_bytes()
    assert "max |onnxruntime - torch|" in msg and "dynamic batch" in msg
    with pytest.raises(ValueError, match=r"\.onnx"):
        ox.export_onnx_file(G, tmp_path / "out.png")
    with pytest.raises(ox.OnnxExportError, match="Generator"):
        ox.export_bytes(torch.nn.Linear(2, 2))


def test_latents_cross_as_exact_float32():
    z = torch.randn(3, 7)
    assert torch.equal(ox.decode_f32(ox.encode_f32(z), (3, 7)), z)


# ---------------------------------------------------------------------------------------------
# the JS side, without a browser: pinned runtime and latent math


def _js_constant(name: str) -> str:
    m = re.search(rf"export const {name} = (.+?);\n", JS.read_text(), re.S)
    assert m, name
    return m.group(1)


def test_pinned_runtime_and_sri_hashes_match_the_npm_files():
    version = json.loads(_js_constant("ORT_VERSION"))
    assert json.loads((REPO / "package.json").read_text())["devDependencies"]["onnxruntime-web"] == version
    need(ORT_DIST.is_dir(), "node_modules/onnxruntime-web is missing: run `npm ci` in the repo root")
    installed = json.loads((ORT_DIST.parent / "package.json").read_text())["version"]
    assert installed == version, f"npm installed {installed}, the page pins {version}: run `npm ci`"
    files = dict(re.findall(r'(\w+): "([^"]+)"', _js_constant("ORT_FILES")))
    sri = dict(re.findall(r'(\w+): "(sha384-[^"]+)"', _js_constant("ORT_INTEGRITY")))
    assert set(files) == set(sri) == {"module", "wasm"}
    for key, name in files.items():
        digest = base64.b64encode(hashlib.sha384((ORT_DIST / name).read_bytes()).digest()).decode()
        assert sri[key] == f"sha384-{digest}", f"ORT_INTEGRITY.{key} does not match {name}"


def test_the_app_serves_the_npm_runtime_when_it_is_the_pinned_one(tmp_path):
    """No GAN_ORT_URL: the app serves node_modules' two pinned files itself (only when they match the SRI
    hashes); GAN_ORT_URL=cdn, a URL or a folder still decide; an altered copy is not used (the CDN is)."""
    from gan.ui import browser_view as bv
    from gan.ui.settings import Settings

    assert {k: v[0] for k, v in bv.pinned_runtime().items()} == dict(
        re.findall(r'(\w+): "([^"]+)"', _js_constant("ORT_FILES"))
    )
    assert bv.runtime_base(Settings(ort_base="cdn")) is None
    assert bv.runtime_base(Settings(ort_base="https://example.org/ort")) == "https://example.org/ort/"
    assert bv.runtime_base(Settings(ort_base=str(tmp_path))) == f"gradio_api/file={tmp_path.resolve()}/"
    assert bv.local_ort_dir([tmp_path / "nothing"]) is None
    copy = tmp_path / "copy"
    copy.mkdir()
    need(ORT_DIST.is_dir(), "node_modules/onnxruntime-web is missing: run `npm ci` in the repo root")
    for name, _ in bv.pinned_runtime().values():
        shutil.copy(ORT_DIST / name, copy / name)
    assert bv.local_ort_dir([tmp_path / "nothing", copy]) == copy.resolve()
    with open(copy / "ort.wasm.bundle.min.mjs", "a") as f:
        f.write("// changed\n")
    assert bv.local_ort_dir([copy]) is None  # not the pinned files: the page would refuse them
    default = Settings()
    assert bv.local_ort_dir() == ORT_DIST.resolve()
    assert bv.runtime_base(default) == f"gradio_api/file={ORT_DIST.resolve()}/"
    served = bv.static_paths(default)
    assert {p.name for p in served if p.parent == ORT_DIST.resolve()} == {n for n, _ in bv.pinned_runtime().values()}
    assert ORT_DIST.resolve() not in served  # just the two files, not the whole package


NODE_SCRIPT = """
import * as g from "%s";
let text = "";
for await (const chunk of process.stdin) text += chunk;
const cases = JSON.parse(text);
const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
console.log(JSON.stringify(cases.map(([p, params]) => b64(g.zFromPayload(p, params)))));
"""


def test_js_latent_math_equals_python(tmp_path):
    need(shutil.which("node") is not None, "node is missing (apt-get install nodejs)")
    G = _fresh(seed=9, z_dim=32)
    dirs = gan.latent.principal_directions(G, k=4, n_samples=128)
    seeds4 = [11, 12, 13, 14]
    cases, want = [], []
    for mode in ("slerp", "lerp"):
        p = ox.interpolate_payload(G, 3, 7, mode=mode, truncation=0.8)
        za, zb = latents([3, 7], G.z_dim, 0.8)
        for t in (0.0, 0.37, 1.0):
            cases.append([p, {"t": t}])
            want.append(interpolate(za, zb, t, mode))
    p = ox.interpolate_payload(G, 3, 7, directions=dirs)  # the Interpolate tab: t, then the direction sliders
    for t, amounts, psi in ((0.0, [0.0, 1.0, 0.0], 1.0), (0.6, [1.5, 0.0, -2.0], 0.7)):  # fewer sliders: 0
        za, zb = latents([3, 7], G.z_dim, psi)
        cases.append([p, {"t": t, "amounts": amounts, "truncation": psi}])  # psi from a slider, in the page
        want.append(edit(interpolate(za, zb, t, "slerp"), dirs, amounts + [0.0]))
    p = ox.explore_payload(G, 5, dirs)
    base = latents([5], G.z_dim)[0]
    for amounts in ([0, 0, 0, 0], [2.0, 0, -1.5, 0.25]):
        cases.append([p, {"amounts": amounts}])
        want.append(edit(base, dirs, amounts))
    for mode in ("slerp", "bilinear"):
        p = ox.plane_payload(G, seeds4, mode=mode)
        for u, v in ((0.0, 0.0), (0.25, 0.6), (1.0, 1.0)):
            cases.append([p, {"u": u, "v": v}])
            want.append(blend_corners(G, seeds4, u, v, mode=mode)[0])
        cases.append([p, {"u": 0.5, "v": 0.5, "truncation": 0.5}])
        want.append(blend_corners(G, seeds4, 0.5, 0.5, mode=mode, truncation=0.5)[0])
    script = tmp_path / "math.mjs"
    script.write_text(NODE_SCRIPT % JS.as_uri())
    out = subprocess.run(["node", str(script)], input=json.dumps(cases), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = [ox.decode_f32(s) for s in json.loads(out.stdout)]
    for (payload, params), g, w in zip(cases, got, want):
        what = f"{payload['kind']} {payload.get('mode', '')} {params}"
        assert g.shape == w.shape, what
        assert (g - w).abs().max() < 1e-5, what
        if (payload.get("mode") == "lerp" and 0 < params["t"] < 1) or params.get("amounts") == [0, 0, 0, 0]:
            assert torch.equal(g, w), what  # the same float32 operations in the same order
        if params.get("t") in (0.0, 1.0) and "amounts" not in params:  # a walk starts and ends on its seeds
            assert torch.equal(g, ox.decode_f32(payload["z_a" if params["t"] == 0 else "z_b"])), what


# ---------------------------------------------------------------------------------------------
# in the browser

CDN_PREFIX = "https://cdn.jsdelivr.net/npm/onnxruntime-web@"


class _Site(http.server.SimpleHTTPRequestHandler):
    """The test page, browser_gen.js, the model and the npm copy of the runtime, from 127.0.0.1."""

    files: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        p = self.files.get(path.split("?")[0])
        if p is None and path.startswith("/ort/"):
            p = ORT_DIST / Path(path).name
        return str(p) if p is not None else "/nonexistent"

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")  # the CDN's answer, as the routed wasm arrives
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def others(cache_root):
    """The other shipped model (grayscale) and a fresh one of the other G style (Resize + Conv in the graph)."""
    return {"mnist32": gan.load_model(WEIGHTS / "mnist32"), "fresh": _fresh(seed=11, g_style="upsample", image_size=32)}


@pytest.fixture(scope="module")
def site(tmp_path_factory, cats64, others, cache_root):
    need(ORT_DIST.is_dir(), "node_modules/onnxruntime-web is missing: run `npm ci` in the repo root")
    need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium")
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text('<!doctype html><meta charset="utf-8"><div id="view"></div>')
    files = {"/": root / "index.html", "/static/browser_gen.js": JS}
    for name, G in {"cats64": cats64, **others}.items():
        exp = ox.export_onnx(G)
        (root / f"{name}.json").write_text(json.dumps(exp.manifest))
        files |= {f"/{name}.json": root / f"{name}.json", f"/{name}.onnx": exp.path}
    handler = type("Site", (_Site,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _page(browser, site, cdn: str):
    """A page where the pinned CDN serves the npm files ("npm"), nothing ("blocked"), or an altered
    module ("tampered"). Every other request off 127.0.0.1 is refused: the test has no internet."""
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))

    def route(r):
        url = r.request.url
        if url.startswith(site):
            return r.continue_()
        if not url.startswith(CDN_PREFIX) or cdn == "blocked":
            return r.abort("internetdisconnected")
        name = url.rsplit("/", 1)[1]
        if name.endswith(".wasm"):  # 14 MB: a redirect to the same npm file is 20x faster than a routed body
            return r.fulfill(status=302, headers={"Location": f"{site}/ort/{name}", "Access-Control-Allow-Origin": "*"})
        body = (ORT_DIST / name).read_bytes()
        if cdn == "tampered":
            body += b"\n// changed on the way\n"
        headers = {"Content-Type": "text/javascript", "Access-Control-Allow-Origin": "*"}
        r.fulfill(status=200, body=body, headers=headers)

    page.route("**/*", route)
    page.goto(site + "/")
    return page


MOUNT = """async ([payload, name]) => {
  const g = await import("/static/browser_gen.js");
  name = name || "cats64";
  const manifest = await (await fetch(`/${name}.json`)).json();
  window.serverCalls = [];
  const el = document.getElementById("view");
  window.view = await g.mountView(el, {modelUrl: `/${name}.onnx`, manifest, payload,
                                       onServer: (p) => window.serverCalls.push(p)});
  return {mode: view.mode, reason: view.reason, dataset: {...el.dataset}};
}"""

SHOW = """async ([payload, params]) => {
  const g = await import("/static/browser_gen.js");
  view.setPayload(payload);
  const res = await view.show(params);
  const c = view.canvas;
  const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;  // RGBA
  const z = g.zFromPayload(payload, params);
  return {res, w: c.width, h: c.height, rendering: c.style.imageRendering, px: Array.from(px),
          z: Array.from(z), where: document.querySelector("[data-gan-where]").textContent};
}"""


def test_browser_renders_cats64_like_pytorch(browser, site, cats64, tmp_path):
    page = _page(browser, site, "npm")
    try:
        mounted = page.evaluate(MOUNT, [None, None])
        assert mounted["mode"] == "browser", mounted["reason"]
        assert mounted["dataset"]["ganMode"] == "browser"
        assert any(u.startswith(CDN_PREFIX) for u in page.requests)  # the runtime came through the CDN URL
        shutil.copy(WEIGHTS / "cats64" / "directions.safetensors", tmp_path)  # read the shipped file, write nothing
        dirs = load_or_compute_directions(cats64, k=8, folder=tmp_path)
        za, zb = latents([3, 7], cats64.z_dim)
        base = latents([5], cats64.z_dim)[0]
        amounts = [2.0, 0, -1.0, 0, 0, 0.5, 0, 0]
        corners = [1, 2, 3, 4]
        views = [
            (ox.interpolate_payload(cats64, 3, 7), {"t": 0.37}, interpolate(za, zb, 0.37, "slerp")),
            (ox.explore_payload(cats64, 5, dirs), {"amounts": amounts}, edit(base, dirs, amounts)),
            (ox.plane_payload(cats64, corners), {"u": 0.25, "v": 0.6}, blend_corners(cats64, corners, 0.25, 0.6)[0]),
        ]
        for payload, params, z in views:
            n_requests = len(page.requests)
            out = page.evaluate(SHOW, [payload, params])
            assert len(page.requests) == n_requests, "a slider move reached the network"
            assert out["res"]["where"] == "browser" and re.fullmatch(r"in your browser, [\d.]+ ms", out["where"])
            assert (out["w"], out["h"], out["rendering"]) == (64, 64, "pixelated")
            assert torch.allclose(torch.tensor(out["z"]), z, atol=1e-5), payload["kind"]
            ref = generate(cats64, z[None])[0].permute(1, 2, 0).numpy().astype(float)  # (C, H, W) -> (H, W, C)
            px = np.array(out["px"], dtype=float).reshape(64, 64, 4)
            assert (px[..., 3] == 255).all()
            diff = np.abs(px[..., :3] - ref)
            assert diff.mean() <= 2.0, f"{payload['kind']}: mean |browser - torch| = {diff.mean():.2f}/255"
            # measured: identical but for a rare float32 tie (8e-5 of the values, off by 1): the same to_uint8
            assert (diff == 0).mean() > 0.99, f"{payload['kind']}: only {(diff == 0).mean():.1%} identical"
            assert ref.std() > 10  # a real picture, not a flat one that any runtime would match
        assert page.evaluate("window.serverCalls.length") == 0
    finally:
        page.close()


def test_browser_renders_other_models_like_pytorch(browser, site, others):
    page = _page(browser, site, "npm")
    try:
        for name, G in others.items():  # one page: the runtime loads once, each model mounts in turn
            mounted = page.evaluate(MOUNT, [None, name])
            assert mounted["mode"] == "browser", mounted["reason"]
            za, zb = latents([3, 7], G.z_dim)
            out = page.evaluate(SHOW, [ox.interpolate_payload(G, 3, 7), {"t": 0.6}])
            s = G.config.image_size
            assert (out["w"], out["h"]) == (s, s)
            ref = generate(G, interpolate(za, zb, 0.6)[None])[0].permute(1, 2, 0).numpy().astype(float)  # (H, W, C)
            px = np.array(out["px"], dtype=float).reshape(s, s, 4)
            rgb = px[..., :3] if G.config.channels == 3 else px[..., :1]
            if G.config.channels == 1:  # grayscale: the same value in R, G and B
                assert (px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all()
            diff = np.abs(rgb - ref)
            assert diff.mean() <= 2.0 and (diff == 0).mean() > 0.99, f"{name}: mean {diff.mean():.3f}/255"
            assert ref.std() > 10
    finally:
        page.close()


@pytest.mark.parametrize("cdn", ["blocked", "tampered"])
def test_browser_falls_back_without_a_trusted_runtime(browser, site, cats64, cdn):
    page = _page(browser, site, cdn)
    try:
        mounted = page.evaluate(MOUNT, [ox.interpolate_payload(cats64, 3, 7), None])
        assert mounted["mode"] == "server" and mounted["dataset"]["ganMode"] == "server"
        assert "onnxruntime-web could not load" in mounted["reason"]
        res = page.evaluate("view.show({t: 0.5})")
        assert res["where"] == "server"
        assert page.evaluate("window.serverCalls") == [{"t": 0.5}]  # the move went to the server path
        assert page.evaluate("document.querySelector('[data-gan-where]').textContent") == "on the server"
    finally:
        page.close()


# ---------------------------------------------------------------------------------------------
# the same view inside Gradio 6: gr.HTML(js_on_load=gradio_on_load.js) driven by a gr.Slider


@pytest.fixture(scope="module")
def gradio_app(cats64, cache_root):
    """A miniature Interpolate tab: seeds, a t slider, the in-browser view, and today's server image
    rendered by `view.submit` when the browser cannot. The runtime comes from files the server hosts."""
    need(ORT_DIST.is_dir(), "node_modules/onnxruntime-web is missing: run `npm ci` in the repo root")
    need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium")
    gr = pytest.importorskip("gradio")
    static = JS.parent
    exp = ox.export_onnx(cats64)
    gr.set_static_paths([static, exp.path.parent, ORT_DIST])
    calls: list[float] = []

    def server_render(t, a, b):
        calls.append(float(t))
        za, zb = latents([int(a), int(b)], cats64.z_dim)
        return generate(cats64, interpolate(za, zb, float(t))[None])[0].permute(1, 2, 0).numpy()

    with gr.Blocks() as demo:
        a = gr.Number(3, precision=0, elem_id="seed-a")
        b = gr.Number(7, precision=0, elem_id="seed-b")
        t = gr.Slider(0, 1, 0.5, step=0.01, label="t", elem_id="interp-t")
        view = gr.HTML(
            html_template="<div><canvas></canvas><small data-gan-where></small></div>",
            js_on_load=(static / "gradio_on_load.js").read_text(),
            elem_id="gan-view",
            module_url=f"gradio_api/file={JS}",  # relative: fine behind a root path
            model_url=f"gradio_api/file={exp.path}",
            manifest=exp.manifest,
            payload=ox.interpolate_payload(cats64, 3, 7),
            controls={"t": "#interp-t", "amounts": ["#hidden-direction"]},  # a slider not in the page counts 0
            server_image="#server-img",
            ort_base=f"gradio_api/file={ORT_DIST}/",
        )
        img = gr.Image(elem_id="server-img", label="server", format="png")
        view.submit(server_render, [t, a, b], [img], trigger_mode="always_last", api_name="interpolate_image")
        a.change(lambda x, y: gr.HTML(payload=ox.interpolate_payload(cats64, int(x), int(y))), [a, b], [view])
        no_model = gr.Button("a model that could not be exported", elem_id="no-model")
        no_model.click(lambda: gr.HTML(model_url=None, manifest=None), None, view)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield demo.local_url, calls
    demo.close()


MODE_KNOWN = "['browser', 'server'].includes(document.querySelector('#gan-view [data-gan-mode]')?.dataset.ganMode)"
CANVAS_PIXELS = """() => {
  const c = document.querySelector("#gan-view canvas");
  return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
}"""


def _gradio_page(browser, url, *, block_runtime: bool = False):
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.route("https://**", lambda r: r.abort("internetdisconnected"))  # no internet here
    if block_runtime:
        page.route("**/onnxruntime-web/dist/**", lambda r: r.abort("blockedbyclient"))
    page.goto(url)
    page.wait_for_function(MODE_KNOWN)
    page.locator("#interp-t input[type=range]").focus()
    return page


@pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated")
@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")
def test_gradio_view_renders_in_the_browser_without_server_calls(browser, gradio_app, cats64):
    url, calls = gradio_app
    page = _gradio_page(browser, url)
    try:
        box = page.locator("#gan-view [data-gan-mode]")
        assert box.get_attribute("data-gan-mode") == "browser", box.get_attribute("data-gan-reason")
        n_calls, n_requests = len(calls), len(page.requests)
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.wait_for_function("document.querySelector('#gan-view [data-gan-mode]').ganView.last?.params?.t === 0.55")
        assert len(calls) == n_calls and not [u for u in page.requests[n_requests:] if "/gradio_api/" in u]
        assert re.fullmatch(r"in your browser, [\d.]+ ms", page.locator("#gan-view small[data-gan-where]").inner_text())
        assert not page.locator("#server-img").is_visible()
        px = np.array(page.evaluate(CANVAS_PIXELS), dtype=float).reshape(64, 64, 4)
        za, zb = latents([3, 7], cats64.z_dim)
        ref = generate(cats64, interpolate(za, zb, 0.55)[None])[0].permute(1, 2, 0).numpy().astype(float)
        assert np.abs(px[..., :3] - ref).mean() <= 2.0
        page.fill("#seed-a input", "5")  # a new seed: the server sends new latents once, the browser renders
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#gan-view [data-gan-mode]').ganView.payload.seeds[0] === 5")
        assert len(calls) == n_calls
        page.click("#no-model")  # no ONNX for this model: the same slider goes to the server
        page.wait_for_function("document.querySelector('#gan-view [data-gan-mode]').dataset.ganMode === 'server'")
        page.locator("#interp-t input[type=range]").focus()
        page.keyboard.press("ArrowLeft")
        page.wait_for_selector("#server-img img")
        assert len(calls) > n_calls and page.locator("#server-img").is_visible()
    finally:
        page.close()


@pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated")
@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")
def test_gradio_view_falls_back_to_the_server(browser, gradio_app):
    url, calls = gradio_app
    page = _gradio_page(browser, url, block_runtime=True)
    try:
        box = page.locator("#gan-view [data-gan-mode]")
        assert box.get_attribute("data-gan-mode") == "server"
        assert "onnxruntime-web could not load" in box.get_attribute("data-gan-reason")
        n_calls = len(calls)
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.wait_for_selector("#server-img img")
        for _ in range(100):  # always_last: the last move is rendered once the earlier call returns
            if calls and calls[-1] == 0.53:
                break
            page.wait_for_timeout(100)
        assert len(calls) > n_calls and calls[-1] == 0.53
        assert page.locator("#server-img").is_visible()
        assert page.locator("#gan-view small[data-gan-where]").inner_text() == "on the server"
    finally:
        page.close()
