"""The Train tab's live view of the job: who may control it, what the panel shows (only what changed
since a page's last draw), the job's own form for a reattached page, and Resume's suggested total.
Built by `gan.ui.tab_train`, which wires these to its components."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import gradio as gr

from gan.hub import is_repo_id

from . import inputs as gri
from .common import USER_ERRORS, fmt_duration, md_text
from .lab import Lab
from .train_view import (
    METRIC_TITLE,
    examples_grid,
    metric_frame,
    metric_title,
    plot_frames,
    report_markdown,
    run_label,
    status_line,
)
from .wiring import go_to

if TYPE_CHECKING:
    from .tab_train import TrainUI

POLL_S = 1.0  # how often an open Train tab redraws the job
IDLE_POLL_S = 5.0  # ... and a page on another tab (it still learns of new models and a finished run)
REATTACH_S = 30.0  # a page loaded this recently, whose visitor started the running job, shows it (and its form)
MAX_PLOT_ROWS = 600  # loss rows sent to the plots per draw (thinned evenly)


def chart(df, label: str | None = None) -> gr.LinePlot:
    """A LinePlot update; None while there is no point (the chart shows its title over an empty
    frame: Vega would warn "Infinite extent" in the console for an empty table)."""
    return gr.LinePlot(value=None if df is None or len(df) == 0 else df, **({"label": label} if label else {}))


def viewer(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def may_control(lab: Lab, session: str | None, key: str | None) -> bool:
    """Whether this visitor may stop the running job (and resume its run): always, except on a Space."""
    job = lab.runner.job
    shared = lab.settings.on_space
    return not shared or job is None or job.owner is None or job.owner.matches(session, key)


def resume_choices(lab: Lab, session: str | None, key: str | None, picked: str | None):
    """The "Run to resume" picker: the runs this visitor may resume; the picked one stays picked (also
    while it runs again)."""
    resumable = lab.runner.resumable(session, key, shared=lab.settings.on_space)
    job = lab.runner.job
    names = [v for _, v in resumable]
    if picked and picked not in names and job is not None and job.alive and job.name == picked:
        resumable = [(f"{picked} (running)", picked), *resumable]
        names.insert(0, picked)
    value = picked if picked in names else (names[0] if names else "")
    return resumable, value


def panel(
    ui: TrainUI, lab: Lab, model: gr.Dropdown, drawn: dict | None, current: str | None, picked: str | None = None,
    key: str | None = None, session: str | None = None, force: bool = False,
):  # fmt: skip
    """What the Train tab shows about the job, as {component: update}: only what changed since this
    page's last draw (`drawn`), everything with `force` (after Start, Stop, Resume, a page load).
    `session` / `key`: who is looking (the job's starter may stop it; on a Space others only watch)."""
    drawn, job = dict(drawn or {}), lab.runner.job
    if force and key and lab.settings.on_space:
        lab.runner.adopt(session, key)  # a reload of the starter's page: a new session, the same run key
    mine = may_control(lab, session, key)
    sees = job is None or mine or lab.runner.can_see(job.name, session)
    place = lab.runner.place(session)
    dkey = [job.id, job.version, mine, sees, place and place[0], len(lab.runner.queue)] if job else None
    resumable, pick = resume_choices(lab, session, key, picked)
    if not force and "key" in drawn and drawn["key"] == dkey and drawn.get("resumable") == resumable:
        return {ui.drawn: drawn}  # nothing changed (an empty dict would read as one output value)
    alive = job is not None and job.alive
    if job is None:
        last = lab.runner.last_run(session, key, shared=lab.settings.on_space)  # a Space: only the viewer's own
        out = empty_view(ui, last or "No training run yet. Pick data and options, then press **Start**.")
    elif not sees:  # a Space: another visitor's run, not shared: that the trainer is busy, nothing of it
        out = empty_view(ui, stranger_line(lab, job, session))
        if drawn.get("job") is not None:  # what an earlier (own, or shared) run showed goes
            out[ui.data_md] = ""
            out[ui.data_examples] = gr.Image(value=None, visible=False)
        drawn.update(grid=None, job=None)
    else:
        snap = job.snapshot(max_rows=MAX_PLOT_ROWS)
        loss_df, prob_df = plot_frames(snap["losses"])
        status = status_line(job, snap)
        if alive and not mine:
            status += (
                f"\n\n*Started by another visitor, who shares its live view: only they can stop it. {job.limits()} "
                "Meanwhile Sample, Interpolate and Explore keep working.*"
            )
        out = {
            ui.status: status,
            ui.loss_plot: chart(loss_df),
            ui.prob_plot: chart(prob_df),
            ui.metric_plot: chart(metric_frame(snap["metrics"]), metric_title(snap, job.start_step)),
        }
        if drawn.get("grid") != [job.id, job.grid_step]:
            out[ui.live_grid] = job.grid
        if drawn.get("job") != job.id and job.data is not None:
            out[ui.data_md] = data_markdown(job)
            out[ui.data_examples] = gr.Image(value=examples_grid(job.data), visible=True)
        z = lab.models.zip(job.model_key) if job.model_key and not alive else None
        out[ui.run_zip] = gr.DownloadButton(value=z, visible=z is not None, label=f"Download {job.name}.zip")
        out[ui.use] = gr.Button(visible=z is not None)
        drawn.update(grid=[job.id, job.grid_step], job=job.id)
        fresh = time.time() - drawn.get("loaded", 0.0) < REATTACH_S
        if alive and mine and fresh and drawn.get("attached") != job.id:  # a reload: back to the run
            out.update(form_updates(ui, job))
            drawn["attached"] = job.id
    out[ui.start] = gr.Button(interactive=not alive or (not mine and bool(lab.runner.max_queue)))  # join the line
    out[ui.stop] = gr.Button(interactive=alive and mine)
    out[ui.share] = gri.Checkbox(visible=alive and mine and lab.settings.on_space, value=bool(job and job.shared))
    can_resume = bool(resumable) and not (alive and pick == job.name)
    out[ui.resume] = gr.Button(interactive=not alive and can_resume, visible=bool(resumable))
    if force or drawn.get("resumable") != resumable:  # redrawn only when the list changes: the pick stays
        out[ui.resume_run] = gri.Dropdown(choices=resumable, value=pick, visible=bool(resumable))
        out[ui.resume_to] = gri.Number(visible=bool(resumable))
    choices = lab.models.choices()
    values = [v for _, v in choices]
    if force or drawn.get("models") != values:  # a run finished: offer its model
        keep = current if current and (current in values or is_repo_id(current)) else None
        out[model] = gri.Dropdown(choices=choices, value=keep or lab.models.default())
    drawn.update(key=dkey, models=values, resumable=resumable)
    out[ui.drawn] = drawn
    return out


def empty_view(ui: TrainUI, status: str) -> dict:
    """The Train tab's run view with nothing in it but a status line."""
    return {
        ui.status: status,
        ui.loss_plot: chart(None),
        ui.prob_plot: chart(None),
        ui.metric_plot: chart(None, METRIC_TITLE),
        ui.live_grid: None,
        ui.run_zip: gr.DownloadButton(visible=False),
        ui.use: gr.Button(visible=False),
    }


def stranger_line(lab: Lab, job, session: str | None) -> str:
    """What a visitor sees of another visitor's run on a Space: that the trainer is busy, when it ends,
    the line for it and their place in it."""
    notice = lab.runner.notices.get(session) if session else None
    if notice:
        return md_text(notice)
    if not job.alive:
        return "No run of yours yet. Pick data and options, then press **Start**."
    eta = job.eta_s()
    ends = f" It ends in about {fmt_duration(eta)}." if eta is not None else f" {job.limits()}"
    text = f"**Busy**: another visitor's run is training (step {job.step:,} of {job.steps:,}).{ends}"
    place, waiting = lab.runner.place(session), len(lab.runner.queue)
    if place is not None:
        when = f"in about {fmt_duration(place[1])}" if place[1] is not None else "when the runs ahead of you end"
        text += f" You are number {place[0]} in line: your run starts by itself {when}; keep this page open."
    elif lab.runner.max_queue:
        line = f"{waiting} waiting" if waiting else "nobody waiting yet"
        text += f" Press **Start** to join the line ({line}, room for {lab.runner.max_queue})."
    return text + " Meanwhile Sample, Interpolate and Explore keep working."


def data_markdown(job) -> str:
    """The Data box of a job's page: its run and the data report (visitor names escaped)."""
    return f"Data of {run_label(job.name)}: " + report_markdown(job.data)


def form_updates(ui: TrainUI, job) -> dict:
    """The Train tab, showing the form as the job was started (a reattached page)."""
    f, spec = job.form, job.spec
    out = {ui.tabs: go_to("train"), ui.timer: gr.Timer(POLL_S)} if ui.tabs is not None else {}
    if not f:
        return out
    out.update({ui.source: f["source"], ui.image_size: f["image_size"], ui.channels: f["channels"]})
    if spec is not None and spec.kind in ("folder", "hub") and spec.paths:
        out[ui.folder] = spec.paths[0]
    out.update({comp: f[name] for comp, name in zip(ui.options, FORM_FIELDS) if name in f})
    return out


def panel_outputs(ui: TrainUI, model: gr.Dropdown) -> list:
    form = [ui.source, ui.folder, ui.image_size, ui.channels, *ui.options]
    return [
        *([ui.tabs, ui.timer] if ui.tabs is not None else []),
        *form,
        ui.status,
        ui.loss_plot,
        ui.prob_plot,
        ui.metric_plot,
        ui.live_grid,
        ui.start,
        ui.stop,
        ui.share,
        ui.resume,
        ui.resume_run,
        ui.resume_to,
        ui.run_zip,
        ui.use,
        ui.data_md,
        ui.data_examples,
        model,
        ui.drawn,
    ]


def panel_inputs(ui: TrainUI, model: gr.Dropdown) -> list:
    return [ui.drawn, model, ui.resume_run, ui.run_key]


def redraw_step(ui: TrainUI, lab: Lab, model: gr.Dropdown) -> tuple:
    """(fn, inputs, outputs): the whole view drawn afresh."""

    def redraw(drawn: dict | None, current: str | None, picked: str | None, key: str | None, request: gr.Request):
        return panel(ui, lab, model, drawn, current, picked, key, viewer(request), force=True)

    return redraw, panel_inputs(ui, model), panel_outputs(ui, model)


FORM_FIELDS = ("steps", "batch_size", "lr", "loss", "augment", "ema", "precision", "g_width", "d_width", "z_dim",
               "xflip", "seed", "preview_every", "max_minutes", "cooldown")  # fmt: skip  # the order of TrainUI.options


def reattach_step(ui: TrainUI, lab: Lab, tabs: gr.Tabs) -> tuple:
    """(fn, inputs, outputs) for a page load: the page of the running job's starter (any page, locally)
    opens on the Train tab with the job's own settings. Should the run key arrive from localStorage
    only after the load, the Train tab's next draws do it (within REATTACH_S of the load)."""

    def reattach(drawn: dict | None, key: str | None, request: gr.Request):
        drawn = {**(drawn or {}), "loaded": time.time()}
        job = lab.runner.job
        out: dict = {}
        if job is not None and job.alive and may_control(lab, viewer(request), key):
            out = form_updates(ui, job)
            drawn["attached"] = job.id
        return {**out, ui.drawn: drawn}

    outputs = [ui.drawn, tabs, ui.timer, ui.source, ui.folder, ui.image_size, ui.channels, *ui.options]
    return reattach, [ui.drawn, ui.run_key], outputs


def suggest_total(lab: Lab, run: str | None, steps_box) -> int | gr.skip:
    """The "Resume up to step" value for a picked run: its own total if it stopped early, else the
    Steps box when that is further, else twice its steps; at most the server's GAN_MAX_STEPS (runs
    already there are not offered: JobRunner.can_continue)."""
    if not run:
        return gr.skip()
    try:
        _, meta = lab.runner.read_meta(run)
        done, total = int(meta.get("step", 0)), int(meta["train_config"]["steps"])
    except (USER_ERRORS, KeyError, TypeError):
        return gr.skip()
    if done < total:
        return total
    try:
        box = int(steps_box or 0)
    except (TypeError, ValueError):
        box = 0
    return min(box if box > done else 2 * max(done, 1), lab.settings.max_steps)  # never past the server's limit
