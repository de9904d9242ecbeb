"""Hub dataset repos as training data: image files in any folder layout, or parquet files with an
image column. Reached through `gan.load_images("hf://datasets/user/name[@revision]", ...)` or
`load_hub_dataset` directly. Files are listed and checked against the limits before any download,
and only the files read are downloaded. `prune_dataset_cache` bounds the disk the downloads take.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .data import (
    HF_DATASET_PREFIX,
    DataError,
    DatasetReport,
    ImageData,
    Limits,
    _decode_all,
    _is_system,
    register_remote,
)
from .hubclient import Fetch, HubError, Listing, Token, check_repo_id, clean_token, delete_lru, is_hidden, snapshot

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
DATASET_MARK = "gan-lab-dataset"  # in a cached dataset repo's folder: GAN Lab read it; its mtime: the last time


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
    token: Token = None,
    limits: Limits | None = None,
    cache_max_bytes: int | None = None,
) -> ImageData:
    """Training images from a Hub dataset repo: image files in any folder layout, or parquet files
    with an image column (the `datasets` Image feature, or plain bytes).

    `repo_id` may be 'user/name', 'datasets/user/name' or 'hf://datasets/user/name[@revision]'.
    A repo with both uses the larger kind by bytes. The file count and total size are checked
    against `limits` before anything is downloaded; files are cached by huggingface_hub, and
    undecodable images are skipped and counted in the report. Access problems raise HubError,
    data problems DataError (both ValueError). Parquet needs pyarrow. `token`: None = huggingface_hub's
    default (HF_TOKEN, the stored login), False = anonymous, or a token string. `cache_max_bytes`:
    after the download, `prune_dataset_cache(cache_max_bytes, keep=[this repo])` (None: no pruning).
    """
    rid, rev_in_id = _parse_dataset_id(repo_id) if isinstance(repo_id, str) else (repo_id, None)
    rid = check_repo_id(rid)
    revision = revision or rev_in_id
    token = clean_token(token, HubError)
    limits = limits or Limits.from_env()
    chosen: dict[str, Any] = {}

    def select(files: Listing, fetch: Fetch) -> list[str]:
        files = [(f, s) for f, s in files if not (_is_system(f) or is_hidden(f))]  # never data, never counted
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
        unknown = [f for f, s in group if s is None]
        if unknown:
            raise DataError(f"dataset repo {rid}: the Hub did not report the size of {unknown[0]}; not downloading")
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

    local = snapshot(rid, repo_type="dataset", revision=revision, token=token, select=select, error=HubError)
    _mark_used(local)
    if cache_max_bytes is not None:
        prune_dataset_cache(cache_max_bytes, keep=[rid])
    report = DatasetReport(f"{HF_DATASET_PREFIX}{rid}" + (f"@{revision}" if revision else ""))
    if chosen["parquet"]:
        entries = (e for n in chosen["names"] for e in _parquet_entries(local / n, n, report))
    else:
        entries = ((n, (local / n).read_bytes()) for n in chosen["names"])
    return _decode_all(_capped(entries, limits.max_total_bytes, f"dataset repo {rid}"), image_size, channels,
                       limits, report)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the disk taken by Hub datasets


def _mark_used(local: Path) -> None:
    """Mark the cached repo of snapshot folder `local` as GAN Lab's, last used now."""
    if local.parent.name != "snapshots":
        return
    try:
        (local.parent.parent / DATASET_MARK).touch()
    except OSError:  # a read-only cache: nothing to prune there either
        pass


def prune_dataset_cache(max_bytes: int, *, keep: Iterable[str] = ()) -> list[str]:
    """Bound the disk taken by Hub datasets GAN Lab downloaded into the huggingface_hub cache.

    Deletes whole cached dataset repos, least recently used first (the last time GAN Lab read one,
    or the newest access time of its files), until they take at most `max_bytes`. Only dataset
    repos GAN Lab has read (marked by `load_hub_dataset`) are counted or touched; repo ids in
    `keep` (e.g. the one just loaded) are never deleted. Returns the repo ids deleted, oldest first.
    """
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except (CacheNotFound, OSError):
        return []

    def last_used(repo) -> float:
        try:
            marked = os.stat(repo.repo_path / DATASET_MARK).st_mtime
        except OSError:
            marked = 0.0
        return max(marked, repo.last_accessed)

    ours = [r for r in cache.repos if r.repo_type == "dataset" and (r.repo_path / DATASET_MARK).is_file()]
    return delete_lru(cache, ours, max_bytes, keep=keep, last_used=last_used)


register_remote(HF_DATASET_PREFIX, load_hub_dataset)  # gan.load_images("hf://datasets/...") reads through here
