"""The app's settings: the one place in the UI that reads the environment.

settings = Settings.from_env()                        # what `python app.py` and a Space use
settings = Settings.from_env({}, on_space=True)       # a Space's limits, for a test
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository: weights/ and runs/ live here

# (on a Space, elsewhere): a Space is shared by strangers and runs on a small CPU
MAX_STEPS = (20_000, 1_000_000)  # GAN_MAX_STEPS: about 2 h of CPU on a Space
MAX_UPLOAD_MB = (200, 1024)  # GAN_MAX_UPLOAD_MB
MAX_MINUTES = (30.0, 0.0)  # GAN_MAX_MINUTES: one run's time limit (0: none)
MAX_MODEL_MB = (50, 0)  # GAN_MAX_MODEL_MB: the largest model.safetensors a Hub load downloads (0: no limit)
HUB_CACHE_MB = (500, 0)  # GAN_HUB_CACHE_MB: GAN Lab models kept in the huggingface_hub cache (0: no limit)
MAX_RUNS_MB = (5_000, 0)  # GAN_MAX_RUNS_MB: disk for the app's run folders, oldest unused pruned first (0: no limit)
RUNS_PER_VISITOR = (3, 0)  # GAN_RUNS_PER_VISITOR: run folders one visitor keeps on a Space (0: no limit)
DATA_CACHE_MB = (2_000, 4_000)  # GAN_DATA_CACHE_MB: decoded data sets kept for Load -> Start -> Resume
CACHE_MB = (500, 0)  # GAN_CACHE_MB: the app's cache folder (ONNX exports, directions; 0: no limit)
DATASET_CACHE_MB = (2_000, 0)  # GAN_DATASET_CACHE_MB: Hub datasets in the huggingface_hub cache (0: no limit)
WORKER_MEM_MB = (4_000, 0)  # GAN_WORKER_MEM_MB: memory a decode or training child may add (0: no limit)
MAX_QUEUE = (3, 0)  # GAN_MAX_QUEUE: visitors who may wait in line for the trainer (0: no queue, "Busy")


@dataclass(frozen=True)
class Settings:
    """Everything the app takes from its surroundings; build_app(settings) reads nothing else."""

    weights_dir: Path = ROOT / "weights"  # shipped model folders
    runs_dir: Path = ROOT / "runs" / "app"  # runs started in the app
    on_space: bool = False  # SPACE_ID is set: no server folders, Space limits, no owner token lent
    has_hf_token: bool = False  # HF_TOKEN is set (its value is never kept here)
    allow_owner_push: bool = False  # GAN_ALLOW_OWNER_PUSH=1: an empty token box pushes with HF_TOKEN
    allow_owner_read: bool = False  # GAN_ALLOW_OWNER_READ=1: Hub reads on a Space may use HF_TOKEN
    max_minutes: float | None = None  # GAN_MAX_MINUTES: the longest a run may train (0: no limit; None: by on_space)
    max_model_mb: int | None = None  # GAN_MAX_MODEL_MB: Hub model size limit (0: none; None: by on_space)
    hub_cache_mb: int | None = None  # GAN_HUB_CACHE_MB: disk for cached Hub models (0: no limit; None: by on_space)
    max_steps: int | None = None  # GAN_MAX_STEPS: the longest run one Start may ask for (None: by on_space)
    max_upload_mb: int | None = None  # GAN_MAX_UPLOAD_MB: the largest file an upload may be (None: by on_space)
    keep_runs: int = 20  # GAN_KEEP_RUNS: older app run folders are deleted (0: keep all)
    train_threads: int = 0  # GAN_TRAIN_THREADS: torch threads of the training job (0: every idle core, adaptive)
    render_share: float = 0.2  # GAN_RENDER_SHARE: while a run trains, renders use at most this share of one core
    host: str = "127.0.0.1"  # GRADIO_SERVER_NAME (0.0.0.0 on a Space)
    port: int = 7860  # GRADIO_SERVER_PORT
    train_defaults: Mapping[str, Any] = field(default_factory=dict)  # initial Train tab values (tests: tiny)
    ort_base: str | None = None  # GAN_ORT_URL: onnxruntime-web's files (a URL or a local folder); None: the pinned CDN
    max_runs_mb: int | None = None  # GAN_MAX_RUNS_MB (None: by on_space)
    runs_per_visitor: int | None = None  # GAN_RUNS_PER_VISITOR (None: by on_space)
    data_cache_mb: int | None = None  # GAN_DATA_CACHE_MB (None: by on_space)
    cache_mb: int | None = None  # GAN_CACHE_MB (None: by on_space)
    dataset_cache_mb: int | None = None  # GAN_DATASET_CACHE_MB (None: by on_space)
    worker_mem_mb: int | None = None  # GAN_WORKER_MEM_MB (None: by on_space)
    max_queue: int | None = None  # GAN_MAX_QUEUE (None: by on_space)
    isolate_data: bool | None = None  # GAN_ISOLATE_DATA=1/0: decode data in a child process (None: on a Space)
    data_limits: Any = None  # gan.data.Limits: GAN_MAX_FILES, GAN_MAX_DATA_MB, ... (None: from the environment)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights_dir", Path(self.weights_dir))
        object.__setattr__(self, "runs_dir", Path(self.runs_dir))
        i = 0 if self.on_space else 1
        if self.max_steps is None:
            object.__setattr__(self, "max_steps", MAX_STEPS[i])
        if self.max_upload_mb is None:
            object.__setattr__(self, "max_upload_mb", MAX_UPLOAD_MB[i])
        by_place = {
            "max_minutes": MAX_MINUTES, "max_model_mb": MAX_MODEL_MB, "hub_cache_mb": HUB_CACHE_MB,
            "max_runs_mb": MAX_RUNS_MB, "runs_per_visitor": RUNS_PER_VISITOR, "data_cache_mb": DATA_CACHE_MB,
            "cache_mb": CACHE_MB, "dataset_cache_mb": DATASET_CACHE_MB, "worker_mem_mb": WORKER_MEM_MB,
            "max_queue": MAX_QUEUE,
        }  # fmt: skip
        for name, defaults in by_place.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[i])
        if self.isolate_data is None:
            object.__setattr__(self, "isolate_data", self.on_space)
        if self.data_limits is None:
            object.__setattr__(self, "data_limits", data_limits({}, self.on_space))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `environ` (default os.environ); keyword overrides win (CLI flags, tests)."""
        env = os.environ if environ is None else environ
        on_space = bool(overrides.get("on_space", bool(env.get("SPACE_ID"))))
        values: dict[str, Any] = dict(
            on_space=on_space,
            has_hf_token=bool(env.get("HF_TOKEN")),
            allow_owner_push=env.get("GAN_ALLOW_OWNER_PUSH") == "1",
            allow_owner_read=env.get("GAN_ALLOW_OWNER_READ") == "1",
            max_minutes=_float(env, "GAN_MAX_MINUTES"),
            max_model_mb=_int(env, "GAN_MAX_MODEL_MB", None),
            hub_cache_mb=_int(env, "GAN_HUB_CACHE_MB", None),
            max_steps=_int(env, "GAN_MAX_STEPS", None),
            max_upload_mb=_int(env, "GAN_MAX_UPLOAD_MB", None),
            keep_runs=_int(env, "GAN_KEEP_RUNS", 20),
            train_threads=_int(env, "GAN_TRAIN_THREADS", 0),
            render_share=min(1.0, max(0.05, _float(env, "GAN_RENDER_SHARE") or 0.2)),
            host=env.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space else "127.0.0.1"),
            port=_int(env, "GRADIO_SERVER_PORT", 7860),
            ort_base=env.get("GAN_ORT_URL") or None,
            isolate_data={"1": True, "0": False}.get(env.get("GAN_ISOLATE_DATA", "")),
            data_limits=data_limits(env, on_space),
        )
        for name in ("max_runs_mb", "runs_per_visitor", "data_cache_mb", "cache_mb", "dataset_cache_mb",
                     "worker_mem_mb", "max_queue"):  # fmt: skip
            values[name] = _int(env, "GAN_" + name.upper(), None)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def hub_token(self) -> bool | None:
        """The token for Hub reads (models, datasets): False (anonymous) on a Space unless the owner
        allowed HF_TOKEN with GAN_ALLOW_OWNER_READ=1; None (huggingface_hub's default) elsewhere."""
        return None if not self.on_space or self.allow_owner_read else False

    @property
    def max_model_bytes(self) -> int | None:
        return int(self.max_model_mb * 1_000_000) if self.max_model_mb else None

    @property
    def hub_cache_bytes(self) -> int | None:
        return int(self.hub_cache_mb * 1_000_000) if self.hub_cache_mb else None

    @property
    def max_upload(self) -> str:
        """The limit in the form launch(max_file_size=...) takes."""
        return f"{self.max_upload_mb}mb"


def data_limits(env: Mapping[str, str], on_space: bool):
    """The data readers' limits (gan.data.Limits) from `env`, with a Space's defaults on a Space."""
    from gan.data import Limits

    return Limits.from_env(env, on_space=on_space)


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    """An integer from the environment; a bad value is ignored with a warning on stderr."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        print(f"warning: {name}={raw!r} is not an integer; using the default", file=sys.stderr)
        return default


def _float(env: Mapping[str, str], name: str) -> float | None:
    """A number from the environment (None when unset); a bad or negative value is ignored with a warning."""
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        v = float(raw)
    except ValueError:
        v = -1.0
    if not v >= 0:  # also NaN
        print(f"warning: {name}={raw!r} is not a number >= 0; using the default", file=sys.stderr)
        return None
    return v
