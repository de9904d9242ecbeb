// js_on_load of the gr.HTML that shows the in-browser generator (Gradio 6 runs this body with
// element, trigger, props, server, upload, watch). Until browser_gen.js has loaded, and for good if
// it cannot load, a slider move triggers the fallback event, so the server renders as before.
const selectors = Object.values(props.controls || {}).flat();
const fallbackEvent = props.fallback_event === undefined ? "submit" : props.fallback_event;
const untilLoaded = (ev) => {
  if (!element.isConnected) return document.removeEventListener("input", untilLoaded);
  if (fallbackEvent && selectors.some((s) => document.querySelector(s)?.contains(ev.target))) {
    setTimeout(() => trigger(fallbackEvent), 0); // after Gradio has taken the slider's new value
  }
};
document.addEventListener("input", untilLoaded);
import(new URL(props.module_url, document.baseURI).href) // relative URLs work behind a proxy's root path
  .then((m) => {
    document.removeEventListener("input", untilLoaded);
    return m.gradioView(element, props, trigger, watch);
  })
  .catch((e) => {
    console.error("in-browser generator:", e);
    element.dataset.ganMode = "server";
    element.dataset.ganReason = String(e?.message ?? e);
  });
