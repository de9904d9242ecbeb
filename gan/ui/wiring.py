"""Gradio glue shared by the tabs: endpoint binding with friendly errors, quiet renders, the
page's look (theme, CSS) and the random-seed buttons."""

from __future__ import annotations

import functools
import html
import inspect
import math
import os
import random
import sys
import traceback
import typing
from collections.abc import Callable
from typing import Any

import gradio as gr

from .common import MAX_SEED, USER_ERRORS, AppError, clamp_int
from .lab import Lab

CSS = """
/* small generated images fill their frame, upscaled with hard pixel edges */
.pixelated .image-container > button, .pixelated .image-frame { width: 100%; height: 100%; }
.pixelated .image-frame img { width: 100% !important; height: 100% !important; object-fit: contain !important; }
.pixelated img, .pixelated video { image-rendering: pixelated; }
.gan-status { min-height: 2.6em; }
.strip .icon-button-wrapper { display: none; }  /* a direction's strip: just the picture */
#gan-header h1 { margin-bottom: 0; }
#model-info p { margin: 0.2em 0; }
#walk-files .label-clear-button { display: none; }  /* an output list: nothing to remove */
/* as many columns as fit (Gradio's are a fixed 6 of at least 100 px: cut off on narrow screens) */
#seed-gallery .grid-container { grid-template-columns: repeat(auto-fill, minmax(88px, 1fr)) !important; }
#seed-gallery .caption-label { max-width: 100%; white-space: normal; overflow-wrap: anywhere; }  /* whole seeds */
"""
RANDOM_SEED_MAX = 9_999_999  # the Random buttons pick seeds below this (short to read and type)


def lighten_queue_analytics() -> None:
    """Gradio 6.31's queue rebuilds a pandas table of its last 10,000 events and groups it after
    *every* event, for a monitoring page this app leaves off: py-spy put 15 % of the server's
    samples there under 20 API clients (benchmarks/load.py), and the cost grows with the history.
    Recomputed every 1,000 events over at most 2,000 instead (an owner's own env settings win).
    Queue() reads these when it is made, so this runs before the Blocks is built."""
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "2000")


def launch_options() -> dict[str, Any]:
    """Look-and-feel options that Gradio 6 takes in launch() (tests pass them too)."""
    return {
        "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="pink"),
        "css": CSS,
        "footer_links": ["api", "gradio", "settings"],
        # Gradio 6.31's status tracker announces these keys to screen readers, but its English texts
        # lack them: "common.complete" would be read out after every event with a progress bar
        "i18n": gr.I18n(en={"common.complete": "Complete", "common.error": "Error"}),
    }


def endpoint(fn: Callable, lab: Lab) -> Callable:
    """An endpoint function of `gan.ui.endpoints` bound to the lab, as Gradio calls it: its other
    parameters are the API's; the user's errors become `gr.Error(message)` (no traceback), anything
    unexpected a short message here and its traceback in the server log. A `progress` parameter
    gets Gradio's progress bar; a `session` parameter gets the request's Gradio session (it is not an
    API parameter: who calls, not what they ask)."""
    bound = functools.partial(fn, lab)
    params = list(inspect.signature(bound).parameters.values())
    wants_session = any(p.name == "session" for p in params)
    hints = typing.get_type_hints(fn)
    names = [p.name for p in params if p.name not in ("session", "progress")]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if wants_session:  # Gradio passes the request positionally, where the signature below puts it
            requests = [a for a in args if isinstance(a, gr.Request)] + [kwargs.pop("request", None)]
            args = tuple(a for a in args if not isinstance(a, gr.Request))
            kwargs["session"] = getattr(requests[0], "session_hash", None)
        try:
            args = tuple(coerce(n, v, hints.get(n, Any)) for n, v in zip(names, args)) + args[len(names) :]
            kwargs = {k: coerce(k, v, hints.get(k, Any)) if k in names else v for k, v in kwargs.items()}
            return bound(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as e:  # bad input: one line in the log, the message to the visitor
            print(f"refused /{fn.__name__}: {' '.join(str(e).split())[:300]}", file=sys.stderr)
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None  # toasts render HTML
        except Exception as e:  # noqa: BLE001 - a bug or an environment problem: the trace goes to the log
            traceback.print_exc()
            msg = html.escape(f"Something went wrong ({type(e).__name__}: {e}).", quote=False)
            raise gr.Error(msg, print_exception=False) from None

    params = [p.replace(default=gr.Progress()) if p.name == "progress" else p for p in params if p.name != "session"]
    if wants_session:  # Gradio fills a parameter annotated gr.Request with the request
        params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))
        wrapper.__annotations__ = {"request": gr.Request}
    wrapper.__signature__ = inspect.Signature(params)  # without `lab`: what the API shows
    del wrapper.__wrapped__  # Gradio reads the signature above, not fn's
    return wrapper


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def coerce(name: str, v: Any, hint: Any) -> Any:
    """An API value as the type its parameter documents (3, 3.0 and "3" for an int; "0.5" for a float;
    "true" for a bool; a number for a str), else an AppError naming the parameter. None stays None
    (the endpoint's default or check takes it); other types pass unchanged."""
    if v is None or hint is Any:
        return v
    kinds = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = kinds[0] if len(kinds) == 1 else None
    if kind is bool:
        if isinstance(v, bool):
            return v
        text = str(v).strip().lower() if isinstance(v, (str, int, float)) else None
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off", ""):
            return False
        raise AppError(f"{name} must be true or false, got {_short(v)}")
    if kind is int or kind is float:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        try:
            f = float(v.strip() if isinstance(v, str) else v) if not isinstance(v, bool) else None
        except (TypeError, ValueError, OverflowError):
            f = None
        ok = f is not None and math.isfinite(f) and (kind is float or f.is_integer())
        if not ok:
            what = "a whole number" if kind is int else "a number"
            raise AppError(f"{name} must be {what}, got {_short(v)}")
        return int(f) if kind is int else f
    if kind is str:
        if isinstance(v, str):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return str(v)
        raise AppError(f"{name} must be text, got {_short(v)}")
    return v


def seed_check(inputs: list, seeds: list) -> Callable:
    """A Gradio `validator` for an event whose `inputs` include the seed boxes `seeds`: a bad seed
    gets its message under its box, the event does not run, and its outputs keep what they show (no
    error badge). API calls of the event get the same message (gradio_client's ValidationError)."""
    where = [any(c is s for s in seeds) for c in inputs]

    def validate(*args):
        out = []
        for is_seed, v in zip(where, args, strict=False):
            try:
                if is_seed:
                    clamp_int("seed", v, 0, MAX_SEED)
                out.append(gr.validate(True, ""))
            except AppError as e:
                out.append(gr.validate(False, html.escape(str(e), quote=False)))
        return out

    return validate


def api_twin(fn: Callable, inputs: list, outputs: list | Any, api_name: str, **kw: Any) -> None:
    """The API endpoint of a page event that has a `seed_check` validator, on a hidden button: a
    validator would run the components' own checks (a slider's range) before the endpoint's, and
    turn their clear messages into a bare HTTP 400 for API clients."""
    gr.Button(visible=False).click(fn, inputs, outputs, api_name=api_name, **kw)


def quietly(fn: Callable, lab: Lab, empty: Any = None) -> Callable:
    """An endpoint for the page's own refreshes (a model change, a page load): a user error
    (no model yet, a model that cannot load) leaves the output empty instead of a pop-up."""
    bound = functools.partial(fn, lab)

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return bound(*args)
        except USER_ERRORS:
            return empty

    del wrapper.__wrapped__
    wrapper.__signature__ = inspect.signature(bound)
    return wrapper


def pixel_image(label: str | None = None, **kw: Any) -> gr.Image:
    """An output image drawn with hard pixel edges (PNG unless `type="filepath"` for a GIF)."""
    kw.setdefault("buttons", ["download", "fullscreen"])
    if kw.get("type") != "filepath":
        kw.setdefault("format", "png")
    return gr.Image(label=label, interactive=False, elem_classes=["pixelated"], **kw)


def random_seeds(k: int) -> list[int]:
    return [random.randint(0, RANDOM_SEED_MAX) for _ in range(k)]


def random_seed() -> int:
    return random.randint(0, RANDOM_SEED_MAX)


def go_to(tab: str) -> gr.Tabs:
    return gr.Tabs(selected=tab)


def no_model_notice(visible: bool) -> gr.Markdown:
    from .models import NO_MODEL

    return gr.Markdown("### " + NO_MODEL, visible=visible)


def direction_count(lab: Lab, key: str | None, n: int) -> int:
    """How many of n direction sliders the model fills (n when it cannot load: its renders say why)."""
    if not key:
        return n
    try:
        return min(n, len(lab.directions(lab.models.get(key))))
    except USER_ERRORS:
        return n


def direction_sliders(lab: Lab, key: str | None, n: int) -> list[gr.Slider]:
    """n sliders reset to 0, labelled for the model's principal directions, hidden beyond its number."""
    k = direction_count(lab, key, n)
    return [gr.Slider(value=0.0, label=f"Direction {i + 1}" if i < k else "", visible=i < k) for i in range(n)]
