"""The app's API: one plain function per endpoint, taking the shared Lab first.

The tabs bind them to the Lab (`gan.ui.wiring.endpoint`), and their remaining parameter names and
defaults are the API's (README, "API"): `Client(url).predict(model="cats64", seed=0, n=16,
api_name="/sample")` calls `sample(lab, model="cats64", seed=0, n=16)`. Tests call them directly
on a temporary folder, without a server. Bad input raises AppError (or the package's own error)
with a message meant for the user.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gan
from gan import latent, sampling
from gan.cost import machine_cost
from gan.device import choose_precision, resolve_device
from gan.hub import check_repo_id, is_repo_id
from gan.recipes import APP_RUN, auto_metric_every, get_recipe, schedule

from .common import (
    MAX_SEED,
    AppError,
    clamp_int,
    fmt_duration,
    md_plain,
    md_text,
    parse_seeds,
    scrub,
    slug,
    to_hwc,
)
from .jobs import MIN_RESUME_MINUTES, Waiting, history
from .lab import Lab
from .models import RUN_PREFIX
from .ownership import check_control
from .run_data import DataSpec

INVERT_STEPS = 150  # default optimisation steps of a photo inversion: seconds on a CPU
PLANE_N = 5  # the seed plane's overview grid is PLANE_N x PLANE_N
MIN_GIF_SIDE = 256  # animations are upscaled (nearest neighbour) to at least this many pixels
Progress = Callable[..., Any]  # progress(fraction, desc=...) as gr.Progress takes it


def _seed(name: str, v: Any) -> int:
    return clamp_int(name, v, 0, MAX_SEED)


MAX_PSI = 2.0  # the truncation sliders' range: 0..2


def _psi(v: Any) -> float:
    """A truncation ψ in 0..MAX_PSI (None: 1), else an AppError naming it."""
    f = float(1.0 if v is None else v)
    if not (math.isfinite(f) and 0.0 <= f <= MAX_PSI):
        raise AppError(f"truncation={f:g} is out of range; allowed 0..{MAX_PSI:g}")
    return f


# ---- Sample and Interpolate ---------------------------------------------------------------------


def sample(lab: Lab, model: str | None, seed: int, n: int, truncation: float) -> np.ndarray:
    """A grid of n images for seeds seed, seed+1, ... (row by row); a bare image when n is 1."""
    return to_hwc(sample_images(lab, model, seed, n, truncation))


def sample_images(lab: Lab, model: str | None, seed: int, n: int, truncation: float) -> torch.Tensor:
    n = clamp_int("n", n, 1, 64)
    seed = clamp_int("seed", seed, 0, MAX_SEED - n + 1)
    return lab.sample_images(lab.models.get(model), seed, n, _psi(truncation))


def _walk_ends(G, seed_a: Any, seed_b: Any, mode: str, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
    if mode not in ("slerp", "lerp"):
        raise AppError(f"mode must be 'slerp' or 'lerp', got {mode!r}")
    return tuple(sampling.latents([_seed("seed_a", seed_a), _seed("seed_b", seed_b)], G.z_dim, _psi(truncation)))


def interpolate(
    lab: Lab, model: str | None, seed_a: int, seed_b: int, t: float, mode: str = "slerp", truncation: float = 1.0,
    d1: float = 0.0, d2: float = 0.0, d3: float = 0.0, d4: float = 0.0, d5: float = 0.0,
) -> np.ndarray:  # fmt: skip
    """The image at t in [0, 1] on the walk from seed A to seed B, moved along the latent sliders d1..d5."""
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise AppError(f"t={t} is out of range; allowed 0..1")
    G = lab.models.get(model)
    za, zb = _walk_ends(G, seed_a, seed_b, mode, truncation)
    z = lab.move(G, sampling.interpolate(za, zb, t, mode)[None], (d1, d2, d3, d4, d5), 3.0)  # t = 0: A bit for bit
    return to_hwc(lab.generate(G, z))


def _gif_scale(imgs: torch.Tensor) -> int:
    return max(1, math.ceil(MIN_GIF_SIDE / imgs.shape[-1]))


def walk(
    lab: Lab, model: str | None, seed_a: int, seed_b: int, frames: int = 32, mode: str = "slerp",
    truncation: float = 1.0, fps: float = 12, loop: bool = True,
    d1: float = 0.0, d2: float = 0.0, d3: float = 0.0, d4: float = 0.0, d5: float = 0.0,
) -> tuple[str, str | None, list[str]]:  # fmt: skip
    """The walk from seed A to seed B (eased there and back, with loop) as an animated GIF and an MP4."""
    frames = clamp_int("frames", frames, 2, 256)
    fps = float(fps)
    if not 1 <= fps <= 60:
        raise AppError(f"fps={fps} is out of range; allowed 1..60")
    G = lab.models.get(model)
    za, zb = _walk_ends(G, seed_a, seed_b, mode, truncation)
    z = lab.move(G, sampling.walk_latents(za, zb, frames, mode, loop=bool(loop)), (d1, d2, d3, d4, d5), 3.0)
    imgs = lab.generate(G, z)
    stem = f"walk_{int(seed_a)}_{int(seed_b)}_{mode}"
    gif = str(sampling.save_gif(imgs, lab.scratch.path(stem + ".gif"), fps=fps, scale=_gif_scale(imgs)))
    try:
        mp4 = str(sampling.save_video(imgs, lab.scratch.path(stem + ".mp4"), fps=fps, scale=_gif_scale(imgs)))
    except (RuntimeError, OSError, ValueError) as e:  # PyAV missing or its codec unavailable: the GIF still works
        lab.warn(f"MP4 export is unavailable here ({e}); the GIF is ready.")
        mp4 = None
    return gif, mp4, [gif] + ([mp4] if mp4 else [])


# ---- Explore --------------------------------------------------------------------------------------


def explore(
    lab: Lab, model: str | None, seed: int,
    a1: float = 0.0, a2: float = 0.0, a3: float = 0.0, a4: float = 0.0,
    a5: float = 0.0, a6: float = 0.0, a7: float = 0.0, a8: float = 0.0,
    truncation: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """Seed's image moved along the model's principal directions 1..8 by a1..a8 (in σ; all 0 = the seed's
    own image, as `sample` draws it)."""
    G = lab.models.get(model)
    z = sampling.latents([_seed("seed", seed)], G.z_dim, _psi(truncation))
    return to_hwc(lab.generate(G, lab.move(G, z, (a1, a2, a3, a4, a5, a6, a7, a8), 4.0, "a")))


def _corners(seed_tl: Any, seed_tr: Any, seed_bl: Any, seed_br: Any, mode: str) -> list[int]:
    if mode not in ("slerp", "bilinear"):
        raise AppError(f"mode must be 'slerp' or 'bilinear', got {mode!r}")
    names = ("seed_tl", "seed_tr", "seed_bl", "seed_br")
    return [_seed(n, s) for n, s in zip(names, (seed_tl, seed_tr, seed_bl, seed_br))]


def plane(
    lab: Lab, model: str | None, seed_tl: int, seed_tr: int, seed_bl: int, seed_br: int, u: float = 0.5,
    v: float = 0.5, mode: str = "slerp", truncation: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """The image at (u, v) of the plane spanned by four corner seeds (top-left, top-right, bottom-left,
    bottom-right); u runs left to right, v top to bottom, both in [0, 1]."""
    corners = _corners(seed_tl, seed_tr, seed_bl, seed_br, mode)
    u, v = float(u), float(v)
    if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
        raise AppError(f"u and v must be in 0..1, got u={u}, v={v}")
    G = lab.models.get(model)
    with lab.threads(1):
        if u in (0.0, 1.0) and v in (0.0, 1.0):  # a corner is its seed's own image, bit for bit
            img = sampling.sample(G, [corners[2 * int(v) + int(u)]], _psi(truncation))[0]
        else:
            _, img = latent.blend_corners(G, corners, u, v, mode=mode, truncation=_psi(truncation))
    return to_hwc(img[None])


def plane_overview(
    lab: Lab, model: str | None, seed_tl: int, seed_tr: int, seed_bl: int, seed_br: int, mode: str = "slerp",
    truncation: float = 1.0,
) -> np.ndarray:  # fmt: skip
    """The seed plane as a PLANE_N x PLANE_N grid."""
    corners = _corners(seed_tl, seed_tr, seed_bl, seed_br, mode)
    G = lab.models.get(model)
    with lab.threads(1):
        a = latent.blend_plane(G, corners, PLANE_N, mode=mode, truncation=_psi(truncation))
    return a[..., 0] if a.shape[-1] == 1 else a


def _photo_walk(lab: Lab, G, za: torch.Tensor, zb: torch.Tensor, frames: int) -> str:
    """The walk between two latents, `frames` from A to B and eased back, as a GIF of at least 256 px."""
    imgs = lab.generate(G, sampling.walk_latents(za, zb, 2 * frames - 2, "slerp", loop=True))
    return str(sampling.save_gif(imgs, lab.scratch.path("photo_walk.gif"), fps=12, scale=_gif_scale(imgs)))


def invert(
    lab: Lab, model: str | None, photo_a: Any, photo_b: Any = None, steps: int = INVERT_STEPS, frames: int = 24,
    progress: Progress | None = None,
) -> tuple:  # fmt: skip
    """Find the latent whose image is closest to each photo (centre-cropped and resized as the model sees it).
    Returns, for photo A and B: the target, the model's reconstruction and its RMS error (0..1 of the pixel
    range); and with two photos the walk between their latents as a GIF (then the latents, for the page)."""
    steps = clamp_int("steps", steps, 1, 2000)
    frames = clamp_int("frames", frames, 2, 256)
    slots = [(name, p) for name, p in (("A", photo_a), ("B", photo_b)) if p is not None]
    if not slots:
        raise AppError("Upload a photo first (Photo A, and Photo B for a walk between two photos).")
    G = lab.models.get(model)
    report = progress or (lambda *a, **k: None)
    total, every = steps * len(slots), max(1, steps // 100)
    res: dict[str, latent.InversionResult] = {}
    for i, (name, photo) in enumerate(slots):
        label = f"Photo {name}" if len(slots) > 1 else "Inverting"

        def on_step(step: int, loss: float, i: int = i, label: str = label) -> None:
            if step % every == 0 or step == steps:
                report((i * steps + step) / total, desc=f"{label}: step {step} of {steps}")

        report(i * steps / total, desc=f"{label}: finding a start")
        with lab.threads(32):
            res[name] = latent.invert(G, photo, steps=steps, callback=on_step)
    gif = _photo_walk(lab, G, res["A"].z, res["B"].z, frames) if len(res) == 2 else None
    out: list[Any] = []
    for name in "AB":
        r = res.get(name)
        out += [None, None, None] if r is None else [to_hwc(r.target[None]), to_hwc(r.image[None]), r.error]
    state = {"model": model, "z": {k: r.z.tolist() for k, r in res.items()}}
    return (*out, gif, state)


def walk_photos(lab: Lab, model: str | None, frames: int, state: dict | None) -> str:
    """The walk between the last two inverted photos again (another number of frames)."""
    z = (state or {}).get("z", {})
    if "A" not in z or "B" not in z:
        raise AppError("Invert two photos first (Photo A and Photo B); then the walk goes between them.")
    if state.get("model") != model:
        raise AppError("These photos were inverted with another model; press Invert again for this one.")
    G = lab.models.get(model)
    return _photo_walk(lab, G, torch.tensor(z["A"]), torch.tensor(z["B"]), clamp_int("frames", frames, 2, 256))


def arithmetic(
    lab: Lab, model: str | None, seeds_a: str, seeds_b: str, seeds_c: str, truncation: float = 1.0
) -> list[tuple[np.ndarray, str]]:
    """Vector arithmetic on mean latents (the DCGAN paper's): the images of mean z(A), mean z(B), mean z(C)
    and of A − B + C. Seeds are comma-separated, ranges allowed: "1, 5, 9" or "10-13"."""
    a, b, c = parse_seeds("Seeds A", seeds_a), parse_seeds("Seeds B", seeds_b), parse_seeds("Seeds C", seeds_c)
    G = lab.models.get(model)
    with lab.threads(1):
        imgs = latent.arithmetic_images(G, a, b, c, truncation=_psi(truncation))  # (4, C, H, W)
    captions = [f"mean of A ({len(a)})", f"mean of B ({len(b)})", f"mean of C ({len(c)})", "A − B + C"]
    return [(to_hwc(imgs[i : i + 1]), cap) for i, cap in enumerate(captions)]


# ---- the Hugging Face Hub -------------------------------------------------------------------------


def hub_load(lab: Lab, repo_id: str) -> str:
    """Download a GAN Lab model from the Hub (user/name) and select it in the model picker."""
    try:
        rid = check_repo_id(repo_id or "")
        if not is_repo_id(rid):  # a local path of that name shadows the id in the picker
            raise AppError(f"{rid!r} is also a path on this server, so the picker cannot take it as a repo id")
        G = lab.models.get(rid, reload=True)
    except (gan.HubError, gan.ModelLoadError, AppError) as e:
        msg = f"Not loaded: {e}"
    else:
        msg = None
    if msg:  # raised outside the handler: no chained exception from the Hub client
        raise AppError(msg)
    lab.models.add_hub(rid)
    c = G.config
    commit = f" at commit `{G.commit[:8]}`" if getattr(G, "commit", None) else ""
    return (
        f"Loaded **{md_plain(rid)}**{commit}: {c.image_size}×{c.image_size}, z {c.z_dim}. It is now the selected model."
    )


def hub_push(lab: Lab, model: str | None, repo_id: str, token: str = "", private: bool = False) -> str:
    """Push the model to the Hub as repo_id (user/name) with a write token (empty: the server's HF_TOKEN);
    returns a link to the repo. The token is used for this call only: never stored, logged or returned."""
    msg = None
    try:
        src = lab.models.folder(model)
        rid = check_repo_id(repo_id or "")
        tok = (token or "").strip() or None
        if tok is None and lab.settings.on_space and not lab.settings.allow_owner_push:
            raise AppError(
                "paste your own write token: on this Space an empty box does not push with the owner's "
                "HF_TOKEN (the owner can allow that with GAN_ALLOW_OWNER_PUSH=1)"
            )
        url = gan.push_to_hub(src, rid, token=tok, private=bool(private), max_bytes=lab.settings.max_model_bytes)
    except ValueError as e:  # AppError, HubError, ModelLoadError: messages for the user
        msg = str(e)
    except Exception as e:  # noqa: BLE001 - no traceback: its frames may hold the token; logged scrubbed
        msg = f"{type(e).__name__}: {e}"
        print(f"hub_push failed: {scrub(msg, token)}", file=sys.stderr)
    if msg is not None:  # raised here, outside the handler: no exception context that holds the token
        raise AppError("Not pushed: " + scrub(msg, token))
    name = (model or "").removeprefix(RUN_PREFIX)
    link = f"[{url}]({url})" if re.fullmatch(r"https?://[\w.\-/:~%+]+", str(url), re.ASCII) else md_text(url)
    return f"Pushed **{md_plain(name)}** to {link} ({'private' if private else 'public'})."


# ---- Train ------------------------------------------------------------------------------------------


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
