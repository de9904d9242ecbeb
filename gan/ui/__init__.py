"""GAN Lab's Gradio app: the only part of `gan` that imports gradio (`import gan` never loads it).

    from gan.ui import Settings, build_app, launch_options
    build_app(Settings.from_env()).launch(**launch_options())

Modules: settings (the environment, read once), lab / models / jobs (the shared services: model
registry, training job runner), endpoints (the API as plain functions), one module per tab
(tab_sample, tab_interpolate, tab_explore, tab_train, hub_panel), build (the page and the events
between tabs), wiring (Gradio glue), common (errors and formatting).
"""

from .build import build_app
from .settings import Settings
from .wiring import launch_options

__all__ = ["Settings", "build_app", "launch_options"]
