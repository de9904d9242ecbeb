"""The Explore tab, in four parts: principal directions (sliders beside strips of what each does),
the seed plane (four corner seeds, u and v), your photos (inversion and the walk between two),
and vector arithmetic on mean latents."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from gan.onnx_export import explore_payload, plane_payload

from . import browser_view
from . import endpoints as ep
from . import inputs as gri
from .common import USER_ERRORS
from .lab import N_EXPLORE, STRIP_AMOUNTS, Lab
from .settings import Settings
from .wiring import (
    direction_count,
    endpoint,
    no_model_notice,
    pixel_image,
    quietly,
    random_seed,
    random_seeds,
    seed_check,
)

NOTE = ["gan-note"]


@dataclass
class DirectionsUI:
    seed: gr.Number
    dice: gr.Button
    image: gr.Image
    view: gr.HTML  # the image computed in the browser
    truncation: gr.Slider
    reset: gr.Button
    sliders: list[gr.Slider]
    strips: list[gr.Image]

    def inputs(self, model: gr.Dropdown) -> list:
        return [model, self.seed, *self.sliders, self.truncation]


@dataclass
class PlaneUI:
    corners: list[gr.Number]  # top-left, top-right, bottom-left, bottom-right
    dice: gr.Button
    u: gr.Slider
    v: gr.Slider
    mode: gr.Radio
    truncation: gr.Slider
    image: gr.Image
    view: gr.HTML  # the image computed in the browser
    grid: gr.Image

    def inputs(self, model: gr.Dropdown) -> list:
        return [model, *self.corners, self.u, self.v, self.mode, self.truncation]

    def overview_inputs(self, model: gr.Dropdown) -> list:
        return [model, *self.corners, self.mode, self.truncation]


@dataclass
class PhotosUI:
    photos: list[gr.Image]  # A, B
    targets: list[gr.Image]
    reconstructions: list[gr.Image]
    errors: list[gr.Number]  # hidden (the API's outputs); an empty Number would read "0" = identical
    error_text: list[gr.Markdown]  # what the page shows instead
    steps: gr.Slider
    invert: gr.Button
    frames: gr.Slider
    walk: gr.Button
    gif: gr.Image
    state: gr.State  # the inverted latents, for "Render the walk again"

    def outputs(self) -> list:
        per_photo = [c for i in range(2) for c in (self.targets[i], self.reconstructions[i], self.errors[i])]
        return [*per_photo, self.gif, self.state]


@dataclass
class ArithmeticUI:
    groups: list[gr.Textbox]  # seeds A, B, C
    truncation: gr.Slider
    compute: gr.Button
    gallery: gr.Gallery

    def inputs(self, model: gr.Dropdown) -> list:
        return [model, *self.groups, self.truncation]


@dataclass
class ExploreUI:
    notice: gr.Markdown
    directions: DirectionsUI
    plane: PlaneUI
    photos: PhotosUI
    arithmetic: ArithmeticUI


def create_ui(has_model: bool, settings: Settings | None = None) -> ExploreUI:
    settings = settings or Settings()
    notice = no_model_notice(not has_model)
    with gr.Tabs():
        with gr.Tab("Directions", id="directions"):
            directions = _directions_ui(settings)
        with gr.Tab("Seed plane", id="plane"):
            plane = _plane_ui(settings)
        with gr.Tab("Your photos", id="invert"):
            photos = _photos_ui()
        with gr.Tab("Vector arithmetic", id="arithmetic"):
            arithmetic = _arithmetic_ui()
    return ExploreUI(notice, directions, plane, photos, arithmetic)


def _directions_ui(settings: Settings) -> DirectionsUI:
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            with gr.Row(equal_height=True):
                seed = gri.Number(0, label="Seed", precision=0, scale=3, elem_id="explore-seed")
                dice = gr.Button("Random", scale=0, min_width=80)
            view = browser_view.make(
                settings,
                "explore-view",
                controls={
                    "amounts": [f"#explore-d{i + 1}" for i in range(N_EXPLORE)],
                    "truncation": "#explore-psi",
                },
                server_image="#explore-image",
                display_px=360,
            )
            image = pixel_image("Seed moved along the directions", height=380, elem_id="explore-image")
            with gr.Row(equal_height=True):
                truncation = gri.Slider(
                    0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ", scale=3, elem_id="explore-psi"
                )
                reset = gr.Button("Reset sliders", size="sm", scale=1, min_width=100)
        with gr.Column(scale=3, min_width=420):
            gr.Markdown(
                "The model's **principal directions** (GANSpace): the latent axes along which its images vary "
                "most, strongest first. Sliders are in σ (one standard deviation of random latents along that "
                f"axis). Each strip shows the seed on the left from {STRIP_AMOUNTS[0]:g} σ (left) to "
                f"{STRIP_AMOUNTS[-1]:+g} σ (right), the sliders' range.",
                elem_classes=NOTE,
            )
            sliders, strips = [], []
            for i in range(N_EXPLORE):
                with gr.Row(equal_height=True):
                    sliders.append(
                        gri.Slider(
                            -4.0,
                            4.0,
                            value=0.0,
                            step=0.1,
                            label=f"Direction {i + 1}",
                            scale=2,
                            min_width=220,
                            elem_id=f"explore-d{i + 1}",
                        )
                    )
                    strips.append(
                        gr.Image(
                            show_label=False,
                            format="png",
                            interactive=False,
                            height=84,
                            container=False,
                            buttons=[],
                            scale=3,
                            min_width=240,
                            elem_classes=["pixelated", "strip"],
                            elem_id=f"explore-strip{i + 1}",
                        )
                    )
    return DirectionsUI(seed, dice, image, view, truncation, reset, sliders, strips)


def _plane_ui(settings: Settings) -> PlaneUI:
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            gr.Markdown(
                "Four seeds at the corners of a square; **u** and **v** move between them "
                "(u left → right, v top → bottom).",
                elem_classes=NOTE,
            )
            corners = []
            for row in (("Top-left", "Top-right"), ("Bottom-left", "Bottom-right")):
                with gr.Row():
                    for where in row:
                        corners.append(gri.Number(len(corners) + 1, label=f"{where} seed", precision=0))
            dice = gr.Button("Random corners", size="sm")
            u = gri.Slider(0.0, 1.0, value=0.5, step=0.01, label="u (left → right)", elem_id="plane-u")
            v = gri.Slider(0.0, 1.0, value=0.5, step=0.01, label="v (top → bottom)", elem_id="plane-v")
            mode = gri.Radio(["slerp", "bilinear"], value="slerp", label="Blend")
            truncation = gri.Slider(0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ", elem_id="plane-psi")
        with gr.Column(scale=1, min_width=280):
            view = browser_view.make(
                settings,
                "plane-view",
                controls={"u": "#plane-u", "v": "#plane-v", "truncation": "#plane-psi"},
                server_image="#plane-image",
                display_px=380,
            )
            image = pixel_image("Image at (u, v)", height=400, elem_id="plane-image")
        with gr.Column(scale=1, min_width=280):
            grid = pixel_image(f"The whole plane ({ep.PLANE_N}×{ep.PLANE_N})", height=400, elem_id="plane-grid")
    return PlaneUI(corners, dice, u, v, mode, truncation, image, view, grid)


def _photos_ui() -> PhotosUI:
    gr.Markdown(
        "Upload a photo: the app searches the latent space for the image of this model that comes closest to "
        "it (**inversion**). With a second photo it also walks from one to the other. The **target** is the "
        "photo as the model sees it (centre-cropped and resized). A model only reproduces what it has "
        "learned: a cat model turns anything into a cat.",
        elem_classes=NOTE,
    )
    photos, targets, recs, errors, error_text = [], [], [], [], []
    with gr.Row():
        for name in "AB":
            with gr.Column(scale=1, min_width=260):
                photos.append(
                    gri.Image(
                        label=f"Photo {name}" + (" (optional)" if name == "B" else ""),
                        type="pil",
                        sources=["upload", "clipboard"],
                        height=220,
                        elem_id=f"photo-{name.lower()}",
                    )
                )
                with gr.Row():
                    targets.append(pixel_image("target", height=150, buttons=["download"]))
                    recs.append(
                        pixel_image("reconstruction", height=150, buttons=["download"], elem_id=f"recon-{name.lower()}")
                    )
                errors.append(gri.Number(None, label="RMS error", interactive=False, precision=4, visible=False))
                error_text.append(gr.Markdown(rms_text(None), elem_classes=NOTE, elem_id=f"rms-{name.lower()}"))
        with gr.Column(scale=1, min_width=260):
            steps = gri.Slider(
                10,
                1000,
                value=ep.INVERT_STEPS,
                step=10,
                label="Optimisation steps",
                info="more: closer, slower (150 take a few seconds on a CPU)",
            )
            invert = gr.Button("Invert", variant="primary", elem_id="invert")
            frames = gri.Slider(2, 128, value=24, step=1, label="Frames of the walk A → B")
            walk = gr.Button("Render the walk again", size="sm")
            gif = pixel_image("Walk between the two photos (GIF)", type="filepath", height=260)
    return PhotosUI(photos, targets, recs, errors, error_text, steps, invert, frames, walk, gif, gr.State({}))


def rms_text(error: float | None) -> str:
    if error is None:
        return "RMS error: after **Invert** (0 = identical, 1 = opposite)"
    return f"RMS error: **{error:.4f}** (0 = identical, 1 = opposite)"


def _arithmetic_ui() -> ArithmeticUI:
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            gr.Markdown(
                "As in the DCGAN paper: average the latents of a few seeds per group, then compute **A − B + C** "
                "(e.g. smiling woman − woman + man = smiling man). Pick seeds in the Sample tab; ranges like "
                "`10-13` work.",
                elem_classes=NOTE,
            )
            groups = [
                gri.Textbox("1, 2, 3", label="Seeds A", max_lines=1),
                gri.Textbox("4, 5, 6", label="Seeds B (subtracted)", max_lines=1),
                gri.Textbox("7, 8, 9", label="Seeds C (added)", max_lines=1),
            ]
            truncation = gri.Slider(0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ")
            compute = gr.Button("Compute A − B + C", variant="primary")
        with gr.Column(scale=2):
            gallery = gr.Gallery(
                label="mean A, mean B, mean C, and A − B + C",
                columns=4,
                height=260,
                object_fit="contain",
                allow_preview=False,
                format="png",
                elem_id="arithmetic",
                elem_classes=["pixelated"],
            )
    return ArithmeticUI(groups, truncation, compute, gallery)


# ---- events ---------------------------------------------------------------------------------------


def _strips(lab: Lab, model, seed, truncation, k: int) -> list[gr.Image]:
    """The direction strips of `seed` (k visible); empty when the model or the seed is not usable."""
    try:
        strips = lab.strips(lab.models.get(model), ep._seed("seed", seed), float(truncation)) if model else []
    except USER_ERRORS:
        strips = []
    return [gr.Image(value=strips[i] if i < len(strips) else None, visible=i < k) for i in range(N_EXPLORE)]


def seed_strips(lab: Lab, model, seed, truncation) -> list[gr.Image]:
    return _strips(lab, model, seed, truncation, direction_count(lab, model, N_EXPLORE))


def explore_latents(lab: Lab, seed):
    """G -> the Directions view's latents: the seed's at truncation 1 (ψ is a slider) and the directions."""
    return lambda G: explore_payload(G, ep._seed("seed", seed), lab.directions(G))


def plane_latents(tl, tr, bl, br, mode):
    """G -> the seed plane view's latents: the four corners at truncation 1 (ψ is a slider)."""
    return lambda G: plane_payload(G, ep._corners(tl, tr, bl, br, mode), mode=mode)


def render_all(lab: Lab, model, seed, truncation, tl, tr, bl, br, u, v, blend, plane_truncation) -> list:
    """Everything the Explore tab draws for a model (after a model change or a page load): sliders
    back to 0 with their labels and strips, the seed's image, the plane's image and its overview, and
    the in-browser views' model and latents."""
    k = direction_count(lab, model, N_EXPLORE)
    sliders = [
        gri.Slider(value=0.0, label=f"Direction {i + 1}" if i < k else "", visible=i < k) for i in range(N_EXPLORE)
    ]
    images = _strips(lab, model, seed, truncation, k)
    image = quietly(ep.explore, lab)(model, seed, *[0.0] * N_EXPLORE, truncation)
    plane_image = quietly(ep.plane, lab)(model, tl, tr, bl, br, u, v, blend, plane_truncation)
    overview = quietly(ep.plane_overview, lab)(model, tl, tr, bl, br, blend, plane_truncation)
    views = [
        browser_view.props(lab, model, explore_latents(lab, seed)),
        browser_view.props(lab, model, plane_latents(tl, tr, bl, br, blend)),
    ]
    return [*sliders, *images, image, plane_image, overview, *views]


def render_steps(ui: ExploreUI, lab: Lab, model: gr.Dropdown) -> list[tuple]:
    """(fn, inputs, outputs) of the page's refresh after a model change or a page load."""
    d, p = ui.directions, ui.plane
    inputs = [model, d.seed, d.truncation, *p.corners, p.u, p.v, p.mode, p.truncation]
    outputs = [*d.sliders, *d.strips, d.image, p.image, p.grid, d.view, p.view]
    return [(functools.partial(render_all, lab), inputs, outputs)]


def redraw_directions(ui: ExploreUI, lab: Lab, model: gr.Dropdown) -> tuple:
    """(fn, inputs, outputs): the Directions view's latents and strips for the current seed and ψ
    (after both were set from another tab, which fires no slider event)."""
    d = ui.directions

    def redraw(key, seed, truncation):
        view = browser_view.payload_only(lab, key, explore_latents(lab, seed))
        return [view, *seed_strips(lab, key, seed, truncation)]

    return redraw, [model, d.seed, d.truncation], [d.view, *d.strips]


def create_event_handlers(ui: ExploreUI, lab: Lab, model: gr.Dropdown) -> None:
    private = dict(api_visibility="private")
    live = browser_view.LIVE
    d, p, ph, ar = ui.directions, ui.plane, ui.photos, ui.arithmetic

    # slider moves are drawn in the browser; `submit` (the API's `explore`) renders on the server
    # when the browser cannot
    d.view.submit(endpoint(ep.explore, lab), d.inputs(model), d.image, api_name="explore", **live)
    new_seed = lambda key, seed: browser_view.payload_only(lab, key, explore_latents(lab, seed))  # noqa: E731
    d.seed.change(
        new_seed, [model, d.seed], d.view, validator=seed_check([model, d.seed], [d.seed]), **private, **live
    ).then(  # fmt: skip
        functools.partial(seed_strips, lab), [model, d.seed, d.truncation], d.strips, **private, **live
    )
    d.truncation.release(
        functools.partial(seed_strips, lab), [model, d.seed, d.truncation], d.strips, **private, **live
    )
    d.dice.click(random_seed, None, d.seed, **private)
    d.reset.click(lambda: [0.0] * N_EXPLORE, None, d.sliders, **private).then(
        new_seed, [model, d.seed], d.view, show_progress="hidden", **private
    )

    p.view.submit(endpoint(ep.plane, lab), p.inputs(model), p.image, api_name="plane", **live)
    new_corners = lambda key, *a: browser_view.payload_only(lab, key, plane_latents(*a))  # noqa: E731
    overview = dict(fn=quietly(ep.plane_overview, lab), inputs=p.overview_inputs(model), outputs=p.grid)
    gr.on([*[c.change for c in p.corners], p.mode.change], new_corners, [model, *p.corners, p.mode], p.view,
          validator=seed_check([model, *p.corners, p.mode], p.corners), **private, **live).then(
        **overview, show_progress="hidden", **private
    )  # fmt: skip
    p.truncation.release(**overview, **private, **live)
    p.dice.click(lambda: random_seeds(4), None, p.corners, **private)

    ph.invert.click(
        endpoint(ep.invert, lab),
        [model, *ph.photos, ph.steps, ph.frames],
        ph.outputs(),
        api_name="invert",
        show_progress_on=[*ph.reconstructions, ph.gif],
    ).then(lambda a, b: [rms_text(a), rms_text(b)], ph.errors, ph.error_text, show_progress="hidden", **private)
    # progress bars where the results appear; the RMS lines follow the (hidden) numbers
    ph.walk.click(endpoint(ep.walk_photos, lab), [model, ph.frames, ph.state], ph.gif, **private)

    arithmetic = endpoint(ep.arithmetic, lab)
    ar.compute.click(arithmetic, ar.inputs(model), ar.gallery, api_name="arithmetic")
    gr.on(
        [*[g.submit for g in ar.groups], ar.truncation.release],
        arithmetic,
        ar.inputs(model),
        ar.gallery,
        trigger_mode="always_last",
        **private,
    )
