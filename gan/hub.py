"""Model folders and the Hugging Face Hub.

A model folder is `config.json` + `model.safetensors` (+ `README.md` card, `samples.png`,
`metrics.json`, `training.json`, `directions.safetensors`). It is written with huggingface_hub's
`PyTorchModelHubMixin` and read back by `load_model`, which takes a local folder or a Hub repo id,
refuses pickle-only weights, validates config.json before any allocation and loads strictly.
Nothing here runs code from the files it reads.

The Hub side goes through huggingface_hub only (`HfApi`, `snapshot_download`):

- `load_model("user/name", revision=...)`: cached download of the model files, pinned to one commit.
- `push_to_hub(model_or_dir, "user/name")`: the model files and a card with Hub metadata.
- `load_hub_dataset("user/name", ...)`: image files or parquet image columns of a dataset repo.

Tokens: an explicit `token=` or, when it is None, whatever huggingface_hub finds by itself
(`HF_TOKEN`, then the stored login). A token is never put in a message, a log line or a return
value, and errors are raised outside the handler of the library's exception, so no traceback
carries the failed request (and its Authorization header) along.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, ModelConfig, TrainConfig, save_json
from .data import DataError, DatasetReport, ImageData, Limits, _decode_all, _is_system

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
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
CARD_TAGS = ["gan", "dcgan", "pytorch", "unconditional-image-generation", "gan-lab"]
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class ModelLoadError(ValueError):
    """A model folder or repo cannot be loaded; the message says why and what to do."""


class HubError(ValueError):
    """A Hub operation failed (bad repo id, token, access, network); never contains the token."""


# ---------------------------------------------------------------------------------------------
# the model card


def _usage(name: str) -> list[str]:
    return [
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
    ]


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
        *[f"- {t}" for t in CARD_TAGS],
    ]
    if datasets:
        meta += ["datasets:", *[f"- {d}" for d in datasets]]
    meta.append("---")
    body = [
        "",
        f"# DCGAN {cfg.image_size}x{cfg.image_size} ({'RGB' if cfg.channels == 3 else 'grayscale'})",
        "",
        "A DCGAN generator trained with GAN Lab "
        f"({cfg.g_style} generator, widths G {cfg.g_width} / D {cfg.d_width}, z {cfg.z_dim}).",
        "",
        "![samples](samples.png)",
        "",
        *_usage(repo_id or "path/to/model"),
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
    if "limits" not in extra.lower():
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
                      datasets=_hub_datasets(source), extra=card_extra)  # fmt: skip
    tmp = path / "README.md.tmp"
    tmp.write_text(card)
    tmp.replace(path / "README.md")
    cpu.save_pretrained(path)  # config.json + model.safetensors; keeps our README
    save_png(make_grid(sample(cpu, range(64))), path / "samples.png")
    if train_cfg is not None:
        save_json({"train_config": train_cfg.to_dict(), "steps": steps, "data": source}, path / "training.json")
    return path


def _hub_datasets(*sources: Any) -> list[str]:
    """Dataset repo ids named by data sources like 'hf://datasets/user/name[@rev]'."""
    out: list[str] = []
    for s in sources:
        if isinstance(s, str) and s.startswith("hf://datasets/"):
            rid = s[len("hf://datasets/") :].split("@")[0].strip("/")
            if _repo_id_problem(rid) is None and rid not in out:
                out.append(rid)
    return out


# ---------------------------------------------------------------------------------------------
# repo ids, tokens and the library's errors


def _short(s: Any, n: int = 80) -> str:
    s = str(s)
    return repr(s if len(s) <= n else s[:n] + "...")


def _repo_id_problem(s: Any) -> str | None:
    """Why `s` is not a valid 'user/name' Hub repo id, or None when it is."""
    if not isinstance(s, str) or not s.strip():
        return "the repo id is empty: give 'user/name'"
    if s.startswith("hf_") and "/" not in s:
        return "that looks like an access token, not a repo id: give 'user/name' and put the token in HF_TOKEN"
    rule = "use 'user/name' with letters, digits, '-', '_' or '.'"
    if s.count("/") != 1:
        return f"{_short(s)} is not a valid Hub repo id: {rule}"
    if not REPO_ID_RE.match(s):
        return f"{_short(s)} is not a valid Hub repo id: {rule}, each part starting with a letter or digit"
    if "--" in s or ".." in s or s.endswith((".git", "-", ".")):
        return f"{_short(s)} is not a valid Hub repo id: no '--' or '..', and no '-', '.' or '.git' at the end"
    return None


def check_repo_id(repo_id: str) -> str:
    """`repo_id` stripped of spaces, or HubError saying what is wrong with it (no network)."""
    s = repo_id.strip() if isinstance(repo_id, str) else repo_id
    problem = _repo_id_problem(s)
    if problem:
        raise HubError(problem)
    return s


def is_repo_id(s: str) -> bool:
    return _repo_id_problem(s) is None and not os.path.exists(s)


def _clean_token(token: str | None, error: type[Exception]) -> str | None:
    """'' / None -> None (huggingface_hub then uses HF_TOKEN or the stored login); strip spaces.

    A token with inner spaces or control characters would make the HTTP library raise an error
    that quotes the header value, i.e. the token, so it is refused here without being shown.
    """
    if token is None:
        return None
    if not isinstance(token, str):
        raise error("the token must be a string")
    t = token.strip()
    if not t:
        return None
    if any(c.isspace() or not c.isprintable() for c in t):
        raise error("the token contains spaces or control characters; copy it again from your Hub settings")
    return t


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _is_network_error(e: BaseException) -> bool:
    # httpx (huggingface_hub 1.x) or httpx2 (2.x) TransportError, OfflineModeIsEnabled, socket errors
    return isinstance(e, (ConnectionError, TimeoutError)) or any(
        c.__name__ == "TransportError" for c in type(e).__mro__
    )


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _explain(e: Exception, what: str, *, revision: str | None, write: bool) -> str | None:
    """A clear message for an error of huggingface_hub (or its HTTP library), None if unknown."""
    from huggingface_hub.errors import (
        DisabledRepoError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(e, GatedRepoError):
        return f"{what} is gated: accept its conditions on the Hub, then use a token (HF_TOKEN) of that account"
    if isinstance(e, RevisionNotFoundError):
        return f"revision {_short(revision)} does not exist in {what}"
    if isinstance(e, RepositoryNotFoundError):
        return f"{what} was not found on the Hub (if it is private, set HF_TOKEN or pass a token that can read it)"
    if isinstance(e, DisabledRepoError):
        return f"{what} has been disabled on the Hub"
    if isinstance(e, OfflineModeIsEnabled):
        return f"HF_HUB_OFFLINE is set, and {what} is not in the local cache"
    if isinstance(e, LocalEntryNotFoundError):
        return f"could not reach the Hub at {_endpoint()}, and {what} is not in the local cache"
    if isinstance(e, HFValidationError):
        return f"not a valid Hub repo id or revision for {what}"
    if isinstance(e, HfHubHTTPError):
        code = getattr(getattr(e, "response", None), "status_code", None)
        if code == 401:
            need = "a token with write access" if write else "a valid token"
            return f"the Hub refused the token (401 Unauthorized) for {what}: set HF_TOKEN or pass {need}"
        if code == 403:
            if write:
                ns = what.split()[-1].split("/")[0]
                return (
                    f"the token has no write access to the namespace '{ns}' (403 Forbidden): push to your own "
                    "user name or an organization you belong to, with a token that has the write role"
                )
            return f"not allowed to read {what} (403 Forbidden)"
        detail = (getattr(e, "server_message", None) or "").strip().splitlines()
        return f"the Hub answered {code} for {what}" + (f": {detail[0][:200]}" if detail else "")
    if _is_network_error(e):
        return (
            f"could not reach the Hub at {_endpoint()} ({type(e).__name__}); check the network "
            "connection (and HF_ENDPOINT or proxy settings)"
        )
    return None


def _hub_call(
    fn: Callable[[], Any],
    *,
    error: type[Exception],
    what: str,
    token: str | None,
    revision: str | None = None,
    write: bool = False,
    offline: Callable[[], Any] | None = None,
) -> Any:
    """fn() with the library's errors turned into `error(clear message)`.

    With `offline`, a network failure calls offline() instead (e.g. the local cache).
    """
    go_offline = False
    try:
        return fn()
    except (ModelLoadError, HubError, DataError, ConfigError):
        raise
    except Exception as e:
        if offline is not None and _is_network_error(e):
            go_offline, msg = True, ""
        else:
            msg = _explain(e, what, revision=revision, write=write)
            if msg is None:
                if not (token and token in str(e)):
                    raise
                msg = f"{type(e).__name__} while talking to the Hub about {what} (details hidden: they held the token)"
    # Raised here, outside the `except`, so the new error has no __context__ holding the request.
    if go_offline:
        return offline()  # type: ignore[misc]
    raise error(_scrub(msg, token))


def _snapshot(
    repo_id: str,
    *,
    repo_type: str,
    revision: str | None,
    token: str | None,
    select: Callable[[list[tuple[str, int | None]]], list[str]],
    error: type[Exception],
) -> Path:
    """Download the files that `select` picks from the repo's listing, pinned to one commit.

    `select` sees (path, size) pairs before anything is downloaded, so it can refuse a repo (no
    safetensors, only pickles, too big). When the Hub cannot be reached, the cached snapshot of
    `revision` (default: main) is used instead, checked by the same `select`.
    """
    from huggingface_hub import HfApi, snapshot_download

    what = f"{'dataset repo' if repo_type == 'dataset' else 'Hub repo'} {repo_id}"
    call = dict(error=error, what=what, token=token, revision=revision)

    def from_cache() -> Path:
        local = _cached_snapshot(repo_id, repo_type, revision)
        if local is None:
            from huggingface_hub import constants

            why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"could not reach the Hub at {_endpoint()}"
            raise error(f"{why}, and {what}{f' at {revision}' if revision else ''} is not in the local cache")
        got = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
        select([(f, (local / f).stat().st_size) for f in got])
        return local

    info = _hub_call(
        lambda: HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision, token=token, files_metadata=True),
        offline=from_cache,
        **call,
    )
    if isinstance(info, Path):  # served from the cache
        return info
    files = select([(s.rfilename, s.size) for s in info.siblings or []])
    # exact names; for many files, their suffixes (fnmatch over files x patterns would crawl)
    patterns = [glob.escape(f) for f in files] if len(files) <= 64 else sorted({f"*{Path(f).suffix}" for f in files})
    # By the asked revision, not info.sha: then the cache records the branch (refs/main) and
    # serves it offline later. Should the branch move in between, the check below sees it.
    local = Path(
        _hub_call(
            lambda: snapshot_download(
                repo_id,
                repo_type=repo_type,
                revision=revision,
                token=token,
                allow_patterns=patterns,
            ),
            **call,
        )
    )
    if local.name != info.sha:
        got = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
        select([(f, (local / f).stat().st_size) for f in got])
    return local


def _cached_snapshot(repo_id: str, repo_type: str, revision: str | None) -> Path | None:
    """The snapshot folder of `revision` (a branch, tag or commit sha; default main) in the
    huggingface_hub cache, even a partial one (e.g. a Space's `preload_from_hub` of two files)."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)  # its default is bound at import time
    except (CacheNotFound, OSError):
        return None
    rev = revision or "main"
    for repo in cache.repos:
        if repo.repo_id == repo_id and repo.repo_type == repo_type:
            for r in repo.revisions:
                if rev in r.refs or (len(rev) >= 7 and r.commit_hash.startswith(rev)):
                    return Path(r.snapshot_path)
    return None


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


def _read_config(path: Path, where: str = "") -> ModelConfig:
    where = where or str(path.parent)
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"config.json in {where} is not valid JSON ({e})") from None
    if isinstance(d, dict):
        d = {k: v for k, v in d.items() if not k.startswith("_")}
    try:
        return ModelConfig.from_dict(d)
    except (ConfigError, TypeError) as e:
        raise ModelLoadError(f"{where} is not a GAN Lab model: its config.json does not fit ({e})") from None


def resolve_model_dir(src: str | Path, *, revision: str | None = None, token: str | None = None) -> Path:
    """A local folder, or a Hub repo id downloaded into the huggingface_hub cache."""
    p = Path(src).expanduser()
    if p.is_dir():
        _check_files(sorted(f.name for f in p.iterdir()), f"folder {p}")
        return p
    s = str(src).strip()
    if p.exists():
        raise ModelLoadError(f"{s} is a file; give a model folder (config.json + model.safetensors)")
    if "/" not in s or s.startswith((".", "/", "~")):
        raise ModelLoadError(f"no model folder at {_short(s)}, and it is not a Hub repo id (user/name)")
    problem = _repo_id_problem(s)
    if problem:
        raise ModelLoadError(problem)
    return _download(s, revision=revision, token=token)


def _download(repo_id: str, *, revision: str | None, token: str | None) -> Path:
    """The model files of a Hub repo, in the huggingface_hub cache (downloaded once per commit)."""
    token = _clean_token(token, ModelLoadError)

    def select(files: list[tuple[str, int | None]]) -> list[str]:
        names = [f for f, _ in files]
        _check_files(names, f"Hub repo {repo_id}")
        return [f for f in names if f in MODEL_FILES]

    return _snapshot(repo_id, repo_type="model", revision=revision, token=token, select=select, error=ModelLoadError)


def load_model(
    src: str | Path,
    *,
    revision: str | None = None,
    token: str | None = None,
    device: str | torch.device = "cpu",
):
    """Load a Generator from a model folder or a Hub repo id; eval mode, float32.

    `revision` (Hub only) is a branch, tag or commit sha. The loaded model carries `.source`
    (what was asked for), `.folder` (the local files) and `.commit` (the Hub commit sha, or None).
    """
    from .models import Generator

    d = resolve_model_dir(src, revision=revision, token=token)
    where = f"Hub repo {src}" if d != Path(src).expanduser() else f"folder {d}"
    cfg = _read_config(d / "config.json", where)  # validated before any allocation
    try:
        G = Generator._from_pretrained(
            model_id=str(d), revision=None, cache_dir=None, force_download=False,
            local_files_only=True, token=None, map_location=str(device), config=cfg,
        )  # fmt: skip
    except ConfigError as e:
        raise ModelLoadError(f"{where}: {e}") from None
    except Exception as e:  # a corrupt safetensors header raises the library's own errors
        raise ModelLoadError(f"model.safetensors in {where} cannot be read ({type(e).__name__}: {e})") from None
    G.source = str(src)
    G.folder = d
    G.commit = d.name if where.startswith("Hub") and _SHA_RE.match(d.name) else None
    return G


# ---------------------------------------------------------------------------------------------
# pushing


def _stage(model_or_dir: Any, stage: Path, token: str | None) -> ModelConfig:
    """Copy (or write) the model files into `stage`; check that they load. Returns the config."""
    from .models import Generator
    from .sampling import make_grid, sample, save_png

    if isinstance(model_or_dir, torch.nn.Module):
        G = getattr(model_or_dir, "_orig_mod", model_or_dir)
        if not isinstance(G, Generator):
            raise HubError(f"push a Generator or a model folder, not a {type(G).__name__}")
        save_model(G, stage)
    elif isinstance(model_or_dir, (str, Path)):
        src = resolve_model_dir(model_or_dir, token=token)  # a folder, or a repo id to copy
        for name in MODEL_FILES:
            if (src / name).is_file():
                shutil.copyfile(src / name, stage / name)  # follows the cache's symlinks
    else:
        raise HubError(f"push a Generator, a model folder or a repo id, not a {type(model_or_dir).__name__}")
    G = load_model(stage)  # the same strict check a downloader will run
    if not (stage / "samples.png").exists():
        save_png(make_grid(sample(G, range(64))), stage / "samples.png")
    return G.config


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
        if _repo_id_problem(d):
            raise HubError(f"datasets: {_repo_id_problem(d)}")
    extra = train_cfg.get("extra") if isinstance(train_cfg.get("extra"), dict) else {}
    known = _hub_datasets(training.get("data"), extra.get("data"), *(f"hf://datasets/{d}" for d in named))
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
    d.library_name = "gan-lab"
    d.pipeline_tag = "unconditional-image-generation"
    d.license = d.license or "mit"
    tags = d.tags if isinstance(d.tags, list) else [d.tags] if d.tags else []
    d.tags = tags + [t for t in CARD_TAGS if t not in tags]
    have = d.datasets if isinstance(d.datasets, list) else [d.datasets] if d.datasets else []
    if have or known:
        d.datasets = have + [x for x in known if x not in have]
    text = card.text
    if "load_model(" in text:
        text = re.sub(r'load_model\("[^"\n]*"\)', f'load_model("{repo_id}")', text)
        text = re.sub(r"--model \S+", f"--model {repo_id}", text)
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(_usage(repo_id))
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
) -> str:
    """Push a model to the Hub; returns the repo URL.

    `model_or_dir` is a Generator, a model folder, or the repo id of a GAN Lab model to copy. Only
    the model files are uploaded (config.json, model.safetensors, README.md, samples.png and, when
    present, metrics.json, training.json, directions.safetensors); model files of an earlier push
    that this model lacks are deleted in the same commit. The card gets the Hub metadata
    (library_name, pipeline_tag, license, tags, `datasets` plus any Hub dataset it was trained on)
    and `repo_id` in its usage lines. `token` defaults to HF_TOKEN (or the stored login). With
    `private=True` a new repo is created private, and an existing public repo is refused.
    """
    from huggingface_hub import HfApi, get_token

    repo_id = check_repo_id(repo_id)
    token = _clean_token(token, HubError)
    if token is None and get_token() is None:
        raise HubError("pushing needs a Hugging Face token with write access: set HF_TOKEN or pass a token")
    what = f"Hub repo {repo_id}"
    with tempfile.TemporaryDirectory(prefix="gan-push-") as tmp:
        stage = Path(tmp)
        cfg = _stage(model_or_dir, stage, token)
        _write_card(stage, cfg, repo_id, datasets)
        api = HfApi()
        call = dict(error=HubError, what=what, token=token, write=True)
        url = _hub_call(lambda: api.create_repo(repo_id, token=token, private=private, exist_ok=True), **call)
        if private and not _hub_call(lambda: api.model_info(repo_id, token=token).private, **call):
            raise HubError(
                f"{repo_id} already exists and is public; make it private in its settings on the Hub, "
                "or push without private"
            )
        _hub_call(
            lambda: api.upload_folder(
                repo_id=repo_id,
                folder_path=stage,
                token=token,
                commit_message=commit_message or f"Upload GAN Lab model ({cfg.image_size}px, z {cfg.z_dim})",
                allow_patterns=MODEL_FILES,
                delete_patterns=MODEL_FILES,
            ),
            **call,
        )
    return str(url)


# ---------------------------------------------------------------------------------------------
# Hub datasets as training data


def _parse_dataset_id(s: str) -> tuple[str, str | None]:
    """'hf://datasets/user/name@rev', 'datasets/user/name' or 'user/name' -> (repo id, revision)."""
    s = s.strip()
    for prefix in ("hf://", "datasets/"):
        s = s.removeprefix(prefix)
    rid, _, rev = s.partition("@")
    return rid.strip("/"), (rev or None)


def _image_column(schema: Any) -> str | None:
    """The image column of a parquet schema: the `datasets` Image feature (struct{bytes, path}),
    else any struct with binary `bytes`, else a binary column (preferring one named like an image)."""
    import pyarrow as pa

    def is_binary(t: Any) -> bool:
        return pa.types.is_binary(t) or pa.types.is_large_binary(t)

    meta = (schema.metadata or {}).get(b"huggingface")
    if meta:
        try:
            feats = json.loads(meta).get("info", {}).get("features", {})
        except (ValueError, AttributeError):
            feats = {}
        for name, feat in feats.items() if isinstance(feats, dict) else ():
            if isinstance(feat, dict) and feat.get("_type") == "Image" and name in schema.names:
                return name
    structs, binaries = [], []
    for f in schema:
        if pa.types.is_struct(f.type):
            fields = {f.type.field(i).name: f.type.field(i).type for i in range(f.type.num_fields)}
            if "bytes" in fields and is_binary(fields["bytes"]):
                structs.append(f.name)
        elif is_binary(f.type):
            binaries.append(f.name)
    for group in (structs, binaries):
        for name in group:
            if name.lower() in ("image", "img", "images", "picture", "photo"):
                return name
        if group:
            return group[0]
    return None


def _parquet_entries(path: Path, name: str, report: DatasetReport) -> Iterator[tuple[str, bytes]]:
    """(file[row], image bytes) of the image column, read 256 rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        col = _image_column(pf.schema_arrow)
    except (pa.ArrowException, OSError, ValueError):
        report.skip("unreadable parquet file", name)
        return
    if col is None:
        report.skip("parquet file without an image column (binary, or the datasets Image feature)", name)
        return
    row = 0
    try:
        for batch in pf.iter_batches(columns=[col], batch_size=256):
            arr = batch.column(0)
            if pa.types.is_struct(arr.type):
                blobs = arr.field("bytes").to_pylist()
                paths = arr.field("path").to_pylist() if arr.type.get_field_index("path") >= 0 else [None] * len(arr)
                valid = arr.is_valid().to_pylist()
            else:
                blobs, paths, valid = arr.to_pylist(), [None] * len(arr), [True] * len(arr)
            for data, ref, ok in zip(blobs, paths, valid):
                cell = f"{name}[{row}]"
                row += 1
                if not ok or data is None:
                    reason = "image stored as a path or URL, not as bytes" if ok and ref else "empty image cell"
                    report.skip(reason, cell)
                    continue
                yield cell, data
    except (pa.ArrowException, OSError) as e:
        report.skip(f"parquet file broken after row {row} ({type(e).__name__})", name)


def _capped(entries: Iterator[tuple[str, bytes]], limit: int, what: str) -> Iterator[tuple[str, bytes]]:
    """The entries, until their bytes add up to more than `limit` (parquet sizes are compressed)."""
    total = 0
    for name, data in entries:
        total += len(data)
        if total > limit:
            raise DataError(f"{what} holds over {limit:,} bytes of images; the limit (GAN_MAX_TOTAL_BYTES)")
        yield name, data


def load_hub_dataset(
    repo_id: str,
    image_size: int,
    channels: int,
    *,
    revision: str | None = None,
    token: str | None = None,
    limits: Limits | None = None,
) -> ImageData:
    """Training images from a Hub dataset repo: image files in any folder layout, or parquet files
    with an image column (the `datasets` Image feature, or plain bytes).

    `repo_id` may be 'user/name', 'datasets/user/name' or 'hf://datasets/user/name[@revision]'.
    A repo with both uses the larger kind by bytes. The file count and total size are checked
    against `limits` before anything is downloaded; files are cached by huggingface_hub, and
    undecodable images are skipped and counted in the report. Access problems raise HubError,
    data problems DataError (both ValueError). Parquet needs pyarrow.
    """
    rid, rev_in_id = _parse_dataset_id(repo_id) if isinstance(repo_id, str) else (repo_id, None)
    rid = check_repo_id(rid)
    revision = revision or rev_in_id
    token = _clean_token(token, HubError)
    limits = limits or Limits.from_env()
    chosen: dict[str, Any] = {}

    def select(files: list[tuple[str, int | None]]) -> list[str]:
        files = [(f, s) for f, s in files if not _is_system(f)]
        images = [(f, s) for f, s in files if f.lower().endswith(IMAGE_SUFFIXES)]
        parquet = [(f, s) for f, s in files if f.lower().endswith(".parquet")]
        if not images and not parquet:
            raise DataError(f"dataset repo {rid} has no image files ({', '.join(IMAGE_SUFFIXES)}) and no parquet files")

        def size(group: list[tuple[str, int | None]]) -> int:
            return sum(s or 0 for _, s in group) or len(group)

        use_parquet = size(parquet) > size(images)
        group = parquet if use_parquet else images
        if len(group) > limits.max_files:
            raise DataError(f"dataset repo {rid} has {len(group):,} files; the limit is {limits.max_files:,}")
        total = sum(s or 0 for _, s in group)
        if total > limits.max_total_bytes:
            raise DataError(
                f"dataset repo {rid} holds {total:,} bytes of data; the limit is {limits.max_total_bytes:,} "
                "(GAN_MAX_TOTAL_BYTES)"
            )
        if use_parquet:
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError:
                raise DataError(
                    f"dataset repo {rid} stores its images in parquet files; reading them needs pyarrow "
                    "(pip install pyarrow)"
                ) from None
        chosen.update(parquet=use_parquet, names=sorted(f for f, _ in group))
        return chosen["names"]

    local = _snapshot(rid, repo_type="dataset", revision=revision, token=token, select=select, error=HubError)
    report = DatasetReport(f"hf://datasets/{rid}" + (f"@{revision}" if revision else ""))
    if chosen["parquet"]:
        entries = (e for n in chosen["names"] for e in _parquet_entries(local / n, n, report))
    else:
        entries = ((n, (local / n).read_bytes()) for n in chosen["names"])
    return _decode_all(_capped(entries, limits.max_total_bytes, f"dataset repo {rid}"), image_size, channels,
                       limits, report)  # fmt: skip
