"""The Hugging Face Hub panel (an accordion under the model picker): load a model by repo id,
or push the picked one with a token that is used for that push only."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from . import endpoints as ep
from .lab import Lab
from .settings import Settings
from .wiring import endpoint

KEEP = "It is used for that one push: the box is cleared afterwards, and it is never stored, logged or shown."


@dataclass
class HubUI:
    repo: gr.Textbox
    load: gr.Button
    push_repo: gr.Textbox
    token: gr.Textbox
    private: gr.Checkbox
    push: gr.Button
    status: gr.Markdown


def token_note(settings: Settings) -> str:
    """What the panel says about tokens (on a Space: whether the owner's HF_TOKEN is lent)."""
    if settings.on_space:
        secret = (
            "Left empty, the push uses this Space's `HF_TOKEN` secret, and that pushes **as the Space owner**, "
            "whoever presses the button (the owner allowed it with `GAN_ALLOW_OWNER_PUSH=1`)."
            if settings.has_hf_token and settings.allow_owner_push
            else "Pushing needs your own token here: the Space owner's token is never lent to visitors."
        )
        mine = "paste your own write token (huggingface.co/settings/tokens) to push as yourself."
        return f"**Token**: {mine} {secret} {KEEP}"
    return (
        "**Token**: a write token from huggingface.co/settings/tokens; left empty, the push uses `HF_TOKEN` or "
        f"your `hf auth login`. {KEEP}"
    )


def create_ui(settings: Settings) -> HubUI:
    with gr.Accordion("Hugging Face Hub: load a model by repo id, or push the selected one", open=False):
        with gr.Row():
            with gr.Column(min_width=280):
                repo = gr.Textbox(
                    label="Load a model from the Hub", placeholder="user/name", max_lines=1, elem_id="hub-repo"
                )
                load = gr.Button("Load", size="sm", elem_id="hub-load")
            with gr.Column(min_width=280):
                push_repo = gr.Textbox(
                    label="Push the selected model to", placeholder="your-user-name/my-gan", max_lines=1
                )
                with gr.Row(equal_height=True):
                    token = gr.Textbox(
                        label="Hub token (write access)",
                        type="password",
                        max_lines=1,
                        scale=3,
                        placeholder="hf_…  (leave empty to use HF_TOKEN)",
                        elem_id="hub-token",
                    )
                    private = gr.Checkbox(False, label="Private repo", scale=1, min_width=100)
                push = gr.Button("Push to the Hub", size="sm", variant="primary", elem_id="hub-push")
        gr.Markdown(token_note(settings), elem_classes=["gan-note"])
        status = gr.Markdown("", elem_id="hub-status")
    return HubUI(repo, load, push_repo, token, private, push, status)


def create_event_handlers(ui: HubUI, lab: Lab, model: gr.Dropdown) -> None:
    load = endpoint(ep.hub_load, lab)

    def select(repo_id: str) -> gr.Dropdown:  # the loaded model becomes the picked one
        return gr.Dropdown(choices=lab.models.choices(), value=repo_id.strip())

    ui.load.click(load, ui.repo, ui.status, api_name="hub_load").success(
        select, ui.repo, model, api_visibility="private"
    )
    ui.repo.submit(load, ui.repo, ui.status, api_visibility="private").success(
        select, ui.repo, model, api_visibility="private"
    )
    ui.push.click(
        endpoint(ep.hub_push, lab), [model, ui.push_repo, ui.token, ui.private], ui.status, api_name="hub_push"
    ).then(lambda: "", None, ui.token, api_visibility="private", show_progress="hidden")  # the token goes
