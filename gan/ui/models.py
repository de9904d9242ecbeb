"""The model registry: the model picker's choices and a small cache of loaded generators.

Picker values: a shipped model's folder name under weights/, `trained:<run>` for a model trained
in this app (runs/app/<run>/model), or a Hub repo id (user/name) loaded through the Hub panel.
"""

from __future__ import annotations

import json
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch

import gan
from gan.hub import is_repo_id

from .common import AppError, Scratch, md_text

DEFAULT_MODEL = "cats64"  # the app opens on this shipped model when it is present
RUN_PREFIX = "trained:"  # picker values of models trained in this app: trained:<run name>
MODEL_CACHE_SIZE = 4  # loaded generators kept in memory (least recently used dropped first) ...
MODEL_CACHE_BYTES = 256_000_000  # ... and at most this many bytes of their weights
NO_MODEL = (
    "No model yet. Train one in the **Train** tab: the default run on the built-in shapes shows its first "
    "shapes after about 1,500 steps, a few minutes on a 2-core CPU. It appears in the model picker when "
    "it ends (or when you stop it)."
)


def is_model_dir(p: Path) -> bool:
    return (p / "config.json").is_file() and (p / "model.safetensors").is_file()


def model_bytes(G: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in G.state_dict().values())


class Models:
    """The model picker's choices and a small LRU cache of loaded generators (bounded in count and
    bytes). Hub models load with `token` (False on a Space: anonymous) within `max_bytes`; after each
    Hub download the huggingface_hub cache is pruned to `hub_cache_bytes` (models in memory kept)."""

    def __init__(
        self, weights_dir: Path, runs_dir: Path, scratch: Scratch, cache_size: int = MODEL_CACHE_SIZE, *,
        cache_bytes: int = MODEL_CACHE_BYTES, token: bool | None = None, max_bytes: int | None = None,
        hub_cache_bytes: int | None = None,
    ):  # fmt: skip
        self.weights_dir, self.runs_dir, self.scratch = weights_dir, runs_dir, scratch
        self.cache: OrderedDict[tuple, torch.nn.Module] = OrderedDict()
        self.cache_size, self.cache_bytes = cache_size, cache_bytes
        self.token, self.max_bytes, self.hub_cache_bytes = token, max_bytes, hub_cache_bytes
        self.zips: dict[tuple, str] = {}
        self.hub_ids: list[str] = []  # Hub repo ids loaded through the Hub panel, newest first
        self.visible: Callable[[str], bool] = lambda run: True  # a Space: only the viewer's own runs (Lab sets it)
        self.lock = threading.Lock()

    def shipped(self) -> list[str]:
        if not self.weights_dir.is_dir():
            return []
        names = sorted(
            p.name for p in self.weights_dir.iterdir() if not p.name.startswith(".") and p.is_dir() and is_model_dir(p)
        )
        return sorted(names, key=lambda n: n != DEFAULT_MODEL)  # the default first

    def trained(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        runs = [
            p
            for p in self.runs_dir.iterdir()
            if not p.name.startswith(".") and p.is_dir() and is_model_dir(p / "model") and self.visible(p.name)
        ]
        runs.sort(key=lambda p: (p / "model" / "model.safetensors").stat().st_mtime, reverse=True)
        return [p.name for p in runs]

    def choices(self) -> list[tuple[str, str]]:
        return (
            [(n, n) for n in self.shipped()]
            + [(f"{n} (trained here)", RUN_PREFIX + n) for n in self.trained()]
            + [(f"{r} (Hub)", r) for r in self.hub_ids]
        )

    def add_hub(self, repo_id: str) -> None:
        with self.lock:
            self.hub_ids = [repo_id] + [r for r in self.hub_ids if r != repo_id][:15]

    def default(self) -> str | None:
        ch = self.choices()
        return ch[0][1] if ch else None

    def folder(self, key: str | None) -> Path | str:
        """A picker value -> its model folder (or a Hub repo id, passed on to gan.load_model)."""
        key = (key or "").strip()
        if not key:
            if self.default() is None:
                raise AppError(NO_MODEL.replace("**", ""))
            raise AppError("No model selected: pick one in the model picker.")
        if key.startswith(RUN_PREFIX):
            name = key[len(RUN_PREFIX) :]
            d = self.runs_dir / name
            bad = "/" in name or "\\" in name or name.startswith(".")
            if bad or not is_model_dir(d / "model") or not self.visible(name):  # another visitor's: not there
                raise AppError(f"There is no trained model called {name!r} (its run may still be going).")
            return d / "model"
        if "/" not in key and "\\" not in key and not key.startswith("."):
            if is_model_dir(self.weights_dir / key):
                return self.weights_dir / key
        elif is_repo_id(key):
            return key  # a Hub repo id: gan.load_model downloads and validates it
        names = ", ".join(v for _, v in self.choices()) or "none yet"
        raise AppError(f"Unknown model {key!r}. Available: {names}.")

    def get(self, key: str | None, reload: bool = False) -> torch.nn.Module:
        """The generator for a picker value; `reload` fetches a Hub repo's newest commit again."""
        src = self.folder(key)
        ident = (str(src), (Path(src) / "model.safetensors").stat().st_mtime) if isinstance(src, Path) else (src, 0)
        with self.lock:
            if reload:
                self.cache.pop(ident, None)
            if ident in self.cache:
                self.cache.move_to_end(ident)
                return self.cache[ident]
        if isinstance(src, Path):
            G = gan.load_model(src)
        else:  # outside the lock: a Hub download may take a while
            G = gan.load_model(src, token=self.token, max_bytes=self.max_bytes)
        with self.lock:
            self.cache[ident] = G
            while len(self.cache) > 1 and (
                len(self.cache) > self.cache_size or sum(map(model_bytes, self.cache.values())) > self.cache_bytes
            ):
                self.cache.popitem(last=False)
            in_memory = [k[0] for k in self.cache if k[1] == 0]  # Hub repo ids (folders carry an mtime)
        if not isinstance(src, Path) and self.hub_cache_bytes is not None:
            gan.hub.prune_hub_cache(self.hub_cache_bytes, keep=in_memory)
        return G

    def loaded(self, key: str | None) -> bool:
        """Whether a Hub repo id is loaded already (a folder is always at hand)."""
        try:
            src = self.folder(key)
        except AppError:
            return False
        if isinstance(src, Path):
            return True
        with self.lock:
            return (src, 0) in self.cache

    def info(self, key: str | None) -> str:
        """One line of Markdown about a model from its config.json and training.json (no weights
        loaded). What a visitor chose (a typed picker value in an error, the data a run trained on,
        e.g. an uploaded zip's name) is escaped (md_text); a Hub id here passed is_repo_id (letters,
        digits, '-', '_', '.', one '/'), safe in a code span."""
        try:
            src = self.folder(key)
        except AppError as e:
            return md_text(e)
        if not isinstance(src, Path):
            with self.lock:
                G = self.cache.get((src, 0))
            if G is None:
                return f"Hub model `{src}` (downloaded when first used)."
            c = G.config
            commit = f" · commit {md_text(G.commit[:8])}" if getattr(G, "commit", None) else ""
            kind = "RGB" if c.channels == 3 else "grayscale"
            return f"Hub model `{src}` · {c.image_size}×{c.image_size} {kind} · z {c.z_dim}{commit}"
        try:
            cfg = json.loads((src / "config.json").read_text())
            parts = [
                f"{cfg.get('image_size')}×{cfg.get('image_size')} {'RGB' if cfg.get('channels') == 3 else 'grayscale'}",
                f"z {cfg.get('z_dim')}",
                f"widths G {cfg.get('g_width')} / D {cfg.get('d_width')}",
            ]
            if cfg.get("g_sle") is True:
                parts.append("skip-layer excitation")
            tj = src / "training.json"
            if tj.is_file():
                t = json.loads(tj.read_text())
                if t.get("steps") is not None:
                    parts.append(f"{t['steps']} steps" + (f" on {md_text(t['data'])}" if t.get("data") else ""))
            return " · ".join(parts)
        except (OSError, ValueError):
            return "(config.json unreadable)"

    def zip(self, key: str | None) -> str | None:
        """The model folder as a zip in the scratch folder (made once per version of the weights)."""
        try:
            src = self.folder(key)
        except AppError:
            return None
        if not isinstance(src, Path):
            return None
        ident = (str(src), (src / "model.safetensors").stat().st_mtime)
        with self.lock:
            z = self.zips.get(ident)
            if z and Path(z).is_file():
                return z
        name = src.parent.name if src.name == "model" else src.name
        out = self.scratch.path(f"{name}.zip")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(src.iterdir()):
                if f.is_file() and not f.name.endswith(".tmp"):
                    zf.write(f, f"{name}/{f.name}")
        with self.lock:
            self.zips[ident] = str(out)
        return str(out)
