"""Talking to the Hugging Face Hub: errors, repo ids, tokens, listings and pinned downloads.

Everything here goes through huggingface_hub (`HfApi`, `hf_hub_download`), imported on use.
Downloads are exact: the files a caller picked from the Hub's listing, by name, never by pattern.
Used by `gan.hub` (models) and `gan.hubdata` (datasets).

Tokens: `token=None` lets huggingface_hub find one by itself (`HF_TOKEN`, then the stored login);
`token=False` sends none (anonymous: public repos only, whatever the environment holds); a string
is used as given. A token is never put in a message, a log line or a return value, and errors are
raised outside the handler of the library's exception, so no traceback carries the failed request
(and its Authorization header) along.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from .config import GanError
from .fileio import atomic_write_text
from .modelfolder import repo_id_problem, short

Token = str | bool | None
Listing = list[tuple[str, int | None]]  # (path in the repo, size in bytes or None)
Fetch = Callable[[str], Path]  # one file of the listed commit -> its local path


class HubError(GanError):
    """A Hub operation failed (bad repo id, token, access, network); never contains the token."""


# ---------------------------------------------------------------------------------------------
# repo ids, tokens and the library's errors


def check_repo_id(repo_id: str) -> str:
    """`repo_id` stripped of spaces, or HubError saying what is wrong with it (no network)."""
    s = repo_id.strip() if isinstance(repo_id, str) else repo_id
    problem = repo_id_problem(s)
    if problem:
        raise HubError(problem)
    return s


def is_repo_id(s: str) -> bool:
    """True for a valid 'user/name' that is not also a local path."""
    return repo_id_problem(s) is None and not os.path.exists(s)


def clean_token(token: Token, error: type[Exception]) -> Token:
    """None / '' -> None (huggingface_hub then uses HF_TOKEN or the stored login); False -> False
    (anonymous); a string is stripped of spaces.

    A token with inner spaces or control characters would make the HTTP library raise an error
    that quotes the header value, i.e. the token, so it is refused here without being shown.
    """
    if token is None or isinstance(token, bool):
        return token
    if not isinstance(token, str):
        raise error("the token must be a string (or False for anonymous access)")
    t = token.strip()
    if not t:
        return None
    if any(c.isspace() or not c.isprintable() for c in t):
        raise error("the token contains spaces or control characters; copy it again from your Hub settings")
    return t


def _scrub(text: str, token: Token) -> str:
    return text.replace(token, "***") if isinstance(token, str) and token else text


def _is_network_error(e: BaseException) -> bool:
    # httpx (huggingface_hub 1.x) or httpx2 (2.x) TransportError, OfflineModeIsEnabled, socket errors
    return isinstance(e, (ConnectionError, TimeoutError)) or any(
        c.__name__ == "TransportError" for c in type(e).__mro__
    )


def endpoint() -> str:
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
        return f"revision {short(revision)} does not exist in {what}"
    if isinstance(e, RepositoryNotFoundError):
        return f"{what} was not found on the Hub (if it is private, set HF_TOKEN or pass a token that can read it)"
    if isinstance(e, DisabledRepoError):
        return f"{what} has been disabled on the Hub"
    if isinstance(e, OfflineModeIsEnabled):
        return f"HF_HUB_OFFLINE is set, and {what} is not in the local cache"
    if isinstance(e, LocalEntryNotFoundError):
        return f"could not reach the Hub at {endpoint()}, and {what} is not in the local cache"
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
            f"could not reach the Hub at {endpoint()} ({type(e).__name__}); check the network "
            "connection (and HF_ENDPOINT or proxy settings)"
        )
    return None


def hub_call(
    fn: Callable[[], Any],
    *,
    error: type[Exception],
    what: str,
    token: Token,
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
    except GanError:  # ours, said for the user already
        raise
    except Exception as e:
        if offline is not None and _is_network_error(e):
            go_offline, msg = True, ""
        else:
            msg = _explain(e, what, revision=revision, write=write)
            if msg is None:
                if not (isinstance(token, str) and token and token in str(e)):
                    raise
                msg = f"{type(e).__name__} while talking to the Hub about {what} (details hidden: they held the token)"
    # Raised here, outside the `except`, so the new error has no __context__ holding the request.
    if go_offline:
        return offline()  # type: ignore[misc]
    raise error(_scrub(msg, token))


def is_hidden(path: str) -> bool:
    """A repo path never downloaded: a hidden part ('.git…', '.cache/…', '._x') or inside __MACOSX/."""
    return any(p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(path).parts)


def snapshot(
    repo_id: str,
    *,
    repo_type: str,
    revision: str | None,
    token: Token,
    select: Callable[[Listing, Fetch], list[str]],
    error: type[Exception],
) -> Path:
    """Download exactly the files that `select` picks from the repo's listing, pinned to one commit.

    The listing is the Hub API's recursive tree of the resolved commit, (path, size) pairs without
    hidden entries (a path part starting with '.') and `__MACOSX/`, which are never downloaded.
    `select(listing, fetch)` sees it before anything is downloaded, so it can refuse a repo (no
    safetensors, only pickles, too many or too large files); `fetch(name)` downloads one small
    file of the same commit when the decision needs its content (a model's config.json says how
    large its weights may be). Then each picked file, and nothing else, is downloaded by name
    (`hf_hub_download` at the commit's sha). When the Hub cannot be reached, the cached snapshot
    of `revision` (default: main) is used instead, checked by the same `select`.
    """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.hf_api import RepoFile

    what = f"{'dataset repo' if repo_type == 'dataset' else 'Hub repo'} {repo_id}"
    call = dict(error=error, what=what, token=token, revision=revision)

    def from_cache() -> Path:
        local = cached_snapshot(repo_id, repo_type, revision)
        if local is None:
            from huggingface_hub import constants

            why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"could not reach the Hub at {endpoint()}"
            raise error(f"{why}, and {what}{f' at {revision}' if revision else ''} is not in the local cache")
        _check_local(local, select)
        return local

    api = HfApi()
    info = hub_call(
        lambda: api.repo_info(repo_id, repo_type=repo_type, revision=revision, token=token),
        offline=from_cache,
        **call,
    )
    if isinstance(info, Path):  # served from the cache
        return info
    sha = info.sha

    def tree() -> Listing:
        entries = api.list_repo_tree(repo_id, repo_type=repo_type, revision=sha, token=token, recursive=True)
        return [(e.path, e.size) for e in entries if isinstance(e, RepoFile) and not is_hidden(e.path)]

    listing: Listing = hub_call(tree, **call)

    def fetch(name: str) -> Path:
        return Path(
            hub_call(lambda: hf_hub_download(repo_id, name, repo_type=repo_type, revision=sha, token=token), **call)
        )

    files = select(listing, fetch)
    if not files:
        raise error(f"{what}: nothing to download")
    sizes = dict(listing)
    for name in files:
        if name not in sizes:  # a hidden or unlisted name: the selector's mistake, never downloaded
            raise error(f"{what}: {name} is not among the files the Hub lists for download")
        if sizes[name] is None:
            raise error(f"{what}: the Hub did not report the size of {name}, so it is not downloaded")
    local = _download_all(files, fetch)
    _record_ref(local, revision or "main", sha)  # the cache then serves this revision offline
    return local


def _download_all(files: list[str], fetch: Fetch, workers: int = 8) -> Path:
    """Each file by name (a few at a time); the local snapshot folder that holds them."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(files)))) as pool:
        futures = [pool.submit(fetch, name) for name in files]
        try:
            paths = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return paths[0].parents[len(PurePosixPath(files[0]).parts) - 1]


def _record_ref(local: Path, revision: str, sha: str) -> None:
    """Point the cache's refs/<revision> at `sha` (what snapshot_download does), so that a later
    offline load of the branch or tag finds this snapshot."""
    parts = PurePosixPath(revision).parts
    if revision == sha or local.parent.name != "snapshots" or not parts or parts[0] == "/" or ".." in parts:
        return  # a sha needs no ref; a name that would climb out of refs/ is never written
    try:
        atomic_write_text(local.parent.parent / "refs" / revision, sha)
    except OSError:  # a read-only cache (e.g. a Space's preloaded one) still serves by sha
        pass


def _check_local(local: Path, select: Callable[[Listing, Fetch], list[str]]) -> None:
    got = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    listing = [(f, os.path.getsize(local / f)) for f in got if not is_hidden(f)]
    select(listing, lambda name: local / name)


def cached_snapshot(repo_id: str, repo_type: str, revision: str | None) -> Path | None:
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


def delete_lru(cache: Any, repos: list, max_bytes: int, *, keep: Iterable[str], last_used: Callable) -> list[str]:
    """Delete whole cached repos of `repos` (from huggingface_hub's scan_cache_dir), least recently
    used first, until they take at most `max_bytes`; ids in `keep` stay. Returns the ids deleted."""
    total = sum(r.size_on_disk for r in repos)
    kept = set(keep)
    deleted: list[str] = []
    for repo in sorted(repos, key=last_used):
        if total <= max_bytes:
            break
        if repo.repo_id in kept:
            continue
        cache.delete_revisions(*(r.commit_hash for r in repo.revisions)).execute()
        total -= repo.size_on_disk
        deleted.append(repo.repo_id)
    return deleted
