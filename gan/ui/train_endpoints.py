"""The Train tab's endpoints (re-exported by `gan.ui.endpoints`, the app's API): the data choice,
starting a run (checks, the CPU recipe, the cost within the time limit, the line for the trainer),
Resume within the run's time limit, Stop, the job's progress (on a Space only the starter sees the
run) and sharing its live view. Bad input raises AppError with a message meant for the user.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import gan
from gan.cost import machine_cost
from gan.device import choose_precision, resolve_device
from gan.recipes import APP_RUN, auto_metric_every, get_recipe, schedule

from .common import AppError, clamp_int, fmt_duration, md_text, slug
from .job import Waiting, history
from .jobs import MIN_RESUME_MINUTES
from .lab import Lab
from .ownership import check_control
from .run_data import DataSpec


def data_spec(lab: Lab, source: str, files: Any, folder: str | None, image_size: Any, channels: Any, seed: int = 0):
    """The Train tab's data choice -> DataSpec (checked, not loaded)."""
    image_size = clamp_int("image_size", image_size, 16, 256)
    channels = clamp_int("channels", channels, 1, 3)
    text = str(folder or "").strip()
    if source == "synthetic":
        return DataSpec("synthetic", image_size, channels, seed=seed)
    if source == "upload":
        paths = [files] if isinstance(files, (str, Path)) else list(files or [])
        paths = [str(p.get("path") if isinstance(p, dict) else p) for p in paths]
        if not paths:
            raise AppError("Upload a zip of images or a few image files first (or pick the built-in shapes).")
        return DataSpec("upload", image_size, channels, tuple(paths))
    if source == "hub":
        if not text:
            raise AppError("Type a Hub dataset id (user/name, or hf://datasets/user/name).")
        rid = text if text.startswith(gan.data.HF_DATASET_PREFIX) else gan.data.HF_DATASET_PREFIX + text
        return DataSpec("hub", image_size, channels, (rid,))
    if source == "folder":
        if lab.settings.on_space:
            raise AppError("Reading folders on the server is turned off here; upload a zip of images instead.")
        if not text:
            raise AppError("Type the path of a folder (or a .zip / .npz file) on this server.")
        return DataSpec("folder", image_size, channels, (str(Path(text).expanduser()),))
    raise AppError(f"Unknown data source {source!r}; use synthetic, upload, hub or folder.")


def ema_override(choice: str) -> dict[str, float]:
    """The EMA control: auto (the recipe's: a half-life of a tenth of the run), off, or a decay."""
    if choice == "auto":
        return {}
    if choice in ("off", "0"):
        return {"ema_decay": 0.0}
    try:
        return {"ema_decay": float(choice)}
    except (TypeError, ValueError):
        raise AppError(f"EMA must be auto, off or a decay like 0.999; got {choice!r}") from None


def train(
    lab: Lab, source: str = "synthetic", files: list[str] | None = None, folder: str = "", image_size: int = 32,
    channels: int = 3, steps: int = 1500, batch_size: int = 32, lr: float = 2e-4, loss: str = "bce",
    augment: str = "diffaugment", ema: str = "auto", precision: str = "auto", g_width: int = 32, d_width: int = 32,
    z_dim: int = 100, xflip: bool = True, seed: int = 0, preview_every: int = 0, max_minutes: float = 0.0,
    cooldown: float = 0.0, session: str | None = None,
) -> str:  # fmt: skip
    """Start a training run in the background (one per server); follow it with `progress`. On a Space
    the run belongs to the starting session (`session`, Gradio's; not an API parameter): only it may
    stop or resume the run."""
    lab.runner.check_room(session)  # a full line (or none) is said before anything is decoded
    steps = clamp_int("steps", steps, 1, lab.settings.max_steps)
    seed = clamp_int("seed", seed, 0, 2**31 - 1)
    minutes, capped = capped_minutes(lab, max_minutes)
    cooldown = fraction("cooldown", cooldown, MAX_COOLDOWN)
    preview_every = clamp_int("preview_every", preview_every or 0, 0, steps)
    if preview_every:  # at most MAX_PREVIEWS sample grids (PNG files) per run
        preview_every = max(preview_every, math.ceil(steps / MAX_PREVIEWS))
    spec = data_spec(lab, source, files, folder, image_size, channels, seed)
    form = dict(source=source, image_size=spec.image_size, channels=spec.channels, steps=steps,
                batch_size=batch_size, lr=lr, loss=loss, augment=augment, ema=ema, precision=precision,
                g_width=g_width, d_width=d_width, z_dim=z_dim, xflip=bool(xflip), seed=seed,
                preview_every=preview_every, max_minutes=minutes, cooldown=cooldown)  # fmt: skip
    model_cfg, train_cfg = get_recipe("cpu").configs(
        image_size=spec.image_size,
        channels=spec.channels,
        z_dim=clamp_int("z_dim", z_dim, 2, 1024),
        g_width=clamp_int("g_width", g_width, 4, 512),
        d_width=clamp_int("d_width", d_width, 4, 512),
        steps=steps,
        batch_size=clamp_int("batch_size", batch_size, 1, 4096),
        lr_g=learning_rate(lr),
        lr_d=learning_rate(lr),
        loss=loss,
        augment=augment,
        precision=precision,
        xflip=bool(xflip),
        seed=seed,
        max_minutes=minutes,
        cooldown=cooldown,
        n_sample=64 if spec.image_size <= 64 else 36,
        extra={"data": spec.describe()},
        **schedule(steps, preview_every),
        **ema_override(ema),
    )
    fits = check_cost(lab, model_cfg, train_cfg)
    if precision == "bf16":  # forced where it may be slow: say so once, before the run starts
        choice = choose_precision("bf16", resolve_device(train_cfg.device))
        if choice.warning:
            lab.warn(choice.warning)
    data = lab.data(spec, session)
    label = f"{slug(Path(spec.describe()).stem if spec.kind != 'synthetic' else 'shapes')}-{spec.image_size}px"
    args = dict(model_cfg=model_cfg, train_cfg=train_cfg, data=data, spec=spec, session=session, form=form)
    if lab.runner.busy_message():
        place, wait = lab.runner.enqueue(Waiting(session, label, minutes, args))
        when = f"in about {fmt_duration(wait)}" if wait is not None else "when the runs ahead of you end"
        return (
            f"Queued: the trainer is busy, and you are number {place} in line. Your run ({steps} steps on "
            f"{data.report.n_ok:,} images{capped}{fits}) starts by itself {when}; keep this page open (leaving it "
            "gives up your place)."
        )
    job = lab.runner.start(run_dir=lab.runner.new_run_dir(label, session), **args)
    return (
        f"Started `{job.name}`: {steps} steps on {md_text(job.data_summary)}{capped}{fits}. Watch it here (or poll the "
        "`progress` endpoint)."
    )


def learning_rate(v: Any) -> float:
    """The learning rate of both nets: a number in (0, 0.1] (the Train tab's field), else an AppError."""
    f = float(2e-4 if v is None else v)
    if not (math.isfinite(f) and 0.0 < f <= 0.1):
        raise AppError(f"lr={f:g} is out of range; a learning rate is above 0 and at most 0.1 (2e-4 is typical)")
    return f


MAX_PREVIEWS = 200
"""The most sample grids one run writes (preview_every is raised to keep under it)."""
MIN_STEPS_IN_LIMIT = 100
"""A run under a time limit must be able to make at least this many steps in it, or it is refused."""


def check_cost(lab: Lab, model_cfg: gan.ModelConfig, train_cfg: gan.TrainConfig) -> str:
    """Refuse settings whose steps cannot fit the run's time limit (from the step's multiply-adds and a
    step timed on this machine, gan.cost); a note when the limit will end the run before its last step."""
    if not train_cfg.max_minutes:
        return ""
    per_step = machine_cost().seconds(model_cfg, train_cfg.batch_size)
    budget = 60 * train_cfg.max_minutes
    n = min(train_cfg.steps, MIN_STEPS_IN_LIMIT)
    size = f"{model_cfg.image_size} px, batch {train_cfg.batch_size}, widths {model_cfg.g_width}/{model_cfg.d_width}"
    if per_step * n > budget:
        raise AppError(
            f"These settings ({size}) would take about {per_step:,.1f} s a step on this server, so {n} steps "
            f"would not fit in the {train_cfg.max_minutes:g}-minute limit. Lower the image size, the batch or "
            "the widths."
        )
    if per_step * train_cfg.steps > budget:
        fit_n = int(budget / per_step)
        return (
            f"; at about {per_step:.2g} s a step, about {fit_n:,} of the {train_cfg.steps:,} steps fit in the "
            f"{train_cfg.max_minutes:g}-minute limit (the run then stops with its model saved)"
        )
    return ""


MAX_COOLDOWN = 0.5
"""The largest cool-down the Train tab offers: at most the second half of a run at the lower rates."""


def fraction(name: str, v: Any, hi: float) -> float:
    """A fraction in 0..hi (0.25, "0.25" and None = 0 pass), else an AppError naming the field."""
    try:
        f = float(v or 0.0)
    except (TypeError, ValueError):
        raise AppError(f"{name} must be a fraction of the run between 0 and {hi:g}, got {v!r}") from None
    if not (math.isfinite(f) and 0.0 <= f <= hi):
        raise AppError(f"{name} must be a fraction of the run between 0 and {hi:g}, got {v!r}")
    return f


def capped_minutes(lab: Lab, asked: Any) -> tuple[float, str]:
    """A run's time limit in minutes (0: none) within GAN_MAX_MINUTES, and a note when it was capped."""
    try:
        m = float(asked or 0.0)
    except (TypeError, ValueError):
        raise AppError(f"max_minutes must be a number of minutes, got {asked!r}") from None
    if not (math.isfinite(m) and m >= 0):
        raise AppError(f"max_minutes must be 0 (no limit) or more, got {asked!r}")
    cap = lab.settings.max_minutes or 0.0
    if cap and (m == 0 or m > cap):
        return cap, f" (at most {cap:g} minutes on this server)"
    return m, ""


def resume(lab: Lab, run: str, steps: int, key: str | None = None, session: str | None = None) -> str:
    """Continue a stopped (or finished) run from its checkpoint, up to `steps` steps in total. On a Space
    only its starter may: the same session, or the run `key` their page keeps."""
    lab.runner.check_idle()
    d, meta = lab.runner.read_meta(run)
    owner = lab.runner.owner_of(run)
    check_control(owner, session, key, shared=lab.settings.on_space, limits="")
    steps = clamp_int("steps", steps, 1, lab.settings.max_steps)
    done = int(meta.get("step", 0))
    if steps <= done:
        raise AppError(f"Run {run} is already at step {done}; set Steps above that to continue it.")
    spec = DataSpec.from_dict(meta["data"])
    train_cfg = gan.TrainConfig.from_dict(meta["train_config"])
    budget, left = lab.runner.time_limit(meta), lab.runner.minutes_left(d, meta)
    if left is not None and left < MIN_RESUME_MINUTES:
        raise AppError(
            f"Run {run} has used its {budget:g}-minute time limit; a resumed run continues it rather than "
            "starting a new one. Start a new run instead (it can reuse the same data and settings)."
        )
    minutes = 0.0 if left is None else round(left, 3)
    train_cfg = train_cfg.replace(steps=steps, metric_every=auto_metric_every(steps), max_minutes=minutes)
    rows, metrics = history(d, done)  # the plots continue where they were
    form = {**meta.get("form", {}), "steps": steps, "max_minutes": budget}
    if owner is not None:  # the run stays its starter's (their key still works); this session may stop it too
        owner = type(owner)(session or owner.session, owner.key_digest)
    job = lab.runner.start(
        None, train_cfg, lab.data(spec, session), spec, d, resume=d, rows=rows, metrics=metrics, session=session,
        owner=owner, form=form,
    )  # fmt: skip
    capped = f" (its time limit: {budget:g} minutes in all, {left:.1f} left)" if left is not None else ""
    return f"Resuming `{job.name}` from step {done} up to {steps}{capped}."


def stop(lab: Lab, key: str | None = None, session: str | None = None) -> str:
    """Stop the running training job: it writes a checkpoint and its model folder, then ends. On a Space
    only its starter may: the same session, or the run `key` their page keeps."""
    job = lab.runner.job
    if job is not None and job.alive:
        check_control(job.owner, session, key, shared=lab.settings.on_space, limits=job.limits())
    return lab.runner.stop()


def progress(lab: Lab, since: int = 0, session: str | None = None) -> tuple[dict[str, Any], np.ndarray | None]:
    """The training job's state (status, step, steps, img/s, ETA, model, losses logged after step `since`)
    and its latest sample grid. On a Space another visitor's run shows only that the trainer is busy,
    when it ends and the line for it (its data, samples, curves and model are its starter's), unless
    its starter shares the live view."""
    since = clamp_int("since", since or 0, 0, 10**9)
    job = lab.runner.job
    if job is None:
        idle = {"status": "idle", "step": 0, "steps": 0, "losses": [], "metric_every": 0, "metrics": []}
        return {**idle, "message": "no training run yet", "queue": len(lab.runner.queue)}, None
    snap = job.snapshot(since=since)
    snap["queue"] = len(lab.runner.queue)
    place = lab.runner.place(session)
    snap["place"] = None if place is None else {"place": place[0], "wait_s": place[1]}
    if not lab.settings.on_space or lab.runner.can_see(job.name, session):
        return snap, job.grid
    private = ("run", "data", "model", "losses", "metrics", "message", "precision", "grid_step")
    return {**{k: v for k, v in snap.items() if k not in private}, "losses": [], "metrics": []}, None


def share(lab: Lab, shared: bool = False, key: str | None = None, session: str | None = None) -> str:
    """Let every visitor watch your running run live (its samples, curves and data report), or stop
    letting them; its model stays yours. Only its starter may."""
    job = lab.runner.job
    if job is None or not job.alive:
        raise AppError("No training run is going on.")
    check_control(job.owner, session, key, shared=lab.settings.on_space, limits=job.limits())
    with job.lock:
        job.shared = bool(shared)
        job.version += 1
    if job.shared:
        return "Everyone who opens this page now sees your run's samples, curves and data report (not its model)."
    return "Only you see your run's samples, curves and data now."


TRAIN_DEFAULTS: dict[str, Any] = {
    **APP_RUN,
    **get_recipe("cpu").model,
    "batch_size": get_recipe("cpu").train["batch_size"],
}
"""The Train tab's first values: the CPU recipe (widths 32, batch 32) on a 32-px run of 1,500 steps."""
