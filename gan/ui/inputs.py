"""Input components that leave every check of a value to the endpoints' one validation layer.

Gradio's own components check an API caller's values before an endpoint sees them, and answer a
wrong one with a generic "upstream exception" and a traceback in the server log (text in a Number,
a dict in a Slider, a file that is not one), refuse what the API documents ("32" for a Dropdown of
numbers, which view_api lists as strings), or answer with a message that does not name the field
("Value -1 is less than minimum value 0"). These hand the value on as it came: `gan.ui.wiring.endpoint`
converts it to the parameter's type or answers with a message that names the parameter, and the
endpoint checks its range. In the page nothing changes: the widgets send values of the right type.

They are Gradio's components with their `preprocess` (or file model) wrapped on the instance, not
subclasses (a subclass of a Gradio component writes a .pyi stub beside its module at import).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.data_classes import FileData, ListFiles


def _as_it_came(component: Any) -> Any:
    checked = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return checked(payload)
        except Exception:  # noqa: BLE001 - a wrong type or value: the endpoint's check names the field
            return payload

    component.preprocess = preprocess
    return component


def Number(*args: Any, **kwargs: Any) -> gr.Number:  # noqa: N802 - used like the component it makes
    return _as_it_came(gr.Number(*args, **kwargs))


def Slider(*args: Any, **kwargs: Any) -> gr.Slider:  # noqa: N802
    return _as_it_came(gr.Slider(*args, **kwargs))


def Radio(*args: Any, **kwargs: Any) -> gr.Radio:  # noqa: N802
    return _as_it_came(gr.Radio(*args, **kwargs))


def Dropdown(*args: Any, **kwargs: Any) -> gr.Dropdown:  # noqa: N802
    return _as_it_came(gr.Dropdown(*args, **kwargs))


def Checkbox(*args: Any, **kwargs: Any) -> gr.Checkbox:  # noqa: N802
    return _as_it_came(gr.Checkbox(*args, **kwargs))


def Textbox(*args: Any, **kwargs: Any) -> gr.Textbox:  # noqa: N802
    return _as_it_came(gr.Textbox(*args, **kwargs))


def _checked_model(base: type, what: str) -> type:
    """`base` (a Gradio file model) whose validation failure is one clear gr.Error, no traceback."""

    class Checked(base):  # a pydantic model: Gradio validates a file payload with it before preprocess
        @classmethod
        def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return base.model_validate(obj, *args, **kwargs)
            except Exception:  # noqa: BLE001 - pydantic's ValidationError
                raise gr.Error(
                    f"{what} (gradio_client: handle_file(path)), not another kind of value", print_exception=False
                ) from None

    return Checked


def File(*args: Any, **kwargs: Any) -> gr.File:  # noqa: N802
    c = gr.File(*args, **kwargs)
    many = c.data_model is ListFiles
    c.data_model = _checked_model(ListFiles if many else FileData, f"{'files' if many else 'this input'} must be "
                                  f"{'uploaded files' if many else 'an uploaded file'}")  # fmt: skip
    return c


def Image(*args: Any, **kwargs: Any) -> gr.Image:  # noqa: N802
    c = gr.Image(*args, **kwargs)
    c.data_model = _checked_model(c.data_model, "this image must be an uploaded image file")
    return c
