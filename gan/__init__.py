"""GAN Lab: a compact PyTorch DCGAN package. Train, sample, explore and share small GANs.

from gan import ModelConfig, TrainConfig, load_images, fit, load_model, sample
"""

from .config import ConfigError, GanError, ModelConfig, TrainConfig
from .data import DataError, DatasetReport, ImageData, Limits, load_files, load_images, make_synthetic
from .hub import load_model, push_to_hub
from .hubclient import HubError
from .hubdata import load_hub_dataset
from .modelfolder import ModelLoadError, save_model
from .models import Discriminator, Generator
from .sampling import (
    interpolation_frames,
    latents,
    lerp,
    make_grid,
    path_latents,
    sample,
    save_gif,
    save_png,
    seed_walk_frames,
    slerp,
    walk_latents,
)
from .train import (
    Checkpoint,
    CheckpointError,
    Done,
    Metric,
    Rollback,
    Samples,
    Started,
    StepLog,
    fit,
)

__all__ = [
    "Checkpoint", "CheckpointError", "ConfigError", "DataError", "DatasetReport", "Discriminator",
    "Done", "GanError", "Generator", "HubError", "ImageData", "Limits", "Metric", "ModelConfig", "ModelLoadError",
    "Rollback", "Samples", "Started", "StepLog", "TrainConfig", "fit", "interpolation_frames",
    "latents", "lerp", "load_files", "load_hub_dataset", "load_images", "load_model", "make_grid",
    "make_synthetic", "path_latents", "push_to_hub", "sample", "save_gif", "save_model", "save_png",
    "seed_walk_frames", "slerp", "walk_latents",
]  # fmt: skip
__version__ = "0.1.0"
