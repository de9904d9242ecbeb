"""The app's API: one plain function per endpoint, taking the shared Lab first.

The tabs bind them to the Lab (`gan.ui.wiring.endpoint`), and their remaining parameter names and
defaults are the API's (README, "API"): `Client(url).predict(model="cats64", seed=0, n=16,
api_name="/sample")` calls `sample(lab, model="cats64", seed=0, n=16)`. Tests call them directly
on a temporary folder, without a server. Bad input raises AppError (or the package's own error)
with a message meant for the user. The Train tab's endpoints live in `gan.ui.train_endpoints` and
are part of this API (imported here).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import gan
from gan import latent, sampling
from gan.hub import check_repo_id, is_repo_id
from gan.recipes import get_recipe  # noqa: F401 - the Train tab reads the recipe through here

from .common import MAX_SEED, AppError, clamp_int, md_plain, md_text, parse_seeds, scrub, to_hwc
from .lab import Lab
from .models import RUN_PREFIX
from .run_data import DataSpec  # noqa: F401 - part of the Train endpoints' interface
from .train_endpoints import MAX_COOLDOWN, TRAIN_DEFAULTS, data_spec, progress, resume, share, stop, train  # noqa: F401

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
    progress: Progress | None = None,  # noqa: F811 - Gradio's progress bar (wiring), not the endpoint
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
