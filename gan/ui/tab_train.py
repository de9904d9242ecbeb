"""The Train tab: data, options, Start / Stop / Resume, and the running job's live view.

Start: `start.click` -> `endpoints.train` (checks, configs from the CPU recipe, data) ->
`JobRunner.start` (gan.ui.jobs), whose thread runs `gan.fit`. A timer then redraws the view from
the job (`panel`), sending only what changed since the page's last draw: every second while the
Train tab is open, every 5 s while the page shows another tab (build.py).

Ownership (gan.ui.ownership): the starting page claims the run's key into `run_key`, a
gr.BrowserState (localStorage), so a reload still may stop it; on a Space every other visitor
watches the run read-only (Stop disabled, a note saying when it ends).
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass

import gradio as gr

from gan.config import AUGMENTS, LOSSES, PRECISIONS

from . import endpoints as ep
from . import inputs as gri
from .common import USER_ERRORS, md_text
from .lab import Lab
from .ownership import browser_secret
from .settings import Settings
from .train_live import IDLE_POLL_S, panel, redraw_step, suggest_total, viewer
from .train_view import (
    METRIC_TITLE,
    examples_grid,
    report_markdown,
)
from .wiring import endpoint, go_to, pixel_image


@dataclass
class TrainUI:
    source: gr.Radio
    files: gr.File
    folder: gr.Textbox
    image_size: gr.Dropdown
    channels: gr.Radio
    load: gr.Button
    options: list  # the `train` endpoint's inputs after the data ones, in its parameter order
    start: gr.Button
    stop: gr.Button
    share: gr.Checkbox  # on a Space: the starter lets others watch the run live
    resume: gr.Button
    resume_run: gr.Dropdown
    resume_to: gr.Number
    status: gr.Markdown
    loss_plot: gr.LinePlot
    prob_plot: gr.LinePlot
    metric_plot: gr.LinePlot
    live_grid: gr.Image
    run_zip: gr.DownloadButton
    use: gr.Button
    data_md: gr.Markdown
    data_examples: gr.Image
    timer: gr.Timer
    drawn: gr.State  # what this page shows already: {"key", "grid", "job", "models", "resumable"}
    run_key: gr.BrowserState  # the key of the run this browser started (gan.ui.ownership)
    tabs: gr.Tabs | None = None  # the page's tabs (a reattached page opens the Train tab)

    def train_inputs(self) -> list:
        return [self.source, self.files, self.folder, self.image_size, self.channels, *self.options]

    def steps(self) -> gr.Number:
        return self.options[0]

    def seed(self) -> gr.Number:
        return self.options[11]


def _data_ui(settings: Settings, td: dict) -> tuple:
    gr.Markdown("### 1 · Data")
    sources = [("Built-in shapes", "synthetic"), ("Upload images or a zip", "upload"), ("Hub dataset", "hub")]
    if not settings.on_space:
        sources.append(("Folder on this server", "folder"))
    source = gri.Radio(sources, value="synthetic", label="Source")
    files = gri.File(
        label="Images, or a .zip / .npz of them",
        file_count="multiple",
        file_types=["image", ".zip", ".npz"],
        visible=False,
        elem_id="train-files",
    )
    folder = gri.Textbox(
        "",
        label="Folder, .zip or .npz path on the server",
        visible=False,
        placeholder="/data/cats  or  ~/Pictures/cats.zip",
    )
    with gr.Row():
        image_size = gri.Dropdown([16, 32, 64, 128], value=td["image_size"], label="Image size (px)")
        channels = gri.Radio([("RGB", 3), ("Grayscale", 1)], value=3, label="Channels")
    load = gr.Button("Load and check data", size="sm")
    return source, files, folder, image_size, channels, load


def _options_ui(td: dict, auto_precision: str, settings: Settings) -> list:
    """The options in the `train` endpoint's order: steps .. cooldown."""
    recipe = ep.get_recipe("cpu").configs()[1]  # loss, augmentation and mirroring of the CPU recipe
    gr.Markdown("### 2 · Options")
    with gr.Row():
        steps = gri.Number(
            td["steps"], label="Steps", precision=0, minimum=1, maximum=settings.max_steps, min_width=140
        )
        batch_size = gri.Slider(1, 256, value=td["batch_size"], step=1, label="Batch size", min_width=220)
    with gr.Row():
        lr = gri.Number(td["lr"], label="Learning rate (G and D)", minimum=1e-6, maximum=0.1, min_width=160)
        loss = gri.Radio(list(LOSSES), value=recipe.loss, label="Loss", min_width=200)
    augment = gri.Dropdown(
        list(AUGMENTS),
        value=recipe.augment,
        label="Augmentation",
        info="DiffAugment keeps D from memorising a small set; classic: flips, turns, zooms",
    )
    with gr.Row():
        ema = gri.Dropdown(
            ["auto", "off", "0.99", "0.995", "0.999", "0.9999"],
            value="auto",
            label="EMA of G",
            info="auto: half-life of a tenth of the run",
        )
        precision = gri.Radio(
            list(PRECISIONS),
            value=td.get("precision", "auto"),
            label="Precision",
            info=f"auto on this server: {auto_precision}",
            elem_id="precision",
        )
    cap = settings.max_minutes or 0
    with gr.Accordion("Model size and more", open=False):
        with gr.Row():
            g_width = gri.Slider(4, 128, value=td["g_width"], step=4, label="G width", min_width=260)
            d_width = gri.Slider(4, 128, value=td["d_width"], step=4, label="D width", min_width=260)
            z_dim = gri.Slider(2, 256, value=td["z_dim"], step=1, label="z size", min_width=260)
        xflip = gri.Checkbox(recipe.xflip, label="Mirror images (off for digits and text)", elem_id="xflip")
        cooldown = gri.Slider(
            0.0, ep.MAX_COOLDOWN, value=recipe.cooldown, step=0.05, label="Cool-down",
            info=f"the last fraction of the run (its steps, or its time limit if that comes first) at "
            f"{recipe.cooldown_lr:g}× the learning rates: paid in runs of 2,800 to 5,600 steps, cost in runs of "
            "1,000 to 1,400 (64-px cats, batch 32)",
            elem_id="cooldown",
        )  # fmt: skip
        with gr.Row():
            seed = gri.Number(0, label="Seed", precision=0, minimum=0, min_width=140)
            preview_every = gri.Number(
                td.get("preview_every", 0), label="Preview every N steps (0 = auto)", precision=0, minimum=0,
                min_width=200,
            )  # fmt: skip
            max_minutes = gri.Number(
                0,
                label=f"Time limit in minutes (0 = {cap:g})" if cap else "Time limit in minutes (0 = none)",
                minimum=0,
                maximum=cap or 1e6,
                min_width=200,
                info=f"at most {cap:g} on this server" if cap else None,
            )
    return [
        steps,
        batch_size,
        lr,
        loss,
        augment,
        ema,
        precision,
        g_width,
        d_width,
        z_dim,
        xflip,
        seed,
        preview_every,
        max_minutes,
        cooldown,
    ]


def _plot(y: str, title: str, y_title: str, elem_id: str, value=None, **kw) -> gr.LinePlot:
    """A chart whose title is its label (shown above it, also while it is empty)."""
    return gr.LinePlot(
        value, x="step", y=y, label=title, show_label=True, y_title=y_title, elem_id=elem_id,
        min_width=280, **kw,
    )  # fmt: skip


def create_ui(settings: Settings, auto_precision: str) -> TrainUI:
    td = {**ep.TRAIN_DEFAULTS, **settings.train_defaults}
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            source, files, folder, image_size, channels, load = _data_ui(settings, td)
            options = _options_ui(td, auto_precision, settings)
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="start", min_width=90)
                stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop", min_width=90)
                resume = gr.Button("Resume", interactive=False, visible=False, elem_id="resume", min_width=90)
            share = gri.Checkbox(
                False, label="Let other visitors watch this run live (its samples, curves and data report)",
                visible=False, elem_id="share",
            )  # fmt: skip
            with gr.Row():
                resume_run = gri.Dropdown(
                    [], value="", label="Run to resume", allow_custom_value=True, visible=False, min_width=200,
                    elem_id="resume-run", scale=2,
                )  # fmt: skip
                resume_to = gri.Number(
                    0, label="Resume up to step", precision=0, minimum=1, visible=False, min_width=200,
                    elem_id="resume-to", info="the run's new total",
                )  # fmt: skip
        with gr.Column(scale=2, min_width=320):
            status = gr.Markdown("No training run yet.", elem_classes=["gan-status"], elem_id="train-status")
            with gr.Row():
                loss_plot = _plot("value", "Losses", "loss", "loss-plot", color="series")
                prob_plot = _plot("value", "D's mean output", "probability", "prob-plot", color="series", y_lim=[0, 1])
                metric_plot = _plot("swd", METRIC_TITLE, "SWD ×10³", "metric-plot", x_title="step")
            live_grid = pixel_image("Samples from fixed noise", height=420, elem_id="live-grid")
            with gr.Row():
                run_zip = gr.DownloadButton("Download model (.zip)", visible=False)
                use = gr.Button("Use it in Sample and Interpolate", visible=False)
            data_md = gr.Markdown("", elem_id="train-data")
            data_examples = pixel_image("A few training images", height=240, visible=False, buttons=["fullscreen"])
    timer, drawn = gr.Timer(IDLE_POLL_S), gr.State({})  # the page opens on Sample: see build.py
    run_key = gr.BrowserState(
        "", storage_key="gan-lab-run-key", secret=browser_secret(settings.runs_dir), render=False
    )  # rendered with the page; the same secret after a restart: the page's key still opens its runs
    return TrainUI(source, files, folder, image_size, channels, load, options, start, stop, share, resume, resume_run,
                   resume_to, status, loss_plot, prob_plot, metric_plot, live_grid, run_zip, use, data_md,
                   data_examples, timer, drawn, run_key)  # fmt: skip


# ---- the job's view -------------------------------------------------------------------------------


def source_widgets(source: str):
    hub = source == "hub"
    return gr.File(visible=source == "upload"), gri.Textbox(
        visible=source in ("folder", "hub"),
        label="Hub dataset id (user/name)" if hub else "Folder, .zip or .npz path on the server",
        placeholder="user/cat-faces  or  hf://datasets/user/cat-faces"
        if hub
        else "/data/cats  or  ~/Pictures/cats.zip",
    )


def preview_data(lab: Lab, source, files, folder, image_size, channels, seed, request: gr.Request = None):
    """'Load and check data': the report and a few images, before anything trains. A failed check
    replaces what an earlier check (or run) showed with its message."""
    session = getattr(request, "session_hash", None)
    try:
        data = lab.data(ep.data_spec(lab, source, files, folder, image_size, channels, int(seed or 0)), session)
    except USER_ERRORS as e:
        gr.Warning(html.escape(str(e), quote=False))  # toasts render HTML
        return f"**Data check failed**: {md_text(e)}", gr.Image(value=None, visible=False)
    return report_markdown(data), gr.Image(value=examples_grid(data), visible=True)


def create_event_handlers(ui: TrainUI, lab: Lab, model: gr.Dropdown, tabs: gr.Tabs) -> None:
    private = dict(api_visibility="private")
    ui.tabs = tabs
    ui.run_key.render()  # at the page level: a tab's components mount only when it is opened
    redraw, redraw_in, outs = redraw_step(ui, lab, model)
    ui.source.change(source_widgets, ui.source, [ui.files, ui.folder], **private)
    ui.load.click(
        functools.partial(preview_data, lab),
        [ui.source, ui.files, ui.folder, ui.image_size, ui.channels, ui.seed()],
        [ui.data_md, ui.data_examples],
        **private,
    )

    def claim(request: gr.Request):  # the starting page keeps the run's key (a reload still may stop it)
        key = lab.runner.claim_key(viewer(request))
        return key if key else gr.skip()

    ui.start.click(endpoint(ep.train, lab), ui.train_inputs(), ui.status, api_name="train").success(
        claim, None, ui.run_key, **private
    ).then(redraw, redraw_in, outs, **private)
    ui.stop.click(endpoint(ep.stop, lab), ui.run_key, ui.status, api_name="stop").then(
        redraw, redraw_in, outs, **private
    )
    ui.share.input(endpoint(ep.share, lab), [ui.share, ui.run_key], ui.status, api_name="share").then(
        redraw, redraw_in, outs, **private
    )
    ui.resume.click(
        endpoint(ep.resume, lab), [ui.resume_run, ui.resume_to, ui.run_key], ui.status, api_name="resume"
    ).success(claim, None, ui.run_key, **private).then(redraw, redraw_in, outs, **private)
    ui.resume_run.change(functools.partial(suggest_total, lab), [ui.resume_run, ui.steps()], ui.resume_to, **private)

    def tick(drawn, current, picked, key, request: gr.Request):
        return panel(ui, lab, model, drawn, current, picked, key, viewer(request))

    ui.timer.tick(tick, redraw_in, outs, show_progress="hidden", concurrency_limit=None, **private)

    def use_trained_model():
        job = lab.runner.job
        return (
            gr.skip()
            if job is None or not job.model_key
            else gri.Dropdown(choices=lab.models.choices(), value=job.model_key)
        )

    ui.use.click(use_trained_model, None, model, **private).then(lambda: go_to("sample"), None, tabs, **private)

    # the script-facing progress endpoint (a script cannot tick the page's Timer): hidden widgets
    since = gri.Number(0, visible=False, precision=0, label="since")
    state, grid = gr.JSON(visible=False, label="state"), gr.Image(visible=False, format="png", label="grid")
    gr.Button(visible=False).click(
        endpoint(ep.progress, lab), since, [state, grid], api_name="progress", concurrency_limit=None
    )  # on a Space: another visitor's run shows only that the trainer is busy (ep.progress)
