"""The Train tab: data, options, Start / Stop / Resume, and the running job's live view.

Start: `start.click` -> `endpoints.train` (checks, configs from the CPU recipe, data) ->
`JobRunner.start` (gan.ui.jobs), whose thread runs `gan.fit`. A one-second timer then redraws
the view from the job (`panel`), sending only what changed since the page's last draw.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from gan.config import AUGMENTS, LOSSES, PRECISIONS
from gan.hub import is_repo_id

from . import endpoints as ep
from .common import USER_ERRORS
from .lab import Lab
from .settings import Settings
from .train_view import examples_grid, metric_frame, plot_frames, report_markdown, status_line
from .wiring import endpoint, go_to, pixel_image

POLL_S = 1.0
MAX_PLOT_ROWS = 600  # loss rows sent to the plots per draw (thinned evenly)


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
    resume: gr.Button
    resume_run: gr.Dropdown
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
    drawn: gr.State  # what this page shows already: {"key", "grid", "job", "models"}

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
    source = gr.Radio(sources, value="synthetic", label="Source")
    files = gr.File(
        label="Images, or a .zip / .npz of them",
        file_count="multiple",
        file_types=["image", ".zip", ".npz"],
        visible=False,
    )
    folder = gr.Textbox(
        "",
        label="Folder, .zip or .npz path on the server",
        visible=False,
        placeholder="/data/cats  or  ~/Pictures/cats.zip",
    )
    with gr.Row():
        image_size = gr.Dropdown([16, 32, 64, 128], value=td["image_size"], label="Image size (px)")
        channels = gr.Radio([("RGB", 3), ("Grayscale", 1)], value=3, label="Channels")
    load = gr.Button("Load and check data", size="sm")
    return source, files, folder, image_size, channels, load


def _options_ui(td: dict, auto_precision: str) -> list:
    """The options in the `train` endpoint's order: steps .. max_minutes."""
    recipe = ep.get_recipe("cpu").configs()[1]  # loss, augmentation and mirroring of the CPU recipe
    gr.Markdown("### 2 · Options")
    with gr.Row():
        steps = gr.Number(td["steps"], label="Steps", precision=0, minimum=1, maximum=1_000_000)
        batch_size = gr.Slider(1, 256, value=td["batch_size"], step=1, label="Batch size")
    with gr.Row():
        lr = gr.Number(td["lr"], label="Learning rate (G and D)", minimum=1e-6, maximum=0.1)
        loss = gr.Radio(list(LOSSES), value=recipe.loss, label="Loss")
    augment = gr.Dropdown(
        list(AUGMENTS),
        value=recipe.augment,
        label="Augmentation",
        info="DiffAugment keeps D from memorising a small set; classic: flips, turns, zooms",
    )
    with gr.Row():
        ema = gr.Dropdown(
            ["auto", "off", "0.99", "0.995", "0.999", "0.9999"],
            value="auto",
            label="EMA of G",
            info="auto: half-life of a tenth of the run",
        )
        precision = gr.Radio(
            list(PRECISIONS),
            value=td.get("precision", "auto"),
            label="Precision",
            info=f"auto on this server: {auto_precision}",
            elem_id="precision",
        )
    with gr.Accordion("Model size and more", open=False):
        with gr.Row():
            g_width = gr.Slider(4, 128, value=td["g_width"], step=4, label="G width")
            d_width = gr.Slider(4, 128, value=td["d_width"], step=4, label="D width")
            z_dim = gr.Slider(2, 256, value=td["z_dim"], step=1, label="z size")
        with gr.Row():
            xflip = gr.Checkbox(recipe.xflip, label="Mirror images (off for digits and text)")
            seed = gr.Number(0, label="Seed", precision=0, minimum=0)
            preview_every = gr.Number(
                td.get("preview_every", 0), label="Preview every N steps (0 = auto)", precision=0, minimum=0
            )
            max_minutes = gr.Number(0, label="Time limit in minutes (0 = none)", minimum=0, maximum=1e6)
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
    ]


def _plot(y: str, title: str, y_title: str, elem_id: str, **kw) -> gr.LinePlot:
    return gr.LinePlot(None, x="step", y=y, title=title, y_title=y_title, height=260, elem_id=elem_id, **kw)


def create_ui(settings: Settings, auto_precision: str) -> TrainUI:
    td = {**ep.TRAIN_DEFAULTS, **settings.train_defaults}
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            source, files, folder, image_size, channels, load = _data_ui(settings, td)
            options = _options_ui(td, auto_precision)
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="start")
                stop = gr.Button("Stop", variant="stop", interactive=False, elem_id="stop")
                resume = gr.Button("Resume", interactive=False, visible=False, elem_id="resume")
            resume_run = gr.Dropdown(
                [], value="", label="Run to resume (up to Steps in total)", allow_custom_value=True, visible=False
            )
        with gr.Column(scale=2):
            status = gr.Markdown("No training run yet.", elem_classes=["gan-status"], elem_id="train-status")
            with gr.Row():
                loss_plot = _plot("value", "Losses", "loss", "loss-plot", color="series")
                prob_plot = _plot(
                    "value", "Discriminator outputs", "mean probability", "prob-plot", color="series", y_lim=[0, 1]
                )
                metric_plot = _plot(
                    "swd", "SWD (lower is better)", "SWD ×10³", "metric-plot", x_title="step", visible=False
                )
            live_grid = pixel_image("Samples from fixed noise", height=420, elem_id="live-grid")
            with gr.Row():
                run_zip = gr.DownloadButton("Download model (.zip)", visible=False)
                use = gr.Button("Use it in Sample and Interpolate", visible=False)
            data_md = gr.Markdown("")
            data_examples = pixel_image("A few training images", height=240, visible=False, buttons=["fullscreen"])
    timer, drawn = gr.Timer(POLL_S), gr.State({})
    return TrainUI(source, files, folder, image_size, channels, load, options, start, stop, resume, resume_run,
                   status, loss_plot, prob_plot, metric_plot, live_grid, run_zip, use, data_md, data_examples,
                   timer, drawn)  # fmt: skip


# ---- the job's view -------------------------------------------------------------------------------


def panel(ui: TrainUI, lab: Lab, model: gr.Dropdown, drawn: dict | None, current: str | None, force: bool = False):
    """What the Train tab shows about the job, as {component: update}: only what changed since this
    page's last draw (`drawn`), everything with `force` (after Start, Stop, Resume, a page load)."""
    drawn, job = dict(drawn or {}), lab.runner.job
    key = [job.id, job.version] if job else None
    if not force and "key" in drawn and drawn["key"] == key:
        return {ui.drawn: drawn}  # nothing changed (an empty dict would read as one output value)
    alive = job is not None and job.alive
    if job is None:
        out: dict = {
            ui.status: "No training run yet. Pick data and options, then press **Start**.",
            ui.loss_plot: None,
            ui.prob_plot: None,
            ui.metric_plot: gr.LinePlot(visible=False),
            ui.live_grid: None,
            ui.run_zip: gr.DownloadButton(visible=False),
            ui.use: gr.Button(visible=False),
        }
    else:
        snap = job.snapshot(max_rows=MAX_PLOT_ROWS)
        loss_df, prob_df = plot_frames(snap["losses"])
        swd = metric_frame(snap["metrics"])  # until the first point: empty axes with the title
        out = {
            ui.status: status_line(job, snap),
            ui.loss_plot: loss_df,
            ui.prob_plot: prob_df,
            ui.metric_plot: gr.LinePlot(
                value=swd if swd is not None else pd.DataFrame({"step": [], "swd": []}), visible=job.metric_every > 0
            ),
        }
        if drawn.get("grid") != [job.id, job.grid_step]:
            out[ui.live_grid] = job.grid
        if drawn.get("job") != job.id and job.data is not None:
            out[ui.data_md] = f"Data of `{job.name}`: " + report_markdown(job.data)
            out[ui.data_examples] = gr.Image(value=examples_grid(job.data), visible=True)
        z = lab.models.zip(job.model_key) if job.model_key and not alive else None
        out[ui.run_zip] = gr.DownloadButton(value=z, visible=z is not None, label=f"Download {job.name}.zip")
        out[ui.use] = gr.Button(visible=z is not None)
        drawn.update(grid=[job.id, job.grid_step], job=job.id)
    resumable = lab.runner.resumable()
    out[ui.start] = gr.Button(interactive=not alive)
    out[ui.stop] = gr.Button(interactive=alive)
    out[ui.resume] = gr.Button(interactive=not alive and bool(resumable), visible=bool(resumable))
    out[ui.resume_run] = gr.Dropdown(
        choices=resumable, value=resumable[0][1] if resumable else "", visible=bool(resumable)
    )
    choices = lab.models.choices()
    values = [v for _, v in choices]
    if force or drawn.get("models") != values:  # a run finished: offer its model
        keep = current if current and (current in values or is_repo_id(current)) else None
        out[model] = gr.Dropdown(choices=choices, value=keep or lab.models.default())
    drawn.update(key=key, models=values)
    out[ui.drawn] = drawn
    return out


def panel_outputs(ui: TrainUI, model: gr.Dropdown) -> list:
    return [
        ui.status,
        ui.loss_plot,
        ui.prob_plot,
        ui.metric_plot,
        ui.live_grid,
        ui.start,
        ui.stop,
        ui.resume,
        ui.resume_run,
        ui.run_zip,
        ui.use,
        ui.data_md,
        ui.data_examples,
        model,
        ui.drawn,
    ]


def redraw_step(ui: TrainUI, lab: Lab, model: gr.Dropdown) -> tuple:
    """(fn, inputs, outputs): the whole view drawn afresh."""

    def redraw(drawn: dict | None, current: str | None):
        return panel(ui, lab, model, drawn, current, force=True)

    return redraw, [ui.drawn, model], panel_outputs(ui, model)


def source_widgets(source: str):
    hub = source == "hub"
    return gr.File(visible=source == "upload"), gr.Textbox(
        visible=source in ("folder", "hub"),
        label="Hub dataset id (user/name)" if hub else "Folder, .zip or .npz path on the server",
        placeholder="user/cat-faces  or  hf://datasets/user/cat-faces"
        if hub
        else "/data/cats  or  ~/Pictures/cats.zip",
    )


def preview_data(lab: Lab, source, files, folder, image_size, channels, seed):
    """'Load and check data': the report and a few images, before anything trains."""
    try:
        data = lab.data(ep.data_spec(lab, source, files, folder, image_size, channels, int(seed or 0)))
    except USER_ERRORS as e:
        raise gr.Error(str(e), print_exception=False) from None
    return report_markdown(data), gr.Image(value=examples_grid(data), visible=True)


def create_event_handlers(ui: TrainUI, lab: Lab, model: gr.Dropdown, tabs: gr.Tabs) -> None:
    private = dict(api_visibility="private")
    redraw, redraw_in, outs = redraw_step(ui, lab, model)
    ui.source.change(source_widgets, ui.source, [ui.files, ui.folder], **private)
    ui.load.click(
        functools.partial(preview_data, lab),
        [ui.source, ui.files, ui.folder, ui.image_size, ui.channels, ui.seed()],
        [ui.data_md, ui.data_examples],
        **private,
    )
    ui.start.click(endpoint(ep.train, lab), ui.train_inputs(), ui.status, api_name="train").success(
        redraw, redraw_in, outs, **private
    )
    ui.stop.click(endpoint(ep.stop, lab), None, ui.status, api_name="stop").then(redraw, redraw_in, outs, **private)
    ui.resume.click(endpoint(ep.resume, lab), [ui.resume_run, ui.steps()], ui.status, api_name="resume").success(
        redraw, redraw_in, outs, **private
    )
    ui.timer.tick(
        functools.partial(panel, ui, lab, model),
        redraw_in,
        outs,
        show_progress="hidden",
        concurrency_limit=None,
        **private,
    )

    def use_trained_model():
        job = lab.runner.job
        return (
            gr.skip()
            if job is None or not job.model_key
            else gr.Dropdown(choices=lab.models.choices(), value=job.model_key)
        )

    ui.use.click(use_trained_model, None, model, **private).then(lambda: go_to("sample"), None, tabs, **private)

    # the script-facing progress endpoint (a script cannot tick the page's Timer): hidden widgets
    since = gr.Number(0, visible=False, precision=0, label="since")
    state, grid = gr.JSON(visible=False, label="state"), gr.Image(visible=False, format="png", label="grid")
    gr.Button(visible=False).click(
        endpoint(ep.progress, lab), since, [state, grid], api_name="progress", concurrency_limit=None
    )
