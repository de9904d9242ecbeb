// GAN Lab: the generator runs in the visitor's browser (ONNX + onnxruntime-web, WebAssembly).
//
//   import * as gen from "gradio_api/file=.../browser_gen.js";
//   const view = await gen.mountView(element, { modelUrl, manifest, payload, onServer });
//   view.show({ t: 0.5 });            // z in JS from the payload, image into the canvas: {where: "browser", ms}
//   view.mode                          // "browser" | "server" (the runtime or the model could not load)
//
// The server sends the few latents once (gan.onnx_export.*_payload: base64 float32), because torch's
// seeded randn cannot be reproduced here; this file recomputes z with the formulas of gan.sampling
// (lerp, slerp) and gan.latent (edit, the seed-plane blend) and runs the exported generator.
//
// In Gradio 6 (see tests/test_onnx.py, gradio_app, for a working miniature of the Interpolate tab):
//   gr.set_static_paths([STATIC_DIR, gan.fileio.cache_dir("onnx")])
//   exp = gan.onnx_export.export_onnx(G)
//   view = gr.HTML(html_template="<div><canvas></canvas><small data-gan-where></small></div>",
//                  js_on_load=(STATIC_DIR / "gradio_on_load.js").read_text(),
//                  module_url=f"gradio_api/file={STATIC_DIR / 'browser_gen.js'}",
//                  model_url=f"gradio_api/file={exp.path}", manifest=exp.manifest,
//                  payload=interpolate_payload(G, a, b, directions=dirs),
//                  controls={"t": "#t", "amounts": ["#d1", "#d2"], "truncation": "#psi"},
//                  server_image="#interp-image")
//   view.submit(server_fn, inputs, image, trigger_mode="always_last")   # the fallback path
//   seed_a.change(lambda ...: gr.HTML(payload=interpolate_payload(...)), inputs, view)
//
// The runtime is a pinned onnxruntime-web, each file checked against its Subresource-Integrity
// hash (the browser refuses a changed file) wherever it comes from: the same two files served by
// the app itself when they are installed next to it (gan.ui.browser_view.local_ort_dir: the npm
// copy from `npm ci`; or GAN_ORT_URL's folder or URL), passed as {runtime: {base: "gradio_api/file=.../"}},
// else a public CDN (ORT_CDN).
// Nothing here throws at the caller for a missing runtime: loadRuntime/loadGenerator/mountView
// answer {ok: false, reason} and the page keeps using the server.

export const ORT_VERSION = "1.30.0";
export const ORT_CDN = `https://cdn.jsdelivr.net/npm/onnxruntime-web@${ORT_VERSION}/dist/`;
// the ES-module bundle (glue code included) and the SIMD WebAssembly binary it runs
export const ORT_FILES = { module: "ort.wasm.bundle.min.mjs", wasm: "ort-wasm-simd-threaded.wasm" };
export const ORT_INTEGRITY = {
  module: "sha384-PLWz+nHEVHpjwBsO0YVdvQj6n5814Iv8E3b8FG0Rp/uIAtjFMCKOpP66iPzedrIG",
  wasm: "sha384-vjBJ1z7qrhkTyYsNqKeF6c7N+nOJSU94czEo+tvZcu8G75JparGq9kB+kTnEUNVM",
};
export const MANIFEST_FORMAT = "gan-lab-onnx/1";

const f32 = Math.fround;

// ---------------------------------------------------------------------------------------------
// latent math: float32 results, the same formulas (and operation order) as the Python side

/** base64 of little-endian float32 bytes (gan.onnx_export.encode_f32) -> Float32Array. */
export function decodeF32(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  if (bytes.length % 4) throw new Error(`float32 data has ${bytes.length} bytes, not a multiple of 4`);
  const view = new DataView(bytes.buffer);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/** gan.sampling.lerp: a + (b - a) * t, each step rounded to float32 as torch does. */
export function lerp(a, b, t) {
  const tt = f32(t);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32(a[i] + f32(f32(b[i] - a[i]) * tt));
  return out;
}

function norm(a) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/** gan.sampling.slerp: spherical interpolation; lerp when a and b are (anti)parallel. */
export function slerp(a, b, t) {
  const tt = f32(t);
  const na = Math.max(norm(a), 1e-12);
  const nb = Math.max(norm(b), 1e-12);
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] / na) * (b[i] / nb);
  dot = Math.min(1, Math.max(-1, dot));
  const omega = Math.acos(dot);
  const so = Math.sin(omega);
  if (Math.abs(so) < 1e-6) return lerp(a, b, tt);
  const wa = Math.sin((1 - tt) * omega);
  const wb = Math.sin(tt * omega);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32((wa * a[i] + wb * b[i]) / so);
  return out;
}

/** gan.sampling.interpolate: slerp or lerp, with exact ends (t = 0 gives a, t = 1 gives b, bit for bit). */
export function interpolate(a, b, t, mode = "slerp") {
  if (mode !== "slerp" && mode !== "lerp") throw new Error(`mode must be 'slerp' or 'lerp', got ${mode}`);
  const tt = f32(t);
  if (tt === 0) return Float32Array.from(a);
  if (tt === 1) return Float32Array.from(b);
  return mode === "slerp" ? slerp(a, b, tt) : lerp(a, b, tt);
}

/** gan.latent.edit: z + sum_i amounts[i] * std[i] * vectors[i]; vectors is (k, zDim) row-major. */
export function edit(z, vectors, std, amounts) {
  const k = std.length;
  const zDim = z.length;
  if (amounts.length !== k) throw new Error(`amounts must have ${k} values (one per direction), got ${amounts.length}`);
  if (vectors.length !== k * zDim) throw new Error(`vectors must be (${k}, ${zDim})`);
  if (!amounts.some((x) => x !== 0)) return Float32Array.from(z); // all zero: an exact copy, as in Python
  const out = new Float32Array(zDim);
  for (let j = 0; j < zDim; j++) {
    let d = 0;
    for (let i = 0; i < k; i++) d += f32(f32(amounts[i]) * std[i]) * vectors[i * zDim + j];
    out[j] = f32(z[j] + f32(d));
  }
  return out;
}

/** gan.latent._blend for one point: corners (4 * zDim: top-left, top-right, bottom-left,
 * bottom-right), u left to right, v top to bottom, both in [0, 1]. */
export function blend(corners, u, v, mode = "slerp") {
  const zDim = corners.length / 4;
  const [tl, tr, bl, br] = [0, 1, 2, 3].map((i) => corners.subarray(i * zDim, (i + 1) * zDim));
  if (mode === "slerp") return interpolate(interpolate(tl, tr, u), interpolate(bl, br, u), v); // as gan.latent
  if (mode !== "bilinear") throw new Error(`mode must be 'slerp' or 'bilinear', got ${mode}`);
  const uu = f32(u);
  const vv = f32(v);
  const [w0, w1, w2, w3] = [
    f32(f32(1 - uu) * f32(1 - vv)),
    f32(uu * f32(1 - vv)),
    f32(f32(1 - uu) * vv),
    f32(uu * vv),
  ];
  const out = new Float32Array(zDim);
  for (let j = 0; j < zDim; j++) {
    out[j] = f32(f32(f32(f32(w0 * tl[j]) + f32(w1 * tr[j])) + f32(w2 * bl[j])) + f32(w3 * br[j]));
  }
  return out;
}

/** Decode a payload of gan.onnx_export (interpolate_payload / explore_payload / plane_payload) once. */
export function decodePayload(p) {
  const d = { ...p, decoded: true };
  if (p.kind === "interpolate") Object.assign(d, { z_a: decodeF32(p.z_a), z_b: decodeF32(p.z_b) });
  else if (p.kind === "explore") Object.assign(d, { z: decodeF32(p.z) });
  else if (p.kind === "plane") Object.assign(d, { corners: decodeF32(p.corners) });
  else throw new Error(`unknown payload kind ${p.kind}`);
  if (p.vectors) Object.assign(d, { vectors: decodeF32(p.vectors), std: decodeF32(p.std) });
  return d;
}

/** The app's direction sliders (gan/ui lab.move): amounts in σ, missing ones 0, all 0 = z unchanged. */
function move(z, d, amounts) {
  if (!amounts || !d.vectors || !amounts.some((x) => x !== 0)) return z;
  const k = d.std.length;
  if (amounts.length > k) throw new Error(`${amounts.length} amounts for ${k} directions`);
  return edit(z, d.vectors, d.std, [...amounts, ...new Array(k - amounts.length).fill(0)]);
}

/** gan.sampling.latents' truncation: seed latents * psi, in float32. */
function truncate(z, psi) {
  if (psi === undefined || psi === null) return z;
  const p = f32(psi);
  return z.map((x) => f32(x * p));
}

/**
 * z for slider values: {t, amounts?} (interpolate), {amounts} (explore), {u, v} (plane); each may add
 * {truncation} (psi) when the payload was made with truncation 1 (the seeds' own latents).
 */
export function zFromPayload(d, params) {
  if (!d.decoded) d = decodePayload(d);
  const psi = params.truncation;
  if (psi !== undefined && psi !== null && d.truncation !== 1) {
    throw new Error("a truncation slider needs a payload made with truncation 1");
  }
  if (d.kind === "interpolate") {
    return move(interpolate(truncate(d.z_a, psi), truncate(d.z_b, psi), params.t, d.mode), d, params.amounts);
  }
  if (d.kind === "explore") return move(truncate(d.z, psi), d, params.amounts);
  if (d.kind === "plane") return blend(truncate(d.corners, psi), params.u, params.v, d.mode);
  throw new Error(`unknown payload kind ${d.kind}`);
}

// ---------------------------------------------------------------------------------------------
// pixels: gan.data.to_uint8, i.e. floor((clamp(x, -1, 1) + 1) * 127.5 + 0.5) in float32

/** NCHW float output of one image -> RGBA bytes for ImageData (grayscale repeated in R, G, B). */
export function toRGBA(data, channels, size, offset = 0) {
  const n = size * size;
  const rgba = new Uint8ClampedArray(4 * n);
  for (let c = 0; c < 3; c++) {
    const src = offset + (channels === 1 ? 0 : c) * n;
    for (let i = 0; i < n; i++) {
      const x = Math.min(1, Math.max(-1, data[src + i]));
      rgba[4 * i + c] = Math.floor(f32(f32(f32(x + 1) * 127.5) + 0.5));
    }
  }
  for (let i = 0; i < n; i++) rgba[4 * i + 3] = 255;
  return rgba;
}

// ---------------------------------------------------------------------------------------------
// the runtime

const runtimes = new Map(); // base URL -> Promise of a loadRuntime answer: one load per page

async function fetchChecked(url, integrity, kind, signal) {
  const init = { mode: "cors", credentials: "omit", signal };
  if (integrity) init.integrity = integrity;
  const r = await fetch(url, init);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return kind === "text" ? r.text() : r.arrayBuffer();
}

/**
 * Load onnxruntime-web once per base URL. Never throws.
 * options.base: folder holding ORT_FILES (default ORT_CDN); options.integrity: {module, wasm} SRI
 * hashes (default ORT_INTEGRITY; pass null only for files you host and trust);
 * options.numThreads: default 1, or up to 4 when the page is cross-origin isolated;
 * options.timeoutMs: give up after this long (default 60 s; the wasm is ~14 MB, cached afterwards).
 * -> {ok: true, ort, version, threads, base, ms} | {ok: false, reason, base}
 */
export function loadRuntime(options = {}) {
  const base = new URL(options.base || ORT_CDN, globalThis.document?.baseURI ?? globalThis.location?.href).href;
  if (!runtimes.has(base)) runtimes.set(base, loadRuntimeOnce(base, options));
  return runtimes.get(base);
}

async function loadRuntimeOnce(base, options) {
  const t0 = performance.now();
  const integrity = options.integrity === undefined ? ORT_INTEGRITY : options.integrity;
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
    return { ok: false, base, reason: "this browser has no WebAssembly" };
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), options.timeoutMs ?? 60000);
  try {
    const [code, wasm] = await Promise.all([
      fetchChecked(new URL(ORT_FILES.module, base).href, integrity?.module, "text", ctl.signal),
      fetchChecked(new URL(ORT_FILES.wasm, base).href, integrity?.wasm, "arrayBuffer", ctl.signal),
    ]);
    // the checked text becomes the module: import() itself cannot check an integrity hash (the blob
    // URL stays alive: ort's worker threads, where allowed, load themselves from it)
    const blobUrl = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    const ort = await import(/* webpackIgnore: true */ blobUrl);
    const isolated = globalThis.crossOriginIsolated === true;
    const threads = options.numThreads ?? (isolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1);
    ort.env.wasm.wasmBinary = wasm;
    ort.env.wasm.numThreads = isolated ? threads : 1; // threads need SharedArrayBuffer
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    return { ok: true, ort, version: ort.env.versions?.web ?? ORT_VERSION, threads: ort.env.wasm.numThreads, base,
             ms: performance.now() - t0 }; // prettier-ignore
  } catch (e) {
    let why = String(e?.message ?? e);
    if (ctl.signal.aborted) why = "timed out";
    else if (e?.name === "TypeError") why += " (blocked, offline or integrity mismatch)";
    runtimes.delete(base); // a later call may try again (the network may come back)
    return { ok: false, base, reason: `onnxruntime-web could not load from ${base}: ${why}` };
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// the generator

export class BrowserGenerator {
  constructor(ort, session, manifest) {
    this.ort = ort;
    this.session = session;
    this.manifest = manifest;
    this.zDim = manifest.z_dim;
    this.size = manifest.image_size;
    this.channels = manifest.channels;
    this.inputName = manifest.input || session.inputNames[0];
    this.outputName = manifest.output || session.outputNames[0];
    this._queue = Promise.resolve(); // session.run calls one at a time
  }

  /** ort + model (URL string, ArrayBuffer or Uint8Array) + manifest -> BrowserGenerator (throws on failure). */
  static async create(ort, model, manifest) {
    if (manifest.format !== MANIFEST_FORMAT) throw new Error(`unknown model format ${manifest.format}`);
    let bytes = model;
    if (typeof model === "string") {
      const r = await fetch(model);
      if (!r.ok) throw new Error(`model ${model}: HTTP ${r.status}`);
      bytes = await r.arrayBuffer();
    }
    bytes = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
    const gen = new BrowserGenerator(ort, session, manifest);
    await gen.run(new Float32Array(gen.zDim)); // a first run compiles kernels and proves the model works
    return gen;
  }

  /** z (Float32Array of zDim) -> {rgba: Uint8ClampedArray (size * size * 4), raw: Float32Array, ms}. */
  run(z) {
    if (!(z instanceof Float32Array) || z.length !== this.zDim) {
      return Promise.reject(new Error(`z must be a Float32Array of ${this.zDim} values`));
    }
    const job = this._queue.then(async () => {
      const t0 = performance.now();
      const feeds = { [this.inputName]: new this.ort.Tensor("float32", z, [1, this.zDim]) };
      const out = await this.session.run(feeds);
      const raw = out[this.outputName].data;
      const rgba = toRGBA(raw, this.channels, this.size);
      return { rgba, raw, ms: performance.now() - t0 };
    });
    this._queue = job.catch(() => {});
    return job;
  }

  /** z -> pixels in `canvas` at the model's resolution (upscaled crisply by CSS). -> {where, ms} */
  async render(z, canvas) {
    const t0 = performance.now();
    const { rgba } = await this.run(z);
    if (canvas.width !== this.size || canvas.height !== this.size) {
      canvas.width = this.size;
      canvas.height = this.size;
    }
    if (!canvas.style.imageRendering) canvas.style.imageRendering = "pixelated"; // crisp when CSS upscales it
    canvas.getContext("2d").putImageData(new ImageData(rgba, this.size, this.size), 0, 0);
    return { where: "browser", ms: performance.now() - t0 };
  }
}

/** Runtime + model in one call. Never throws: {ok: true, generator, runtime} | {ok: false, reason}. */
export async function loadGenerator({ model, manifest, runtime = {} }) {
  const rt = await loadRuntime(runtime);
  if (!rt.ok) return { ok: false, reason: rt.reason };
  try {
    return { ok: true, generator: await BrowserGenerator.create(rt.ort, model, manifest), runtime: rt };
  } catch (e) {
    return { ok: false, reason: `the model could not run in this browser: ${e?.message ?? e}` };
  }
}

// ---------------------------------------------------------------------------------------------
// a view: one canvas, a discreet "where" line, latest-wins rendering, and the server fallback

/** Style a canvas for crisp upscaling of a small image. */
export function crispCanvas(canvas, size, displayPx) {
  canvas.width = size;
  canvas.height = size;
  canvas.style.imageRendering = "pixelated";
  canvas.style.width = displayPx ? `${displayPx}px` : "100%";
  canvas.style.maxWidth = "100%";
  canvas.style.aspectRatio = "1 / 1";
  return canvas;
}

/** "in your browser, 3 ms" / "on the server" */
export function whereText(where, ms) {
  if (where === "browser") return `in your browser, ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  if (where === "server") return ms == null ? "on the server" : `on the server, ${Math.round(ms)} ms`;
  return "";
}

/**
 * Mount the in-browser generator in `element` (uses its <canvas> and [data-gan-where] if present,
 * else creates them). Never throws. Resolves once the runtime and the model are loaded or failed.
 *
 * options: {modelUrl | modelBytes, manifest, payload?, runtime?: {base, integrity, numThreads, timeoutMs},
 *           displayPx?, onServer?(params) (called for each move while the browser cannot render),
 *           onRender?({where, ms, params})}
 * -> view {mode: "browser" | "server", reason, generator, show(params), setPayload(p), showZ(z), last}
 * The element gets data-gan-mode="browser" | "server" and data-gan-reason, and receives a
 * "gan-mode" CustomEvent ({detail: {mode, reason}}) when the mode is known.
 */
export async function mountView(element, options) {
  const canvas = element.querySelector("canvas") || element.appendChild(document.createElement("canvas"));
  let whereEl = element.querySelector("[data-gan-where]");
  if (!whereEl) {
    whereEl = element.appendChild(document.createElement("small"));
    whereEl.setAttribute("data-gan-where", "");
    whereEl.style.opacity = "0.65";
    whereEl.style.display = "block";
  }
  crispCanvas(canvas, options.manifest?.image_size || 64, options.displayPx);
  const view = {
    mode: "loading", reason: "", generator: null, payload: null, canvas, last: null, renders: 0,
    _want: null, _busy: false, _waiters: [],
  }; // prettier-ignore
  element.dataset.ganMode = "loading";

  const setMode = (mode, reason = "") => {
    view.mode = mode;
    view.reason = reason;
    element.dataset.ganMode = mode;
    element.dataset.ganReason = reason;
    element.dispatchEvent(new CustomEvent("gan-mode", { detail: { mode, reason }, bubbles: true }));
  };

  view.setPayload = (p) => {
    view.payload = p ? decodePayload(p) : null;
  };
  view.markServer = (ms) => {
    // the caller drew a server image: say so
    whereEl.textContent = whereText("server", ms);
    element.dataset.ganRendered = "server";
  };

  // latest wins: a move during a render replaces the pending one; every caller gets the answer of
  // the render that covered its move (or of a later one)
  const pump = async () => {
    if (view._busy) return;
    view._busy = true;
    while (view._want) {
      const { z, params } = view._want;
      const waiters = view._waiters;
      view._want = null;
      view._waiters = [];
      let res;
      try {
        res = { ...(await view.generator.render(z, canvas)), params };
        view.renders += 1;
        view.last = res;
        whereEl.textContent = whereText("browser", res.ms);
        element.dataset.ganRendered = "browser";
        element.dataset.ganMs = res.ms.toFixed(2);
        options.onRender?.(res);
      } catch (e) {
        res = { where: "error", error: String(e?.message ?? e), params };
      }
      waiters.forEach((w) => w(res));
    }
    view._busy = false;
  };

  view.showZ = (z, params = null) => {
    if (view.mode !== "browser") {
      options.onServer?.(params);
      return Promise.resolve({ where: "server", params });
    }
    return new Promise((resolve) => {
      view._want = { z, params };
      view._waiters.push(resolve);
      pump();
    });
  };
  view.show = (params) => {
    if (view.mode !== "browser" || !view.payload) {
      options.onServer?.(params);
      return Promise.resolve({ where: "server", params });
    }
    return view.showZ(zFromPayload(view.payload, params), params);
  };

  /** (Re)load the model, e.g. after the page switched models; no model (null) means the server renders. */
  view.setModel = async (model, manifest) => {
    view.generator = null;
    if (!model || !manifest) {
      setMode("server", "no in-browser model for this generator");
      whereEl.textContent = whereText("server");
      return view;
    }
    setMode("loading");
    const res = await loadGenerator({ model, manifest, runtime: options.runtime || {} });
    if (res.ok) {
      view.generator = res.generator;
      view.runtime = res.runtime;
      crispCanvas(canvas, manifest.image_size, options.displayPx);
      setMode("browser");
    } else {
      setMode("server", res.reason);
      whereEl.textContent = whereText("server");
    }
    return view;
  };

  if (options.payload) view.setPayload(options.payload);
  return view.setModel(options.modelBytes || options.modelUrl, options.manifest);
}

/** Call fn(number) on every user move of a Gradio slider (its range and number inputs) under `root`. */
export function bindSlider(root, fn) {
  const el = typeof root === "string" ? document.querySelector(root) : root;
  if (!el) throw new Error(`no slider at ${root}`);
  const inputs = el.matches("input") ? [el] : Array.from(el.querySelectorAll("input[type=range], input[type=number]"));
  const handler = (ev) => {
    const x = Number(ev.target.value);
    if (Number.isFinite(x)) fn(x);
  };
  inputs.forEach((i) => i.addEventListener("input", handler));
  return () => inputs.forEach((i) => i.removeEventListener("input", handler));
}

// ---------------------------------------------------------------------------------------------
// Gradio 6 glue: gr.HTML(js_on_load=GRADIO_JS_ON_LOAD, ...props) -> gradioView(element, props, trigger, watch)

/**
 * Mount the view in a gr.HTML and drive it from the page's sliders (js_on_load: gradio_on_load.js). props:
 *   module_url   URL of this file (for js_on_load's import)
 *   model_url    URL of the .onnx (e.g. gradio_api/file=<cache>/<hash>-gan-lab-onnx-1.onnx)
 *   manifest     gan.onnx_export manifest; payload: an *_payload dict (update it from Python; watched)
 *                model_url / manifest may change too (another model: reloaded; null: the server renders)
 *   controls     {param: CSS selector} of Gradio sliders (their elem_id): {t: "#interp-t"},
 *                {amounts: ["#dir-0", "#dir-1", ...]}, {u: "#plane-u", v: "#plane-v"}
 *   fallback_event  event to trigger on the gr.HTML when the browser cannot render (default "submit");
 *                Python listens with html.submit(server_fn, inputs=[sliders], outputs=[server image])
 *   server_image CSS selector of that server image, hidden while the canvas shows the picture
 *   ort_base     folder of the onnxruntime-web files the server hosts (default: the pinned CDN)
 *   display_px   CSS size of the canvas
 * Input events are caught on the document (delegation), so sliders rendered later still count.
 */
export async function gradioView(element, props, trigger, watch, config = null) {
  // the fixed settings may come baked into js_on_load (`config`), so they never depend on when
  // Gradio delivers props; model_url, manifest and payload are always read from props (they change)
  const cfg = { ...props, ...(config || {}) };
  const controls = cfg.controls || {};
  const q = (sel) => document.querySelector(sel);
  const inputOf = (sel) => {
    const el = q(sel);
    return el && (el.matches("input") ? el : el.querySelector("input[type=range]") || el.querySelector("input"));
  };
  const read = (sel) => {
    const input = inputOf(sel);
    return input ? Number(input.value) : null;
  };
  const readParams = () => {
    // a slider that is not in the page (a hidden direction of a small model) counts 0 in a list, and
    // a missing single control is left out (e.g. no truncation slider: the payload's own truncation)
    const p = {};
    for (const [k, sel] of Object.entries(controls)) {
      if (Array.isArray(sel)) p[k] = sel.map((s) => read(s) ?? 0);
      else if (read(sel) !== null) p[k] = read(sel);
    }
    return p;
  };
  const selectors = Object.values(controls).flat();
  const fallbackEvent = cfg.fallback_event === undefined ? "submit" : cfg.fallback_event;
  let view = null;
  // registered before anything is awaited: while the runtime loads, and for good if it cannot, moves go to the server
  const onInput = (ev) => {
    if (!element.isConnected) return document.removeEventListener("input", onInput); // re-mounted elsewhere
    if (!selectors.some((sel) => q(sel)?.contains(ev.target))) return;
    const params = readParams();
    const ok = Object.values(params).flat().every(Number.isFinite);
    if (!view || view.mode !== "browser" || !view.payload || !ok) {
      if (fallbackEvent) setTimeout(() => trigger(fallbackEvent), 0); // after Gradio has taken the slider's new value
      return;
    }
    view.show(params);
  };
  document.addEventListener("input", onInput);
  const used = { model_url: props.model_url, payload: props.payload };
  view = await mountView(element, {
    modelUrl: props.model_url,
    manifest: props.manifest,
    payload: props.payload,
    displayPx: cfg.display_px,
    runtime: cfg.ort_base ? { base: cfg.ort_base } : {},
  });
  const showMode = () => {
    const img = cfg.server_image ? q(cfg.server_image) : null;
    if (img) img.style.display = view.mode === "browser" ? "none" : "";
    view.canvas.style.display = view.mode === "browser" ? "" : "none";
  };
  // props that changed while the runtime was loading (before the watchers below existed)
  if (props.model_url !== used.model_url) await view.setModel(props.model_url, props.manifest);
  if (props.payload !== used.payload) view.setPayload(props.payload);
  showMode();
  if (watch) {
    watch("payload", () => {
      // new latents (another seed, path or corner): redraw here, or ask the server when it renders
      view.setPayload(props.payload);
      if (view.mode === "browser" && view.payload) view.show(readParams());
      else if (view.mode === "server" && props.payload && fallbackEvent) setTimeout(() => trigger(fallbackEvent), 0);
    });
    watch(["model_url", "manifest"], async () => {
      // another model: server images until it has loaded here (or for good, without a model_url)
      const img = cfg.server_image ? q(cfg.server_image) : null;
      if (img) img.style.display = "";
      await view.setModel(props.model_url, props.manifest);
      showMode();
      if (view.mode === "browser" && view.payload) view.show(readParams());
    });
  }
  if (view.mode === "browser" && view.payload) view.show(readParams());
  element.ganView = view;
  return view;
}
