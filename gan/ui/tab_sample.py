"""The Sample tab: a grid for a seed and the next n - 1 seeds, each image with its seed in a
gallery (click one to carry its seed to Interpolate or Explore), the grid as a PNG download."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import gradio as gr

from gan import sampling

from . import endpoints as ep
from . import inputs as gri
from .common import USER_ERRORS, slug, to_hwc
from .lab import Lab
from .wiring import api_twin, endpoint, no_model_notice, pixel_image, quietly, random_seed, seed_check


@dataclass
class SampleUI:
    notice: gr.Markdown
    to_train: gr.Button
    seed: gr.Number
    dice: gr.Button
    n: gr.Slider
    truncation: gr.Slider
    generate: gr.Button
    seeds_md: gr.Markdown
    to_a: gr.Button
    to_b: gr.Button
    to_explore: gr.Button
    png: gr.DownloadButton
    grid: gr.Image
    gallery: gr.Gallery
    seeds: gr.State  # the seeds of the gallery's images
    picked: gr.State  # the seed picked there

    def inputs(self, model: gr.Dropdown) -> list:
        return [model, self.seed, self.n, self.truncation]

    def gallery_outputs(self) -> list:
        return [self.gallery, self.seeds_md, self.png, self.seeds]


def create_ui(has_model: bool) -> SampleUI:
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            notice = no_model_notice(not has_model)
            to_train = gr.Button("Go to Train", visible=not has_model, variant="primary")
            with gr.Row(equal_height=True):
                seed = gri.Number(0, label="Seed", precision=0, scale=3)
                dice = gr.Button("Random", scale=0, min_width=80, elem_id="random-seed")
            n = gri.Slider(1, 64, value=16, step=1, label="Images (n)", elem_id="sample-n")
            truncation = gri.Slider(
                0.0,
                2.0,
                value=1.0,
                step=0.05,
                label="Truncation ψ",
                info="below 1: fewer odd images, less variety; 0 gives the average image",
            )
            generate = gr.Button("Generate", variant="primary")
            seeds_md = gr.Markdown("")
            with gr.Row():
                to_a = gr.Button("→ Interpolate A", interactive=False, size="sm", elem_id="to-a")
                to_b = gr.Button("→ Interpolate B", interactive=False, size="sm")
                to_explore = gr.Button("→ Explore", interactive=False, size="sm", elem_id="to-explore")
            png = gr.DownloadButton("Download PNG", visible=False)
        with gr.Column(scale=2):
            grid = pixel_image("Samples", height=520, elem_id="sample-grid")
            gallery = gr.Gallery(
                label="Each image with its seed",
                show_label=False,
                elem_id="seed-gallery",
                columns=6,
                fit_columns=False,  # n = 1: one thumbnail, not one image stretched over the row
                height="auto",  # every row visible, no inner scroll bar
                object_fit="contain",
                allow_preview=False,
                elem_classes=["pixelated"],
                format="png",
            )
    return SampleUI(
        notice,
        to_train,
        seed,
        dice,
        n,
        truncation,
        generate,
        seeds_md,
        to_a,
        to_b,
        to_explore,
        png,
        grid,
        gallery,
        gr.State([]),
        gr.State(None),
    )


def seeds_gallery(lab: Lab, model, seed, n, truncation):
    """The grid's images one by one, captioned with their seeds, plus the PNG download of the grid."""
    try:
        imgs = ep.sample_images(lab, model, seed, n, truncation)  # the grid's render, reused
    except USER_ERRORS:  # the grid itself shows the error
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    seed, n = int(seed), len(imgs)
    items = [(to_hwc(imgs[i : i + 1]), f"seed {seed + i}") for i in range(n)]
    png = sampling.save_png(
        sampling.make_grid(imgs) if n > 1 else imgs[0],
        lab.scratch.path(f"gan-lab_{slug(str(model or 'model'))}_seed{seed}_n{n}.png"),
    )
    rows = math.ceil(n / max(1, math.ceil(math.sqrt(n))))
    info = (
        f"Seeds {seed}–{seed + n - 1}, row by row ({rows} row{'s' if rows > 1 else ''}). "
        "Click an image below to carry its seed to Interpolate or Explore."
        if n > 1
        else f"Seed {seed}."
    )
    return items, info, gr.DownloadButton(value=str(png), visible=True), [seed + i for i in range(n)]


def pick_seed(seeds: list[int], evt: gr.SelectData):
    i = evt.index if isinstance(evt.index, int) else None
    if i is None or not 0 <= i < len(seeds or []):
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    s = seeds[i]
    return (
        s,
        gr.Button(interactive=True, value=f"Seed {s} → Interpolate A"),
        gr.Button(interactive=True, value=f"Seed {s} → Interpolate B"),
        gr.Button(interactive=True, value=f"Seed {s} → Explore"),
    )


def render_steps(ui: SampleUI, lab: Lab, model: gr.Dropdown) -> list[tuple]:
    """(fn, inputs, outputs) of the page's refresh after a model change or a page load."""
    gallery = (functools.partial(seeds_gallery, lab), ui.inputs(model), ui.gallery_outputs())
    return [(quietly(ep.sample, lab), ui.inputs(model), ui.grid), gallery]


def create_event_handlers(ui: SampleUI, lab: Lab, model: gr.Dropdown) -> None:
    sample = endpoint(ep.sample, lab)

    def gallery():
        return dict(
            fn=functools.partial(seeds_gallery, lab),
            inputs=ui.inputs(model),
            outputs=ui.gallery_outputs(),
            api_visibility="private",
        )

    check = seed_check(ui.inputs(model), [ui.seed])  # a bad seed: its message under the box, outputs kept
    api_twin(sample, ui.inputs(model), ui.grid, "sample")  # first: it takes the name `sample`
    ui.generate.click(sample, ui.inputs(model), ui.grid, api_visibility="private", validator=check).success(**gallery())
    ui.seed.submit(sample, ui.inputs(model), ui.grid, api_visibility="private", validator=check).success(**gallery())
    gr.on(
        [ui.n.release, ui.truncation.release],
        sample,
        ui.inputs(model),
        ui.grid,
        api_visibility="private",
        trigger_mode="always_last",
        validator=check,
    ).success(**gallery())
    ui.dice.click(random_seed, None, ui.seed, api_visibility="private").then(
        sample, ui.inputs(model), ui.grid, api_visibility="private"
    ).success(**gallery())
    ui.gallery.select(pick_seed, ui.seeds, [ui.picked, ui.to_a, ui.to_b, ui.to_explore], api_visibility="private")
