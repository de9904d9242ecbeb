"""The Interpolate tab: seed A -> seed B with a live `t` slider (slerp or lerp), sliders along the
model's first principal directions, and the walk as a GIF and an MP4."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from gan.onnx_export import interpolate_payload

from . import browser_view
from . import endpoints as ep
from . import inputs as gri
from .lab import N_DIRECTIONS, Lab
from .settings import Settings
from .wiring import (
    api_twin,
    direction_sliders,
    endpoint,
    no_model_notice,
    pixel_image,
    quietly,
    random_seed,
    seed_check,
)


@dataclass
class InterpolateUI:
    notice: gr.Markdown
    seed_a: gr.Number
    seed_b: gr.Number
    dice_a: gr.Button
    swap: gr.Button
    dice_b: gr.Button
    t: gr.Slider
    mode: gr.Radio
    truncation: gr.Slider
    image: gr.Image
    view: gr.HTML  # the same image computed in the browser (the server's `image` when it cannot)
    dirs: list[gr.Slider]
    reset_dirs: gr.Button
    frames: gr.Slider
    fps: gr.Slider
    loop: gr.Checkbox
    walk: gr.Button
    gif: gr.Image
    mp4: gr.Video
    files: gr.File

    def inputs(self, model: gr.Dropdown) -> list:
        return [model, self.seed_a, self.seed_b, self.t, self.mode, self.truncation, *self.dirs]


def create_ui(has_model: bool, settings: Settings | None = None) -> InterpolateUI:
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            notice = no_model_notice(not has_model)
            with gr.Row(equal_height=True):
                seed_a = gri.Number(1, label="Seed A", precision=0)
                seed_b = gri.Number(2, label="Seed B", precision=0)
            with gr.Row():
                dice_a = gr.Button("Random A", size="sm", min_width=60)
                swap = gr.Button("⇄ Swap", size="sm", min_width=60)
                dice_b = gr.Button("Random B", size="sm", min_width=60)
            t = gri.Slider(0.0, 1.0, value=0.5, step=0.01, label="t (0 = seed A, 1 = seed B)", elem_id="t")
            with gr.Row():
                mode = gri.Radio(["slerp", "lerp"], value="slerp", label="Path", scale=1, min_width=160)
                truncation = gri.Slider(
                    0.0, 2.0, value=1.0, step=0.05, label="Truncation ψ", scale=2, min_width=240, elem_id="interp-psi"
                )
        with gr.Column(scale=1):
            view = browser_view.make(
                settings or Settings(),
                "interp-view",
                controls={
                    "t": "#t",
                    "amounts": [f"#interp-d{i + 1}" for i in range(N_DIRECTIONS)],
                    "truncation": "#interp-psi",
                },
                server_image="#interp-image",
            )
            image = pixel_image("Image at t", height=420, elem_id="interp-image")
        with gr.Column(scale=1, min_width=280):
            gr.Markdown(
                "**Principal directions** (in σ): move the current latent along the model's main "
                "axes of variation. The **Explore** tab shows what each one does."
            )
            dirs = [
                gri.Slider(-3.0, 3.0, value=0.0, step=0.1, label=f"Direction {i + 1}", elem_id=f"interp-d{i + 1}")
                for i in range(N_DIRECTIONS)
            ]
            reset_dirs = gr.Button("Reset directions", size="sm")
    with gr.Accordion("Animation: the walk from A to B", open=True):
        with gr.Row(equal_height=True):
            frames = gri.Slider(2, 256, value=32, step=1, label="Frames", min_width=240)
            fps = gri.Slider(1, 60, value=12, step=1, label="Speed (fps)", min_width=240)
            loop = gri.Checkbox(True, label="There and back (loops smoothly)", min_width=200)
            walk = gr.Button("Render GIF + MP4", variant="primary", min_width=160)
        with gr.Row():
            gif = pixel_image("GIF", type="filepath", height=300)
            mp4 = gr.Video(label="MP4", interactive=False, height=300, loop=True, elem_classes=["pixelated"])
            files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="walk-files")
    return InterpolateUI(
        notice,
        seed_a,
        seed_b,
        dice_a,
        swap,
        dice_b,
        t,
        mode,
        truncation,
        image,
        view,
        dirs,
        reset_dirs,
        frames,
        fps,
        loop,
        walk,
        gif,
        mp4,
        files,
    )


def payload_fn(lab: Lab, key, seed_a, seed_b, mode):
    """G -> the in-browser view's latents: seeds A and B at truncation 1 (ψ is a slider there) and the
    principal directions (the direction sliders)."""

    def payload(G):
        return interpolate_payload(G, ep._seed("seed_a", seed_a), ep._seed("seed_b", seed_b), mode=mode,
                                   directions=lab.directions(G))  # fmt: skip

    return payload


def render_steps(ui: InterpolateUI, lab: Lab, model: gr.Dropdown) -> list[tuple]:
    """(fn, inputs, outputs) of the page's refresh after a model change or a page load."""
    ends = [model, ui.seed_a, ui.seed_b, ui.mode]
    return [
        (lambda key: direction_sliders(lab, key, N_DIRECTIONS), [model], ui.dirs),
        (lambda key, *a: browser_view.props(lab, key, payload_fn(lab, key, *a)), ends, ui.view),
        (quietly(ep.interpolate, lab), ui.inputs(model), ui.image),  # shown when the browser cannot
    ]


def create_event_handlers(ui: InterpolateUI, lab: Lab, model: gr.Dropdown) -> None:
    private = dict(api_visibility="private")
    # Slider moves are drawn in the browser; the view asks the server (its `submit`) only when it
    # cannot run the model there: the API's `interpolate` is that server render.
    seeds = [ui.seed_a, ui.seed_b]
    ui.view.submit(
        endpoint(ep.interpolate, lab), ui.inputs(model), ui.image, api_name="interpolate", **browser_view.LIVE
    )
    # new ends: new latents for the browser (which redraws, or triggers `submit` when the server renders)
    ends = [model, ui.seed_a, ui.seed_b, ui.mode]
    new_ends = lambda key, *a: browser_view.payload_only(lab, key, payload_fn(lab, key, *a))  # noqa: E731
    gr.on([ui.mode.change, ui.seed_a.change, ui.seed_b.change], new_ends, ends, ui.view,
          validator=seed_check(ends, seeds), **private, **browser_view.LIVE)  # fmt: skip
    ui.dice_a.click(random_seed, None, ui.seed_a, **private)
    ui.dice_b.click(random_seed, None, ui.seed_b, **private)
    ui.swap.click(lambda a, b: (b, a), [ui.seed_a, ui.seed_b], [ui.seed_a, ui.seed_b], **private)
    ui.reset_dirs.click(lambda: [0.0] * N_DIRECTIONS, None, ui.dirs, **private).then(
        new_ends, ends, ui.view, show_progress="hidden", **private
    )
    walk_inputs = [model, ui.seed_a, ui.seed_b, ui.frames, ui.mode, ui.truncation, ui.fps, ui.loop, *ui.dirs]
    walk = endpoint(ep.walk, lab)
    api_twin(walk, walk_inputs, [ui.gif, ui.mp4, ui.files], "walk")  # first: it takes the name `walk`
    ui.walk.click(walk, walk_inputs, [ui.gif, ui.mp4, ui.files], validator=seed_check(walk_inputs, seeds), **private)
