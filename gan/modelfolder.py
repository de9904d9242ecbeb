"""Model folders on disk: write one atomically, read one safely. No network here.

A model folder is `config.json` + `model.safetensors` (+ `README.md` card, `samples.png`,
`metrics.json`, `training.json`, `directions.safetensors`).

- `save_model` builds the whole folder in a temporary folder beside the target and renames it into
  place (`gan.fileio.atomic_dir`): a reader sees the old model or the new one, never half of one.
- `load_folder` validates config.json before any allocation, refuses pickle-only weights and a
  model.safetensors larger than its config implies, reads both files in one go (retrying once the
  folder is swapped under it) and loads the weights strictly. Nothing here runs code from the
  files it reads.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from .card import model_card
from .config import ConfigError, ModelConfig, TrainConfig
from .fileio import atomic_dir
from .models import Generator, ModelLoadError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# The files of a model folder, in the order a reader cares about them; only these are pushed/pulled.
MODEL_FILES = [
    "config.json",
    "model.safetensors",
    "README.md",
    "samples.png",
    "metrics.json",
    "training.json",
    "directions.safetensors",
]
# Largest size accepted for each file other than the weights (the weights' bound follows the config).
FILE_SIZE_LIMITS = {
    "config.json": 64 << 10,
    "README.md": 1 << 20,
    "samples.png": 16 << 20,
    "metrics.json": 1 << 20,
    "training.json": 1 << 20,
    "directions.safetensors": 4 << 20,
}
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
HF_DATASET_PREFIX = "hf://datasets/"


# ---------------------------------------------------------------------------------------------
# repo ids (syntax only: cards name Hub repos, and folders record where their data came from)


def short(s: Any, n: int = 80) -> str:
    s = str(s)
    return repr(s if len(s) <= n else s[:n] + "...")


def repo_id_problem(s: Any) -> str | None:
    """Why `s` is not a valid 'user/name' Hub repo id, or None when it is."""
    if not isinstance(s, str) or not s.strip():
        return "the repo id is empty: give 'user/name'"
    if s.startswith("hf_") and "/" not in s:
        return "that looks like an access token, not a repo id: give 'user/name' and put the token in HF_TOKEN"
    rule = "use 'user/name' with letters, digits, '-', '_' or '.'"
    if s.count("/") != 1:
        return f"{short(s)} is not a valid Hub repo id: {rule}"
    if not REPO_ID_RE.match(s):
        return f"{short(s)} is not a valid Hub repo id: {rule}, each part starting with a letter or digit"
    if "--" in s or ".." in s or s.endswith((".git", "-", ".")):
        return f"{short(s)} is not a valid Hub repo id: no '--' or '..', and no '-', '.' or '.git' at the end"
    return None


def hub_datasets(*sources: Any) -> list[str]:
    """Dataset repo ids named by data sources like 'hf://datasets/user/name[@rev]'."""
    out: list[str] = []
    for s in sources:
        if isinstance(s, str) and s.startswith(HF_DATASET_PREFIX):
            rid = s[len(HF_DATASET_PREFIX) :].split("@")[0].strip("/")
            if repo_id_problem(rid) is None and rid not in out:
                out.append(rid)
    return out


# ---------------------------------------------------------------------------------------------
# reading


def check_files(names: list[str], where: str) -> None:
    """A model folder has config.json + model.safetensors; pickle-only weights are refused."""
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


def parse_config(text: str | bytes, where: str) -> ModelConfig:
    """config.json text -> a validated ModelConfig (limits checked before any allocation)."""
    try:
        d = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"config.json in {where} is not valid JSON ({e})") from None
    if isinstance(d, dict):
        d = {k: v for k, v in d.items() if not k.startswith("_")}
    try:
        return ModelConfig.from_dict(d)
    except (ConfigError, TypeError) as e:
        raise ModelLoadError(f"{where} is not a GAN Lab model: its config.json does not fit ({e})") from None


def read_config(path: str | Path, where: str = "") -> ModelConfig:
    path = Path(path)
    where = where or str(path.parent)
    size = path.stat().st_size if path.is_file() else 0
    if size > FILE_SIZE_LIMITS["config.json"]:
        raise ModelLoadError(f"config.json in {where} is {size:,} bytes; a GAN Lab config is a few hundred")
    try:
        text = path.read_bytes()
    except OSError as e:
        raise ModelLoadError(f"config.json in {where} cannot be read ({e.strerror or e})") from None
    return parse_config(text, where)


def safetensors_bound(cfg: ModelConfig) -> int:
    """Largest model.safetensors a GAN Lab model of `cfg` can have (see Generator.safetensors_bound)."""
    return Generator.safetensors_bound(cfg)


def wait_for_folder(d: Path, timeout: float = 0.5) -> bool:
    """True once `d` is a folder. A folder that is missing while an atomic save (gan.fileio.atomic_dir)
    is swapping it is waited for, briefly: its temporary siblings `.<name>.<id>.tmpdir/.old` show it."""
    deadline = time.monotonic() + timeout
    while True:
        if d.is_dir():
            return True
        try:
            swapping = any(n.startswith(f".{d.name}.") for n in os.listdir(d.parent))
        except OSError:
            swapping = False
        if not swapping or time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def _read_pair(d: Path) -> tuple[bytes, bytes]:
    """config.json and model.safetensors of `d` read through one handle on the folder, so a folder
    replaced in between (an atomic save) gives both files of the old one or both of the new one."""
    last: OSError | None = None
    for attempt in range(5):
        try:
            fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as e:
            last = e
        else:
            try:
                with open(os.open("config.json", os.O_RDONLY, dir_fd=fd), "rb") as f:
                    cfg = f.read(FILE_SIZE_LIMITS["config.json"] + 1)
                with open(os.open("model.safetensors", os.O_RDONLY, dir_fd=fd), "rb") as f:
                    weights = f.read()
                return cfg, weights
            except FileNotFoundError as e:  # the old folder was deleted after the new one took its place
                last = e
            finally:
                os.close(fd)
        time.sleep(0.02 * (attempt + 1))
    raise ModelLoadError(f"folder {d} cannot be read ({getattr(last, 'strerror', None) or last})")


def load_folder(d: str | Path, *, where: str = "", device: str | torch.device = "cpu"):
    """A Generator from a model folder: eval mode, float32, strict. Raises ModelLoadError."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    d = Path(d)
    where = where or f"folder {d}"
    if not wait_for_folder(d):
        raise ModelLoadError(f"no model folder at {short(d)}")
    check_files(sorted(f.name for f in d.iterdir()), where)
    cfg_text, data = _read_pair(d)
    if len(cfg_text) > FILE_SIZE_LIMITS["config.json"]:
        raise ModelLoadError(f"config.json in {where} is over {FILE_SIZE_LIMITS['config.json']:,} bytes")
    cfg = parse_config(cfg_text, where)  # validated before any allocation
    bound = safetensors_bound(cfg)
    if len(data) > bound:
        raise ModelLoadError(
            f"model.safetensors in {where} is {len(data):,} bytes, but its config.json implies at most "
            f"{bound:,}; refusing a file that is not this model"
        )
    try:
        state = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise ModelLoadError(f"model.safetensors in {where} cannot be read ({type(e).__name__}: {e})") from None
    G = Generator(cfg)
    try:
        G.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelLoadError(
            f"{where}: model.safetensors does not match config.json ({str(e).splitlines()[0]})"
        ) from None
    return G.to(device).eval()


# ---------------------------------------------------------------------------------------------
# writing


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
    """Write a model folder atomically: config.json, model.safetensors (float32, CPU), README.md,
    samples.png, and training.json when `train_cfg` is given.

    The folder is built beside `path` and renamed onto it; an existing model folder at `path` is
    replaced as a whole (its directions, metrics and card belonged to the old weights). A folder
    holding anything other than model files is refused rather than replaced.
    """
    from .config import save_json
    from .sampling import make_grid, sample, save_png

    G = getattr(G, "_orig_mod", G)
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise FileExistsError(f"{path} is a file; give a folder for the model")
        other = sorted(p.name for p in path.iterdir() if p.name not in MODEL_FILES)
        if other:
            raise FileExistsError(
                f"{path} holds files that are not part of a model folder ({', '.join(other[:3])}); "
                "save the model to a new folder"
            )
    cpu = Generator(G.config)
    cpu.load_state_dict({k: v.detach().float().cpu() for k, v in G.state_dict().items()})
    cpu.eval()
    source = getattr(report, "source", None)
    card = model_card(G.config, train_cfg=train_cfg, data_source=source, steps=steps, metrics=metrics,
                      datasets=hub_datasets(source), extra=card_extra)  # fmt: skip
    with atomic_dir(path) as tmp:
        (tmp / "README.md").write_text(card, encoding="utf-8")
        cpu.save_pretrained(tmp)  # config.json + model.safetensors; keeps our README
        save_png(make_grid(sample(cpu, range(64))), tmp / "samples.png")
        if train_cfg is not None:
            save_json({"train_config": train_cfg.to_dict(), "steps": steps, "data": source}, tmp / "training.json")
    return path
