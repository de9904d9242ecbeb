"""Atomic file and folder writes, and the cache folder for derived files (bounded by `prune_cache`).

Every file GAN Lab writes that someone may read at the same time (checkpoints, model folders,
images, JSON) goes through here: written under a temporary name in the same folder, flushed,
then renamed over the target, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

CACHE_ENV = "GAN_CACHE_DIR"


def _tmp_name(path: Path, suffix: str = "") -> Path:
    # unique per writer, hidden, in the target's folder (a rename never crosses file systems)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}")


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> Path:
    """Write `data` to `path` atomically (temporary name in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path for a writer that wants a file name (PyAV, safetensors);
    renamed onto `path` when the block ends without an error, removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path, suffix)
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; when the block ends without an error it
    replaces `path` (the old folder, if any, is moved aside first and then deleted). A reader
    sees the old folder or the new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmpdir")
    tmp.mkdir()
    try:
        yield tmp
        if path.exists() and _exchange(tmp, path):  # one atomic swap: tmp now holds the old folder
            # a reader may still be inside the old folder (by handle): it is deleted a minute later
            os.replace(tmp, path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.{int(time.time())}.old"))
            _sweep_old(path)
            return
        old = None
        if path.exists():  # no renameat2 here: two renames, a moment with no folder at `path`
            old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.old")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


_RENAME_EXCHANGE = 2  # linux/fs.h
OLD_GRACE_S = 60  # replaced folders are kept this long for readers that were inside them


def _sweep_old(path: Path) -> None:
    """Delete replaced versions of `path` older than OLD_GRACE_S."""
    now = time.time()
    for old in path.parent.glob(f".{path.name}.*.old"):
        try:
            stamp = int(old.name.rsplit(".", 2)[-2])
        except ValueError:
            stamp = 0
        if now - stamp > OLD_GRACE_S:
            shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux renameat2(RENAME_EXCHANGE); False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0


def cache_dir(sub: str = "") -> Path:
    """GAN Lab's folder for derived files (measured precision, directions, ONNX exports):
    $GAN_CACHE_DIR, else $XDG_CACHE_HOME/gan-lab, else ~/.cache/gan-lab. Created on demand."""
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "gan-lab"
    )
    d = Path(base) / sub if sub else Path(base)
    d.mkdir(parents=True, exist_ok=True)
    return d


TMP_GRACE_S = 3600  # a temporary file this young may be being written: never pruned


def _cache_entries(root: Path) -> dict[tuple[Path, str], list[Path]]:
    """The files under `root`, grouped by folder and stem (an ONNX export and its manifest are one entry)."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            groups.setdefault((p.parent, name.split(".")[0] or name), []).append(p)
    return groups


def prune_cache(max_bytes: int, *, keep: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """Bound the disk taken by GAN Lab's cache folder (`cache_dir()`: ONNX exports, directions, the
    measured precision): delete entries least recently used first (the newest access or change
    time of their files) until the folder holds at most `max_bytes`. An entry is a file, with the
    files beside it that share its stem (x.onnx and x.json); entries at or under a path in `keep`
    (e.g. the exports being served) and temporary files younger than TMP_GRACE_S (being written)
    are never deleted. Returns the files deleted, oldest entry first.
    """
    root = cache_dir()
    kept = [Path(k).resolve() for k in keep]
    now = time.time()
    entries = []
    total = 0
    for files in _cache_entries(root).values():
        stats = []
        for f in files:
            try:
                stats.append((f, f.lstat()))
            except OSError:  # deleted meanwhile
                continue
        if not stats:
            continue
        size = sum(st.st_size for _, st in stats)
        used = max(max(st.st_atime, st.st_mtime) for _, st in stats)
        total += size
        writing = any(f.name.startswith(".") and ".tmp" in f.name and now - st.st_mtime < TMP_GRACE_S
                      for f, st in stats)  # fmt: skip
        held = any(f.resolve() == k or k in f.resolve().parents for f, _ in stats for k in kept)
        if not (writing or held):
            entries.append((used, size, [f for f, _ in stats]))
    deleted: list[Path] = []
    for _, size, files in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        for f in files:
            with contextlib.suppress(OSError):
                f.unlink()
                deleted.append(f)
        total -= size
    return deleted
