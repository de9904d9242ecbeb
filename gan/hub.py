"""Model folders and the Hugging Face Hub.

A model folder is `config.json` + `model.safetensors` (+ `README.md` card, `samples.png`). It is
written with huggingface_hub's `PyTorchModelHubMixin` and read back by `load_model`, which takes a
local folder or a Hub repo id, refuses pickle-only weights, validates config.json before any
allocation and loads strictly. Nothing here runs code from the files it reads.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, ModelConfig, TrainConfig, save_json

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
MODEL_FILES = ["config.json", "model.safetensors", "README.md", "samples.png", "metrics.json"]
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class ModelLoadError(ValueError):
    """A model folder or repo cannot be loaded; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# the model card


def model_card(
    cfg: ModelConfig,
    *,
    train_cfg: TrainConfig | None = None,
    data_source: str | None = None,
    steps: int | None = None,
    metrics: dict[str, Any] | None = None,
    datasets: list[str] | None = None,
    extra: str = "",
    repo_id: str | None = None,
) -> str:
    """The README.md of a model folder: Hub metadata, how to use it, training, metrics."""
    meta = [
        "---",
        "library_name: gan-lab",
        "license: mit",
        "pipeline_tag: unconditional-image-generation",
        "tags:",
        *[f"- {t}" for t in ("gan", "dcgan", "pytorch", "unconditional-image-generation", "gan-lab")],
    ]
    if datasets:
        meta += ["datasets:", *[f"- {d}" for d in datasets]]
    meta.append("---")
    name = repo_id or "path/to/model"
    body = [
        "",
        f"# DCGAN {cfg.image_size}x{cfg.image_size} ({'RGB' if cfg.channels == 3 else 'grayscale'})",
        "",
        "A DCGAN generator trained with [GAN Lab](https://huggingface.co/spaces) "
        f"({cfg.g_style} generator, widths G {cfg.g_width} / D {cfg.d_width}, z {cfg.z_dim}).",
        "",
        "![samples](samples.png)",
        "",
        "## Use",
        "",
        "```python",
        "from gan import load_model, sample",
        f'G = load_model("{name}")',
        "images = sample(G, seeds=[0, 1, 2, 3])  # uint8 (4, C, H, W); one seed, one image",
        "```",
        "",
        f"Or from the command line: `python -m gan sample --model {name} --seed 0 --n 16 --out grid.png`.",
        "",
        "## Training",
        "",
    ]
    if data_source:
        body += [f"- data: {data_source}"]
    if steps is not None:
        body += [f"- steps: {steps}"]
    if train_cfg is not None:
        t = train_cfg
        body += [
            f"- batch {t.batch_size}, loss {t.loss}, lr G {t.lr_g:g} / D {t.lr_d:g}, "
            f"Adam betas ({t.beta1}, {t.beta2}), EMA {t.ema_decay:g}, augment {t.augment}, "
            f"precision {t.precision}, seed {t.seed}",
        ]
    body += ["", "Model config:", "", "```json", cfg.to_json(), "```", ""]
    if metrics:
        body += ["## Metrics", "", "| metric | value |", "|---|---|"]
        body += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
        body += [""]
    if extra:
        body += [extra.strip(), ""]
    body += [
        "## Limits",
        "",
        "A small DCGAN: it reproduces the look of its training images at low resolution and "
        "can show artifacts; it knows nothing beyond its training data.",
        "",
    ]
    return "\n".join(meta + body)


def save_model(
    G: torch.nn.Module,
    path: str | Path,
    *,
    train_cfg: TrainConfig | None = None,
    report: Any = None,
    steps: int | None = None,
    metrics: dict[str, Any] | None = None,
    card_extra: str = "",
) -> Path:
    """Write a model folder: config.json, model.safetensors (float32, CPU), README.md, samples.png."""
    from .models import Generator
    from .sampling import make_grid, sample, save_png

    G = getattr(G, "_orig_mod", G)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cpu = Generator(G.config)
    cpu.load_state_dict({k: v.detach().float().cpu() for k, v in G.state_dict().items()})
    cpu.eval()
    source = getattr(report, "source", None)
    card = model_card(G.config, train_cfg=train_cfg, data_source=source, steps=steps, metrics=metrics,
                      extra=card_extra)  # fmt: skip
    tmp = path / "README.md.tmp"
    tmp.write_text(card)
    tmp.replace(path / "README.md")
    cpu.save_pretrained(path)  # config.json + model.safetensors; keeps our README
    save_png(make_grid(sample(cpu, range(64))), path / "samples.png")
    if train_cfg is not None:
        save_json({"train_config": train_cfg.to_dict(), "steps": steps, "data": source}, path / "training.json")
    return path


# ---------------------------------------------------------------------------------------------
# loading


def _check_files(names: list[str], where: str) -> None:
    if "model.safetensors" in names:
        if "config.json" not in names:
            raise ModelLoadError(f"{where} has model.safetensors but no config.json; not a GAN Lab model")
        return
    pickles = [n for n in names if n.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ModelLoadError(
            f"{where} holds only pickle weights ({', '.join(sorted(pickles)[:3])}). Loading a pickle can "
            "run arbitrary code, so GAN Lab refuses it; ask for a model.safetensors version."
        )
    raise ModelLoadError(f"{where} has no model.safetensors; it is not a GAN Lab model")


def _read_config(path: Path) -> ModelConfig:
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"config.json is not valid JSON ({e})") from None
    if isinstance(d, dict):
        d = {k: v for k, v in d.items() if not k.startswith("_")}
    try:
        return ModelConfig.from_dict(d)
    except (ConfigError, TypeError) as e:
        raise ModelLoadError(f"config.json is not a valid GAN Lab model config: {e}") from None


def is_repo_id(s: str) -> bool:
    return bool(REPO_ID_RE.match(s)) and not os.path.exists(s)


def resolve_model_dir(src: str | Path, *, revision: str | None = None, token: str | None = None) -> Path:
    """A local folder, or a Hub repo id downloaded into the huggingface_hub cache."""
    p = Path(src).expanduser()
    if p.is_dir():
        _check_files(sorted(f.name for f in p.iterdir()), f"folder {p}")
        return p
    s = str(src)
    if p.exists():
        raise ModelLoadError(f"{s} is a file; give a model folder (config.json + model.safetensors)")
    if "/" not in s or s.startswith((".", "/", "~")):
        raise ModelLoadError(f"no model folder at {s!r}, and it is not a Hub repo id (user/name)")
    if not REPO_ID_RE.match(s):
        raise ModelLoadError(f"{s!r} is not a valid Hub repo id: use 'user/name' with letters, digits, '-', '_' or '.'")
    return _download(s, revision=revision, token=token)


def _download(repo_id: str, *, revision: str | None, token: str | None) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        files = HfApi().list_repo_files(repo_id, revision=revision, token=token)
        _check_files(files, f"Hub repo {repo_id}")
        local = snapshot_download(
            repo_id, revision=revision, token=token,
            allow_patterns=[f for f in files if f in MODEL_FILES or f == "directions.safetensors"],
        )  # fmt: skip
    except GatedRepoError:
        raise ModelLoadError(f"{repo_id} is gated: accept its terms on the Hub and use a token") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"Hub repo {repo_id} was not found (or it is private and no valid token was given)"
        ) from None
    except RevisionNotFoundError:
        raise ModelLoadError(f"revision {revision!r} does not exist in {repo_id}") from None
    except LocalEntryNotFoundError:
        raise ModelLoadError(f"could not reach the Hub to download {repo_id}, and it is not cached") from None
    except HfHubHTTPError as e:
        code = getattr(getattr(e, "response", None), "status_code", None)
        if code in (401, 403):
            raise ModelLoadError(f"not authorized to read {repo_id}: check the token") from None
        raise ModelLoadError(f"the Hub answered {code} for {repo_id}") from None
    return Path(local)


def load_model(
    src: str | Path,
    *,
    revision: str | None = None,
    token: str | None = None,
    device: str | torch.device = "cpu",
):
    """Load a Generator from a model folder or a Hub repo id; eval mode, float32."""
    from .models import Generator

    d = resolve_model_dir(src, revision=revision, token=token)
    cfg = _read_config(d / "config.json")  # validated before any allocation
    try:
        G = Generator._from_pretrained(
            model_id=str(d), revision=None, cache_dir=None, force_download=False,
            local_files_only=True, token=None, map_location=str(device), config=cfg,
        )  # fmt: skip
    except ConfigError as e:
        raise ModelLoadError(str(e)) from None
    except Exception as e:  # a corrupt safetensors header raises the library's own errors
        raise ModelLoadError(f"model.safetensors in {d} cannot be read ({type(e).__name__}: {e})") from None
    G.source = str(src)
    G.folder = d
    return G
