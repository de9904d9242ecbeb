"""The page: header, model picker, Hub panel and the four tabs, and the events between them.

Each tab builds its components (`create_ui`) and wires its own events (`create_event_handlers`);
this module wires what crosses tabs (seeds carried from Sample, the model picker) and the one
refresh chain that redraws every tab after a model change or a page load (`VIEWS`).
"""

from __future__ import annotations

import html

import gradio as gr

from gan.device import choose_precision, resolve_device
from gan.hub import is_repo_id

from . import browser_view, hub_panel, tab_explore, tab_interpolate, tab_sample, tab_train, train_live
from . import inputs as gri
from .lab import Lab
from .models import NO_MODEL
from .settings import Settings
from .wiring import go_to, lighten_queue_analytics

INTRO = (
    "# GAN Lab\nTrain a small DCGAN on your own pictures and watch it learn; then make grids, "
    "walk through its latent space and download animations."
)


def auto_precision_reason() -> str:
    """What precision auto picks for training on this server, and why (gan.device caches the
    measurement per machine, so this is quick after the first start)."""
    return choose_precision("auto", resolve_device("auto")).reason


def model_widgets(lab: Lab, key: str | None):
    """Model info, its zip download, the three no-model notices and the Hub panel's message, for a
    picker value (a Hub repo id typed in is loaded and checked now: hub_panel.check_choice)."""
    has_any = lab.models.default() is not None
    problem, hub_msg = hub_panel.check_choice(lab, key)
    z = lab.models.zip(key) if key else None
    info = problem or (lab.models.info(key) if key else (NO_MODEL if not has_any else "Pick a model."))
    notices = [gr.Markdown(visible=not has_any)] * 3
    return (info, gr.DownloadButton(value=z, visible=z is not None), *notices, hub_msg or gr.skip())


def refresh_models(lab: Lab, current: str | None) -> gr.Dropdown:
    """The picker's choices afresh (models may have been trained since the page was built)."""
    choices = lab.models.choices()
    values = [v for _, v in choices]
    keep = current in values or (current and is_repo_id(current))
    return gri.Dropdown(choices=choices, value=current if keep else lab.models.default())


def chain(dep, steps: list[tuple]):
    """Run the (fn, inputs, outputs) steps one after the other after the event `dep`."""
    for fn, inputs, outputs in steps:
        dep = dep.then(fn, inputs, outputs, api_visibility="private", show_progress="hidden")
    return dep


def model_bar(lab: Lab) -> tuple:
    """The model picker, its info line, Rescan and the model's zip download, under the header."""
    has_model = lab.models.default() is not None
    with gr.Row(equal_height=True):
        model = gri.Dropdown(
            label="Model",
            choices=lab.models.choices(),
            value=lab.models.default(),
            allow_custom_value=True,
            scale=3,
            min_width=240,
            info="Shipped models, models trained here, or a Hub repo id (user/name)",
        )
        with gr.Column(scale=2, min_width=240):
            info = gr.Markdown(lab.models.info(lab.models.default()) if has_model else NO_MODEL, elem_id="model-info")
            with gr.Row():
                rescan = gr.Button("↻ Rescan models", size="sm", min_width=120)
                model_zip = gr.DownloadButton("Download model (.zip)", visible=False, size="sm", min_width=160)
    return model, info, rescan, model_zip


def wire_across_tabs(lab: Lab, model, tabs, sample, interp, explore, train, tab_blocks) -> None:
    """Seeds carried from Sample to Interpolate and Explore, and the job's polling rate by the open tab."""
    private = dict(api_visibility="private")
    sample_tab, interp_tab, explore_tab, train_tab = tab_blocks
    for button, target, tab in (
        (sample.to_a, interp.seed_a, "interpolate"),
        (sample.to_b, interp.seed_b, "interpolate"),
    ):
        button.click(lambda s, tab=tab: (s, go_to(tab)), sample.picked, [target, tabs], **private)
    # to Explore with the thumbnail's truncation too, so the image is the one clicked
    d = explore.directions
    sample.to_explore.click(
        lambda s, psi: (s, psi, go_to("explore")),
        [sample.picked, sample.truncation],
        [d.seed, d.truncation, tabs],
        **private,
    ).then(*tab_explore.redraw_directions(explore, lab, model), show_progress="hidden", **private)
    # the Train tab redraws the job every second while it is open, other tabs every 5 s (20 open
    # pages would otherwise cost a 2-vCPU Space 20 requests a second)
    fast, slow = lambda: gr.Timer(train_live.POLL_S), lambda: gr.Timer(train_live.IDLE_POLL_S)  # noqa: E731
    train_tab.select(fast, None, train.timer, **private)
    for tab in (sample_tab, interp_tab, explore_tab):
        tab.select(slow, None, train.timer, **private)
    sample.to_train.click(lambda: (go_to("train"), fast()), None, [tabs, train.timer], **private)


def build_app(settings: Settings | None = None) -> gr.Blocks:
    """The whole UI over one Lab (models, the training job) made from `settings` (default: the
    environment's). The Blocks carries the Lab as `demo.lab` (tests, the launcher's shutdown)."""
    settings = settings or Settings.from_env()
    lighten_queue_analytics()
    lab = Lab(settings, warn=lambda text: gr.Warning(html.escape(text, quote=False)))  # toasts render HTML
    has_model = lab.models.default() is not None
    auto = auto_precision_reason()
    gr.set_static_paths(browser_view.static_paths(settings))  # the in-browser generator's JS and ONNX files
    # uploads and files handed to browsers: Gradio deletes those older than an hour, every 10 minutes
    with gr.Blocks(title="GAN Lab", delete_cache=(600, 3600)) as demo:
        gr.Markdown(INTRO, elem_id="gan-header")
        model, info, rescan, model_zip = model_bar(lab)
        hub = hub_panel.create_ui(settings)
        with gr.Tabs() as tabs:
            with gr.Tab("Sample", id="sample") as sample_tab:
                sample = tab_sample.create_ui(has_model)
            with gr.Tab("Interpolate", id="interpolate") as interp_tab:
                interp = tab_interpolate.create_ui(has_model, settings)
            with gr.Tab("Explore", id="explore") as explore_tab:
                explore = tab_explore.create_ui(has_model, settings)
            with gr.Tab("Train", id="train") as train_tab:
                train = tab_train.create_ui(settings, auto)

        hub_panel.create_event_handlers(hub, lab, model)
        tab_sample.create_event_handlers(sample, lab, model)
        tab_interpolate.create_event_handlers(interp, lab, model)
        tab_explore.create_event_handlers(explore, lab, model)
        tab_train.create_event_handlers(train, lab, model, tabs)

        private = dict(api_visibility="private")
        wire_across_tabs(
            lab, model, tabs, sample, interp, explore, train, (sample_tab, interp_tab, explore_tab, train_tab)
        )

        # the one refresh chain: a new model redraws every tab; a page load also redraws the job
        widgets = (
            lambda key: model_widgets(lab, key),
            model,
            [info, model_zip, sample.notice, interp.notice, explore.notice, hub.status],
        )
        sliders, *interp_views = tab_interpolate.render_steps(interp, lab, model)
        # the sliders first (reset to 0; the images read them), then the open tab's grid, then the rest
        views = [sliders, *tab_sample.render_steps(sample, lab, model), *interp_views,
                 *tab_explore.render_steps(explore, lab, model)]  # fmt: skip
        chain(model.change(*widgets, **private), views)
        rescan.click(lambda key: refresh_models(lab, key), model, model, **private).then(*widgets, **private)
        chain(
            demo.load(lambda key: refresh_models(lab, key), model, model, **private),
            [widgets, train_live.redraw_step(train, lab, model), train_live.reattach_step(train, lab, tabs), *views],
        )
        demo.unload(visitor_left(lab))

    demo.lab = lab
    return demo


def visitor_left(lab: Lab):
    """The unload handler: when a page closes, its decoded data goes, and its place in the trainer's line."""

    def left(request: gr.Request) -> None:
        session = getattr(request, "session_hash", None)
        lab.release(session)
        lab.runner.leave(session)

    left.__annotations__ = {"request": gr.Request, "return": None}  # Gradio reads the type, not a string
    return left
