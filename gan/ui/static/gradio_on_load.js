// js_on_load of the gr.HTML that shows the in-browser generator (Gradio 6 runs this body with
// element, trigger, props, server, upload, watch). Until browser_gen.js has loaded, and for good if
// it cannot load, a slider move triggers the fallback event, so the server renders as before.
// gan.ui.browser_view prepends `const GAN_VIEW = {...}` (module_url, controls, ...): fixed settings
// that must not depend on when Gradio delivers props to a component of a tab not yet shown.
const cfg = { ...props, ...(typeof GAN_VIEW === "object" ? GAN_VIEW : {}) };
const selectors = Object.values(cfg.controls || {}).flat();
const fallbackEvent = cfg.fallback_event === undefined ? "submit" : cfg.fallback_event;
const untilLoaded = (ev) => {
  if (!element.isConnected) return document.removeEventListener("input", untilLoaded);
  if (fallbackEvent && selectors.some((s) => document.querySelector(s)?.contains(ev.target))) {
    setTimeout(() => trigger(fallbackEvent), 0); // after Gradio has taken the slider's new value
  }
};
document.addEventListener("input", untilLoaded);
import(new URL(cfg.module_url, document.baseURI).href) // relative URLs work behind a proxy's root path
  .then((m) => {
    document.removeEventListener("input", untilLoaded);
    return m.gradioView(element, props, trigger, watch, typeof GAN_VIEW === "object" ? GAN_VIEW : null);
  })
  .catch((e) => {
    console.error("in-browser generator:", e);
    element.dataset.ganMode = "server";
    element.dataset.ganReason = String(e?.message ?? e);
  });
