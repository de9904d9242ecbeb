"""The Hugging Face Hub panel (an accordion under the model picker): load a model by repo id,
or push the picked one with a token that is used for that push only."""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from gan.hub import is_repo_id

from . import endpoints as ep
from . import inputs as gri
from .common import USER_ERRORS, md_text
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
                repo = gri.Textbox(
                    label="Load a model from the Hub", placeholder="user/name", max_lines=1, elem_id="hub-repo"
                )
                load = gr.Button("Load", size="sm", elem_id="hub-load")
            with gr.Column(min_width=280):
                push_repo = gri.Textbox(
                    label="Push the selected model to", placeholder="your-user-name/my-gan", max_lines=1
                )
                token = gri.Textbox(
                    label="Hub token (write access)",
                    type="password",
                    max_lines=1,
                    placeholder="hf_…  (leave empty to use HF_TOKEN)",
                    elem_id="hub-token",
                )
                private = gri.Checkbox(False, label="Private repo")
                push = gr.Button("Push to the Hub", size="sm", variant="primary", elem_id="hub-push")
        gr.Markdown(token_note(settings), elem_classes=["gan-note"])
        status = gr.Markdown("", elem_id="hub-status")  # the last load or push: stays until the next
    return HubUI(repo, load, push_repo, token, private, push, status)


def check_choice(lab: Lab, key: str | None) -> tuple[str | None, str | None]:
    """A Hub repo id typed into the model picker is loaded when chosen (checked: size limits, a model
    at all, anonymous on a Space), not when first used. Returns (model info, Hub panel message); both
    None when the key is not an unloaded Hub id."""
    if not key or not is_repo_id(key.strip()) or lab.models.loaded(key):
        return None, None
    try:
        msg = ep.hub_load(lab, key)
    except USER_ERRORS as e:
        why = md_text(str(e).removeprefix("Not loaded: "))
        text = f"**Not loaded** `{key.strip()}`: {why}"  # the key passed is_repo_id: safe in a code span
        return text, text
    return None, msg


def create_event_handlers(ui: HubUI, lab: Lab, model: gr.Dropdown) -> None:
    """The panel's buttons write their outcome into the panel (it stays, unlike a toast); the API's
    `hub_load` / `hub_push` (hidden buttons) raise errors as every endpoint does."""
    private = dict(api_visibility="private")

    def load(repo_id: str):
        try:
            msg = ep.hub_load(lab, repo_id)
        except USER_ERRORS as e:
            gr.Warning(html.escape(str(e)))  # a toast renders HTML: the repo id is the visitor's
            return f"**{md_text(e)}**", gr.skip()
        return msg, gri.Dropdown(choices=lab.models.choices(), value=repo_id.strip())  # the loaded model is picked

    ui.load.click(load, ui.repo, [ui.status, model], **private)
    ui.repo.submit(load, ui.repo, [ui.status, model], **private)

    def push(current: str | None, repo_id: str, token: str, private_repo: bool):
        try:
            msg = ep.hub_push(lab, current, repo_id, token, private_repo)
        except USER_ERRORS as e:
            gr.Warning(html.escape(str(e)))
            msg = f"**{md_text(e)}**"
        return msg, ""  # the token goes, whatever happened

    ui.push.click(push, [model, ui.push_repo, ui.token, ui.private], [ui.status, ui.token], **private)

    # the API (scripts): the same functions, errors raised
    gr.Button(visible=False).click(endpoint(ep.hub_load, lab), ui.repo, ui.status, api_name="hub_load")
    gr.Button(visible=False).click(
        endpoint(ep.hub_push, lab), [model, ui.push_repo, ui.token, ui.private], ui.status, api_name="hub_push"
    )
