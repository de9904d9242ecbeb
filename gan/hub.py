"""GAN Lab models on the Hugging Face Hub: load (from a folder or a repo id) and push.

- `load_model("user/name", revision=..., token=..., max_bytes=...)`: the repo's file list and
  sizes are checked through the Hub API before anything is downloaded: a GAN Lab model folder
  (safetensors, never pickle), at most a few small files, and a model.safetensors no larger than
  its config.json implies (nor than `max_bytes`). Then a cached download pinned to one commit.
- `push_to_hub(model_or_dir, "user/name")`: the model files and a card with Hub metadata.
- `load_hub_dataset` (gan.hubdata) and the folder code (gan.modelfolder) are re-exported here.

Tokens (`token=`): None = huggingface_hub's default (HF_TOKEN, then the stored login), False =
anonymous (what a public Space passes for its visitors' reads), or a token string.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from .card import CARD_METADATA, CARD_TAGS, model_card, usage
from .config import ConfigError, ModelConfig, TrainConfig
from .hubclient import (
    Fetch,
    HubError,
    Listing,
    Token,
    check_repo_id,
    clean_token,
    delete_lru,
    hub_call,
    is_repo_id,
    snapshot,
)
from .hubdata import load_hub_dataset, prune_dataset_cache
from .modelfolder import (
    FILE_SIZE_LIMITS,
    MODEL_FILES,
    ModelLoadError,
    check_files,
    hub_datasets,
    load_folder,
    parse_config,
    read_config,
    repo_id_problem,
    safetensors_bound,
    save_model,
    short,
    wait_for_folder,
)

__all__ = [
    "HubError", "MODEL_FILES", "ModelLoadError", "check_repo_id", "is_repo_id", "load_hub_dataset",
    "load_model", "model_card", "prune_dataset_cache", "prune_hub_cache", "push_to_hub", "resolve_model_dir",
    "save_model",
]  # fmt: skip

MAX_REPO_FILES = 64  # a GAN Lab model repo holds a handful; more and it is something else
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")

log = logging.getLogger(__name__)
ONNX_FILE = "model.onnx"  # pushed beside the weights (gan.onnx_export.ONNX_FILE)


# ---------------------------------------------------------------------------------------------
# loading


def resolve_model_dir(
    src: str | Path, *, revision: str | None = None, token: Token = None, max_bytes: int | None = None
) -> Path:
    """A local folder, or a Hub repo id downloaded into the huggingface_hub cache (checked first)."""
    p = Path(src).expanduser()
    if wait_for_folder(p):  # a folder being replaced by an atomic save is waited for, briefly
        check_files(sorted(f.name for f in p.iterdir()), f"folder {p}")
        return p
    s = str(src).strip()
    if p.exists():
        raise ModelLoadError(f"{s} is a file; give a model folder (config.json + model.safetensors)")
    if "/" not in s or s.startswith((".", "/", "~")):
        raise ModelLoadError(f"no model folder at {short(s)}, and it is not a Hub repo id (user/name)")
    problem = repo_id_problem(s)
    if problem:
        raise ModelLoadError(problem)
    return _download(s, revision=revision, token=token, max_bytes=max_bytes)


def _mb(n: int) -> str:
    return f"{n:,} bytes" if n < 1_000_000 else f"{n / 1e6:,.1f} MB ({n:,} bytes)"


def check_model_listing(files: Listing, fetch: Fetch, where: str, *, max_bytes: int | None = None) -> list[str]:
    """The model files to download from a repo listing, or ModelLoadError saying why not.

    Checked in this order, before any weight is downloaded: the repo is a GAN Lab model folder
    (safetensors, not pickle-only); it has at most MAX_REPO_FILES files; every file we would
    download has a known size within its limit; model.safetensors is within `max_bytes`; then
    config.json (a few hundred bytes) is fetched and validated, and model.safetensors must not be
    larger than the generator it describes (float32 tensors plus a small margin).
    """
    names = [f for f, _ in files]
    check_files(names, where)
    if len(files) > MAX_REPO_FILES:
        raise ModelLoadError(
            f"{where} has {len(files):,} files; a GAN Lab model has a handful (at most {MAX_REPO_FILES}), "
            "so it is not loaded"
        )
    sizes = dict(files)
    want = [f for f in MODEL_FILES if f in sizes]
    for name in want:
        size = sizes[name]
        if size is None:
            raise ModelLoadError(f"{where}: the Hub did not report the size of {name}, so it is not downloaded")
        cap = FILE_SIZE_LIMITS.get(name)
        if cap is not None and size > cap:
            raise ModelLoadError(f"{where}: {name} is {_mb(size)}; GAN Lab accepts at most {_mb(cap)} for it")
    weights = sizes["model.safetensors"] or 0
    if max_bytes is not None and weights > max_bytes:
        raise ModelLoadError(
            f"{where}: model.safetensors is {_mb(weights)}; the limit here is {_mb(max_bytes)} (GAN_MAX_MODEL_MB)"
        )
    cfg = read_config(fetch("config.json"), where)
    bound = safetensors_bound(cfg)
    if weights > bound:
        raise ModelLoadError(
            f"{where}: model.safetensors is {_mb(weights)}, but its config.json ({cfg.image_size}px, "
            f"widths G {cfg.g_width} / D {cfg.d_width}, z {cfg.z_dim}) implies at most {_mb(bound)}; "
            "not downloading it"
        )
    return want


def _download(repo_id: str, *, revision: str | None, token: Token, max_bytes: int | None) -> Path:
    """The model files of a Hub repo, in the huggingface_hub cache (downloaded once per commit)."""
    token = clean_token(token, ModelLoadError)

    def select(files: Listing, fetch: Fetch) -> list[str]:
        return check_model_listing(files, fetch, f"Hub repo {repo_id}", max_bytes=max_bytes)

    return snapshot(repo_id, repo_type="model", revision=revision, token=token, select=select, error=ModelLoadError)


def load_model(
    src: str | Path,
    *,
    revision: str | None = None,
    token: Token = None,
    device: str | torch.device = "cpu",
    max_bytes: int | None = None,
):
    """Load a Generator from a model folder or a Hub repo id; eval mode, float32.

    `revision` (Hub only) is a branch, tag or commit sha; `token`: None = huggingface_hub's default,
    False = anonymous; `max_bytes` caps the size of model.safetensors (besides the bound its
    config.json implies). The loaded model carries `.source` (what was asked for), `.folder` (the
    local files) and `.commit` (the Hub commit sha, or None).
    """
    d = resolve_model_dir(src, revision=revision, token=token, max_bytes=max_bytes)
    hub = d != Path(src).expanduser()
    where = f"Hub repo {src}" if hub else f"folder {d}"
    G = load_folder(d, where=where, device=device)
    G.source = str(src)
    G.folder = d
    G.commit = d.name if hub and _SHA_RE.match(d.name) else None
    return G


def _is_gan_config(path: Path) -> bool:
    """Whether a cached config.json is a GAN Lab config, read without touching its access time
    (which orders the cache for pruning)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs the file's owner
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        text = f.read(FILE_SIZE_LIMITS["config.json"] + 1)
    try:
        parse_config(text, str(path.parent))
    except ModelLoadError:
        return False
    return True


def prune_hub_cache(max_bytes: int, *, keep: Iterable[str] = ()) -> list[str]:
    """Bound the disk taken by GAN Lab models in the huggingface_hub cache.

    Deletes whole cached model repos, least recently used first (the newest access time of their
    files), until the GAN Lab models in the cache take at most `max_bytes`. Only repos whose
    cached config.json is a valid GAN Lab ModelConfig are counted or touched (the cache may hold
    other libraries' models); repo ids in `keep` (e.g. the models a Space ships or has loaded in
    memory) are never deleted. Returns the repo ids deleted, oldest first.
    """
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except (CacheNotFound, OSError):
        return []
    ours = []
    for repo in cache.repos:
        if repo.repo_type != "model":
            continue
        configs = [f.file_path for r in repo.revisions for f in r.files if f.file_name == "config.json"]
        is_gan = bool(configs) and all(_is_gan_config(c) for c in configs)
        if is_gan:
            ours.append(repo)
    return delete_lru(cache, ours, max_bytes, keep=keep, last_used=lambda r: r.last_accessed)


# ---------------------------------------------------------------------------------------------
# pushing


def _stage(model_or_dir: Any, stage: Path, token: Token, max_bytes: int | None = None) -> ModelConfig:
    """Copy (or write) the model files into `stage`; check their sizes and that they load.
    Returns the config. Only PUSH_FILES are staged; anything else is refused."""
    from .models import Generator
    from .sampling import make_grid, sample, save_png

    if isinstance(model_or_dir, torch.nn.Module):
        G = getattr(model_or_dir, "_orig_mod", model_or_dir)
        if not isinstance(G, Generator):
            raise HubError(f"push a Generator or a model folder, not a {type(G).__name__}")
        _check_push_size("model.safetensors", sum(4 * t.numel() for t in G.state_dict().values()), max_bytes)
        save_model(G, stage)
    elif isinstance(model_or_dir, (str, Path)):
        src = resolve_model_dir(model_or_dir, token=token, max_bytes=max_bytes)  # a folder, or a repo id to copy
        if (src / "model.safetensors").is_file():
            _check_push_size("model.safetensors", (src / "model.safetensors").stat().st_size, max_bytes)
        stage.mkdir()
        for name in MODEL_FILES:
            if (src / name).is_file():
                shutil.copyfile(src / name, stage / name)  # follows the cache's symlinks
    else:
        raise HubError(f"push a Generator, a model folder or a repo id, not a {type(model_or_dir).__name__}")
    _check_staged(stage, max_bytes)  # before the weights are even read
    G = load_model(stage)  # the same strict check a downloader will run
    from .onnx_export import OnnxExportError, write_onnx_into

    try:  # model.onnx: for the Hub page and browsers; loading never uses it (always from the weights)
        onnx = write_onnx_into(G, stage)
        size = onnx.stat().st_size
        if max_bytes is not None and size > max_bytes:  # the graph adds a little to the weights
            onnx.unlink()
            log.warning("pushing without model.onnx: it is %s, over the limit of %s", _mb(size), _mb(max_bytes))
    except OnnxExportError as e:
        log.warning("pushing without model.onnx: %s", e)
    if not (stage / "samples.png").exists():
        save_png(make_grid(sample(G, range(64))), stage / "samples.png")
    _check_staged(stage, max_bytes)
    return G.config


PUSH_FILES = (*MODEL_FILES, ONNX_FILE)  # all a push uploads; model.onnx is about the weights' size


def _check_push_size(name: str, size: int, max_bytes: int | None) -> None:
    cap = FILE_SIZE_LIMITS.get(name) if name not in ("model.safetensors", ONNX_FILE) else max_bytes
    if cap is not None and size > cap:
        env = " (GAN_MAX_MODEL_MB)" if name in ("model.safetensors", ONNX_FILE) else ""
        raise HubError(f"{name} is {_mb(size)}; the limit for pushing here is {_mb(cap)}{env}; nothing was uploaded")


def _check_staged(stage: Path, max_bytes: int | None) -> None:
    """Refuse a staged file that is not a model file, or larger than loading it back would allow
    (FILE_SIZE_LIMITS; `max_bytes` for model.safetensors and model.onnx)."""
    for p in sorted(stage.iterdir()):
        if p.name not in PUSH_FILES or not p.is_file() or p.is_symlink():
            raise HubError(f"{p.name} is not a GAN Lab model file; nothing was uploaded")
        _check_push_size(p.name, p.stat().st_size, max_bytes)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _write_card(stage: Path, cfg: ModelConfig, repo_id: str, datasets: list[str] | None) -> None:
    """README.md with the Hub metadata GAN Lab promises and `repo_id` in the usage snippet.

    An existing card keeps its text (training notes, metrics, a user's own sections); its
    metadata is completed and its usage lines are pointed at `repo_id`.
    """
    from huggingface_hub import ModelCard

    training = _read_json(stage / "training.json")
    train_cfg = training.get("train_config") if isinstance(training.get("train_config"), dict) else {}
    named = [d.removeprefix("hf://datasets/") for d in datasets or []]
    for d in named:
        if repo_id_problem(d):
            raise HubError(f"datasets: {repo_id_problem(d)}")
    extra = train_cfg.get("extra") if isinstance(train_cfg.get("extra"), dict) else {}
    known = hub_datasets(training.get("data"), extra.get("data"), *(f"hf://datasets/{d}" for d in named))
    path = stage / "README.md"
    if path.exists():
        card = ModelCard(path.read_text(encoding="utf-8"), ignore_metadata_errors=True)
    else:
        try:
            tcfg = TrainConfig.from_dict(train_cfg) if train_cfg else None
        except (ConfigError, TypeError):
            tcfg = None
        metrics = _read_json(stage / "metrics.json") or None
        card = ModelCard(model_card(cfg, train_cfg=tcfg, data_source=training.get("data"),
                                    steps=training.get("steps"), metrics=metrics, repo_id=repo_id))  # fmt: skip
    d = card.data
    d.library_name = CARD_METADATA["library_name"]
    d.pipeline_tag = CARD_METADATA["pipeline_tag"]
    d.license = d.license or CARD_METADATA["license"]
    tags = d.tags if isinstance(d.tags, list) else [d.tags] if d.tags else []
    d.tags = tags + [t for t in CARD_TAGS if t not in tags]
    have = d.datasets if isinstance(d.datasets, list) else [d.datasets] if d.datasets else []
    if have or known:
        d.datasets = have + [x for x in known if x not in have]
    text = card.text
    if "load_model(" in text:
        text = re.sub(r'(load_model|from_pretrained)\("[^"\n]*"\)', rf'\1("{repo_id}")', text)
        text = re.sub(r"--model \S+", f"--model {repo_id}", text)
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(usage(repo_id))
    if "samples.png" not in text:
        text = text.rstrip("\n") + "\n\n![samples](samples.png)\n"
    card.text = text
    path.write_text(str(card), encoding="utf-8")


def push_to_hub(
    model_or_dir: Any,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    datasets: list[str] | None = None,
    max_bytes: int | None = None,
) -> str:
    """Push a model to the Hub; returns the repo URL.

    `model_or_dir` is a Generator, a model folder, or the repo id of a GAN Lab model to copy. Only
    the model files are uploaded (config.json, model.safetensors, README.md, samples.png and, when
    present, metrics.json, training.json, directions.safetensors); model files of an earlier push
    that this model lacks are deleted in the same commit. The card gets the Hub metadata
    (library_name, pipeline_tag, license, tags, `datasets` plus any Hub dataset it was trained on)
    and `repo_id` in its usage lines. `token` defaults to HF_TOKEN (or the stored login). With
    `private=True` a new repo is created private, and an existing public repo is refused.
    `max_bytes` (a Space passes GAN_MAX_MODEL_MB, as for loading) caps model.safetensors and
    model.onnx; the other files have the caps loading applies (FILE_SIZE_LIMITS). A file over its
    cap raises HubError before the repo is created or anything is uploaded.
    """
    from huggingface_hub import HfApi, get_token

    repo_id = check_repo_id(repo_id)
    token = clean_token(token, HubError)
    if token is None and get_token() is None:
        raise HubError("pushing needs a Hugging Face token with write access: set HF_TOKEN or pass a token")
    what = f"Hub repo {repo_id}"
    with tempfile.TemporaryDirectory(prefix="gan-push-") as tmp:
        stage = Path(tmp) / "model"  # inside tmp: an atomic save's leftovers go with it
        cfg = _stage(model_or_dir, stage, token, max_bytes)
        _write_card(stage, cfg, repo_id, datasets)
        _check_staged(stage, max_bytes)  # the card, completed
        api = HfApi()
        call = dict(error=HubError, what=what, token=token, write=True)
        url = hub_call(lambda: api.create_repo(repo_id, token=token, private=private, exist_ok=True), **call)
        if private and not hub_call(lambda: api.model_info(repo_id, token=token).private, **call):
            raise HubError(
                f"{repo_id} already exists and is public; make it private in its settings on the Hub, "
                "or push without private"
            )
        hub_call(
            lambda: api.upload_folder(
                repo_id=repo_id,
                folder_path=stage,
                token=token,
                commit_message=commit_message or f"Upload GAN Lab model ({cfg.image_size}px, z {cfg.z_dim})",
                allow_patterns=list(PUSH_FILES),
                delete_patterns=list(PUSH_FILES),  # an old model.onnx never outlives its weights
            ),
            **call,
        )
    return str(url)
