"""What the Train tab shows about a job, as plain data: the status line, the plots' frames, the
data report. No gradio here (tests read these directly)."""

from __future__ import annotations

import re
import time
from typing import Any

import pandas as pd
import torch

import gan

from .common import fmt_duration, md_text, to_hwc
from .jobs import Job

SERIES = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))"}


def plot_frames(rows: list[dict]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Loss rows -> two long-format frames for the LinePlots: losses, and D's mean outputs."""
    if not rows:
        return None, None
    long = pd.DataFrame(rows).melt(id_vars="step", var_name="series", value_name="value")
    long["series"] = long["series"].map(SERIES)
    return (
        long[long.series.isin(["D loss", "G loss"])].reset_index(drop=True),
        long[long.series.isin(["D(x)", "D(G(z))"])].reset_index(drop=True),
    )


METRIC_TITLE = "SWD (lower is better)"


def swd_rows(metrics: list[dict]) -> list[dict]:
    """The SWD measurements among a job's metric rows, in step order."""
    return [m for m in metrics if "swd" in m]


def metric_frame(metrics: list[dict]) -> pd.DataFrame | None:
    """Metric rows ({"step": s, "swd": v}) -> the SWD LinePlot's frame; None until there are two
    points (a line needs two: one point draws nothing but axes labelled like "253.432870"; the
    title then carries the value, see metric_title)."""
    rows = swd_rows(metrics)
    return pd.DataFrame(rows, columns=["step", "swd"]) if len(rows) > 1 else None


def metric_title(snap: dict[str, Any], start_step: int = 0) -> str:
    """The SWD chart's title; until it draws a line, it says why: when the first SWD comes, or the
    one measured so far and when the next comes."""
    every = snap.get("metric_every") or 0
    if not every:
        return f"{METRIC_TITLE}: not measured in runs under 300 steps"
    rows = swd_rows(snap.get("metrics", []))
    if not rows:
        return f"{METRIC_TITLE}: first SWD at step {(start_step // every + 1) * every:,}"
    if len(rows) == 1:
        one = f"{METRIC_TITLE}: {rows[0]['swd']:.1f} at step {rows[0]['step']:,}"
        nxt = (rows[0]["step"] // every + 1) * every
        if snap.get("status") == "running" and nxt <= snap.get("steps", 0):
            return f"{one}; the curve starts with the next at step {nxt:,}"
        return one
    return METRIC_TITLE


def sharing(snap: dict[str, Any]) -> str:
    """' (1 of 2 CPU threads: the machine is busy)' while the training leaves cores to the server's
    visitors or other work (gan.device.ThreadGovernor); '' otherwise."""
    now, start = snap.get("threads") or (0, 0)
    if not now or now >= start:
        return ""
    return f" ({now} of {start} CPU threads: the machine is busy)"


def cooldown_note(job: Job, snap: dict[str, Any]) -> str:
    """Where a running job's cool-down stands: ' · cooling down (learning rates ×0.25)' in it,
    else when it starts: at its step, or, when the time limit's last share comes first (by the
    speed so far), in how long; '' without a cool-down."""
    cooldown = float(job.form.get("cooldown") or 0.0)
    if not cooldown:
        return ""
    if snap.get("lr_factor", 1.0) < 1.0:
        return f" · cooling down (learning rates ×{snap['lr_factor']:g})"
    cool_from = round(snap["steps"] * (1.0 - cooldown))
    if job.max_minutes and snap["img_per_s"]:
        by_time = job.started + 60 * job.max_minutes * (1.0 - cooldown) - time.time()
        by_steps = (cool_from - snap["step"]) * job.batch_size / snap["img_per_s"]
        if by_time < by_steps:
            return f" · cool-down in {fmt_duration(max(0.0, by_time))}, over the last {cooldown:.0%} of its time limit"
    return f" · cool-down from step {cool_from:,}"


def run_label(name: str) -> str:
    """A run's name for Markdown: `name` as code when it is a plain name (the app makes them with
    slug(): letters, digits, '-', '_', '.'), else escaped text (md_text)."""
    return f"`{name}`" if re.fullmatch(r"[\w.-]+", name or "", re.ASCII) else md_text(name)


def status_line(job: Job, snap: dict[str, Any]) -> str:
    """One line about the job: what it does, how far, how fast, its losses and precision."""
    step, steps, st = snap["step"], snap["steps"], snap["status"]
    last = snap["losses"][-1] if snap["losses"] else None
    losses = f" · loss D {last['loss_d']:.3f} · G {last['loss_g']:.3f}" if last else ""
    swd = [m["swd"] for m in swd_rows(snap.get("metrics", []))]
    losses += f" · SWD {swd[-1]:.1f}" if swd else ""
    precision = f" · {snap['precision']}" if snap.get("precision") else ""
    took = fmt_duration(snap["elapsed_s"])
    run = run_label(job.name)
    if st == "starting":
        return f"**Starting** {run}: preparing models…"
    if st == "running":
        return (
            f"**Training** {run} · step {step} / {steps} ({100 * step / max(steps, 1):.0f}%) · "
            f"{snap['img_per_s']:.0f} img/s{sharing(snap)} · ETA {fmt_duration(snap['eta_s'])}"
            f"{cooldown_note(job, snap)}{losses}{precision}"
        )
    if st == "stopping":
        return f"**Stopping** {run} at step {step}: writing a checkpoint and the model folder…"
    if st == "finished":
        return (
            f"**Finished** {run}: {step} steps in {took}{losses}. "
            f"It is in the model picker as *{md_text(job.name)} (trained here)*."
        )
    if st == "stopped":
        return (
            f"**Stopped** {run} at step {step} of {steps} after {took}; checkpoint saved. "
            "**Resume** continues it; the model so far is in the model picker."
        )
    return f"**{md_text(st.capitalize())}** {run} at step {step}: {md_text(snap['message'])}"


def report_markdown(data: gan.ImageData) -> str:
    """The data check's report as Markdown: the source's name and the skipped files' names are the
    visitor's (an uploaded zip and what it holds), so they are escaped (md_text)."""
    r, (n, c, s) = data.report, data.images.shape[:3]
    head = f"**{r.n_ok:,} images** from {md_text(r.source)} → {n:,} × {s}×{s} {'RGB' if c == 3 else 'grayscale'}"
    head += f"; **{r.n_skipped:,} files skipped**" if r.n_skipped else ""
    return "\n".join([head] + ["- " + md_text(line) for line in r.details()])


def examples_grid(data: gan.ImageData, n: int = 16):
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:n]
    return to_hwc(data.images[idx])
