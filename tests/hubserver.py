"""A small in-memory Hugging Face Hub API server, for tests that drive the real `huggingface_hub`.

The server speaks the routes the installed client (huggingface_hub 2.x) uses to create repos,
commit files ("regular" uploads only: no LFS, no Xet), read repo info and trees, and download
files, with the status codes and `X-Error-Code` / `X-Error-Message` headers the client maps to its
exceptions (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError, GatedRepoError,
HfHubHTTPError with 401/403). Pure stdlib; PyYAML is used for README front matter when present.

Pointing the client at it
-------------------------
`huggingface_hub` reads `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_DISABLE_XET`, ... once, when
`huggingface_hub.constants` is first imported; the module-level functions (`upload_file`,
`create_repo`, ... and `ModelCard.push_to_hub`) are bound to an `HfApi` built at import time.
Setting environment variables inside a test is therefore too late whenever any earlier test module
imported huggingface_hub. The robust way, used by `HubServer.patch_client`, is to patch the live
values at call time:

- `huggingface_hub.constants.ENDPOINT` and `HUGGINGFACE_CO_URL_TEMPLATE` (read at call time by
  `HfApi()`, `hf_hub_download`, `snapshot_download`, `PyTorchModelHubMixin`, repocard),
- `huggingface_hub.hf_api.api.endpoint` (the import-time singleton behind the module functions),
- `constants.HF_HUB_DISABLE_XET`, `HF_HUB_OFFLINE`, `HF_HUB_DISABLE_TELEMETRY` (no agent-registry
  fetch) and the cache/token paths (`HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN_PATH`, ...) to `home`,
- the environment too (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_DISABLE_XET=1`, no `HF_TOKEN`), for code that
  reads it lazily and for subprocesses.

Everything is restored on exit. Use it in a fixture::

    from hubserver import HubServer

    @pytest.fixture
    def hub(tmp_path):
        with HubServer(tokens={"hf_alice": "alice"}) as server:
            with server.patch_client(tmp_path / "hf_home"):
                yield server

    def test_push(hub):
        HfApi().create_repo("alice/gan", token="hf_alice")   # or HfApi(endpoint=hub.url)
        hub.add_files("bob/pickles", {"model.bin": b"..."})    # seed without the client
        assert hub.files("alice/gan")[".gitattributes"]

For a subprocess (e.g. `python -m gan push`), pass `env=hub.client_env(home, token="hf_alice")`:
there `HF_ENDPOINT` is set before the child imports huggingface_hub, which is all it needs.

Tokens are never logged: request logging is silenced, and `hub.requests` keeps only
(method, path, status). What left the server is counted: `hub.bytes_served` (every response
body), `hub.served` / `hub.content_bytes(repo_id)` / `hub.served_paths(repo_id)` (file content of
downloads), so a test can check that a client fetched nothing beyond what it needed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import socketserver
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

try:  # optional: parse README front matter like the Hub does (cardData, validate-yaml errors)
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with huggingface_hub's usual deps
    yaml = None

REPO_TYPES = ("model", "dataset", "space")
_API_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_YAML_BLOCK = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")
_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_OIDC_ID_TOKEN")
_CLEARED_VARS = (
    *_TOKEN_VARS,
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HUGGINGFACE_CO_STAGING",
    "HUGGINGFACE_HUB_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_ASSETS_CACHE",
)

# What the Hub writes as the first commit of every new repo.
GITATTRIBUTES = b"""*.bin filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob; the Hub's `oid` / `ETag` for a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _front_matter(text: str) -> dict[str, Any] | None:
    """The README's YAML metadata as a dict, None when absent; raises ValueError when invalid."""
    match = _YAML_BLOCK.search(text)
    if match is None:
        return None
    if yaml is None:
        return {}
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as err:
        raise ValueError(f"Invalid YAML in README front matter: {err}") from err
    if data is None or isinstance(data, dict):
        return data
    raise ValueError("README front matter must be a YAML mapping")


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    author: str
    timestamp: float
    files: dict[str, bytes]  # the full snapshot at this commit


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    gated: bool | str = False  # False, "auto" or "manual"
    granted: set[str] = field(default_factory=set)  # users allowed into a gated repo
    created: float = field(default_factory=time.time)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit oid
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]

    def resolve(self, revision: str) -> Commit | None:
        """A branch, a tag, a full commit sha or an unambiguous sha prefix (>= 7 chars)."""
        oid = self.branches.get(revision) or self.tags.get(revision)
        if oid is None and revision.startswith("refs/heads/"):
            oid = self.branches.get(revision[len("refs/heads/") :])
        if oid is None and re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [c for c in self.commits if c.startswith(revision)]
            oid = matches[0] if len(matches) == 1 else None
        return self.commits.get(oid) if oid else None


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers: dict[str, str] = extra.pop("headers", {})
        self.extra = extra  # more JSON fields for the body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: HubServer

    def server_bind(self) -> None:  # skip HTTPServer's socket.getfqdn(), slow on some hosts
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class HubServer:
    """In-memory Hub on 127.0.0.1. `tokens` maps token -> user name; `orgs` maps org -> members."""

    def __init__(
        self,
        tokens: Mapping[str, str] | None = None,
        orgs: Mapping[str, list[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.tokens = dict(tokens or {})
        self.orgs = {org: set(members) for org, members in (orgs or {}).items()}
        self.host, self.port = host, port
        self.url = ""
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status); never headers
        self.bytes_served = 0  # bytes of every response body sent (JSON and file content)
        self.served: list[tuple[str, str, str, int]] = []  # file content sent: (repo type, repo id, path, bytes)
        self.unhandled: list[str] = []  # "METHOD /path" the server has no route for
        self.errors: list[str] = []  # tracebacks of server-side bugs (answered with 500)
        self.lock = threading.RLock()
        self._counter = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        httpd = _Server((self.host, self.port), _Handler)
        httpd.hub = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hubserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- pointing huggingface_hub at the server -----------------------------------------------

    def client_env(
        self,
        home: str | os.PathLike[str],
        token: str | None = None,
        base: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """A complete environment for a subprocess that uses huggingface_hub against this server."""
        home = str(Path(home))
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _CLEARED_VARS}
        no_proxy = ",".join(p for p in (env.get("NO_PROXY"), "127.0.0.1", "localhost") if p)
        env.update(
            HF_ENDPOINT=self.url,
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HOME=home,
            HF_HUB_CACHE=os.path.join(home, "hub"),
            HF_XET_CACHE=os.path.join(home, "xet"),
            NO_PROXY=no_proxy,
        )
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    @contextlib.contextmanager
    def patch_client(self, home: str | os.PathLike[str], token: str | None = None) -> Iterator[None]:
        """Point the already-imported (or not yet imported) huggingface_hub at this server.

        Caches and token files go under `home`; `token` (optional) becomes the implicit token via
        `HF_TOKEN`. Restores every patched value and variable on exit.
        """
        # Import first, with the caller's environment, so that restoring leaves the defaults intact.
        from huggingface_hub import constants, hf_api

        home = str(Path(home))
        env = self.client_env(home, token=token)
        touched = set(_CLEARED_VARS) | {k for k in env if os.environ.get(k) != env[k]}
        saved_env = {k: os.environ.get(k) for k in touched}
        values = {
            "ENDPOINT": self.url,
            "HUGGINGFACE_CO_URL_TEMPLATE": self.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {self.host}),
            "HF_HUB_DISABLE_XET": True,
            "HF_HUB_OFFLINE": False,
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HOME": home,
            "HF_HUB_CACHE": os.path.join(home, "hub"),
            "HF_ASSETS_CACHE": os.path.join(home, "assets"),
            "HF_XET_CACHE": os.path.join(home, "xet"),
            "HF_TOKEN_PATH": os.path.join(home, "token"),
            "HF_STORED_TOKENS_PATH": os.path.join(home, "stored_tokens"),
        }
        saved = {name: getattr(constants, name) for name in values if hasattr(constants, name)}
        saved_endpoint = hf_api.api.endpoint
        try:
            for k in touched:
                if k in env:
                    os.environ[k] = env[k]
                else:
                    os.environ.pop(k, None)
            for name, value in values.items():
                setattr(constants, name, value)
            hf_api.api.endpoint = self.url
            yield
        finally:
            hf_api.api.endpoint = saved_endpoint
            for name in values:
                if name in saved:
                    setattr(constants, name, saved[name])
                else:
                    delattr(constants, name)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # ---- seeding and inspecting (no HTTP, no auth) --------------------------------------------

    def repo_url(self, repo_id: str, repo_type: str = "model") -> str:
        return f"{self.url}/{_URL_PREFIXES[repo_type]}{repo_id}"

    def create_repo(
        self,
        repo_id: str,
        repo_type: str = "model",
        private: bool = False,
        gated: bool | str = False,
    ) -> Repo:
        """Create an empty repo (one commit with `.gitattributes`), as the Hub does."""
        if repo_type not in REPO_TYPES or repo_id.count("/") != 1:
            raise ValueError(f"bad repo {repo_type}:{repo_id}")
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise ValueError(f"{repo_type} repo {repo_id} exists")
            repo = Repo(repo_type, repo_id, private=private, gated=gated)
            self.repos[(repo_type, repo_id)] = repo
            self.commit(repo, "main", {".gitattributes": GITATTRIBUTES}, (), "initial commit")
            return repo

    def add_files(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str],
        repo_type: str = "model",
        *,
        delete: tuple[str, ...] = (),
        private: bool | None = None,
        gated: bool | str | None = None,
        message: str = "Add files",
        revision: str = "main",
    ) -> str:
        """Commit `files` (path -> content) directly, creating the repo if needed; returns the sha."""
        with self.lock:
            repo = self.repos.get((repo_type, repo_id))
            if repo is None:
                repo = self.create_repo(repo_id, repo_type, private=bool(private), gated=gated or False)
            if private is not None:
                repo.private = private
            if gated is not None:
                repo.gated = gated
            blobs = {p: c.encode() if isinstance(c, str) else bytes(c) for p, c in files.items()}
            return self.commit(repo, revision, blobs, delete, message).oid

    def content_bytes(self, repo_id: str | None = None, repo_type: str | None = None) -> int:
        """Bytes of file content served by downloads (GET .../resolve/...), of one repo or all."""
        with self.lock:
            return sum(
                n
                for t, rid, _, n in self.served
                if (repo_id is None or rid == repo_id) and (repo_type is None or t == repo_type)
            )

    def served_paths(self, repo_id: str | None = None) -> list[str]:
        """The repo paths whose content was served (in order, repeated when served again)."""
        with self.lock:
            return [p for _, rid, p, _ in self.served if repo_id is None or rid == repo_id]

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        commit = self.repo(repo_id, repo_type).resolve(revision)
        if commit is None:
            raise KeyError(revision)
        return dict(commit.files)

    def commit(
        self,
        repo: Repo,
        branch: str,
        add: Mapping[str, bytes],
        delete: tuple[str, ...] | list[str] = (),
        title: str = "update",
        message: str = "",
        author: str | None = None,
    ) -> Commit:
        """Create a commit on `branch` (created at the new commit if missing)."""
        with self.lock:
            # a new branch starts from main
            parent = repo.commits.get(repo.branches.get(branch) or repo.branches.get("main", ""))
            files = dict(parent.files) if parent else {}
            for path in delete:
                files.pop(path, None)
            files.update(add)
            self._counter += 1
            digest = hashlib.sha1(f"{repo.repo_type}:{repo.repo_id}:{self._counter}:{title}".encode())
            for path in sorted(files):
                digest.update(f"{path}\0{git_blob_sha1(files[path])}\0".encode())
            commit = Commit(
                oid=digest.hexdigest(),
                parent=parent.oid if parent else None,
                title=title,
                message=message,
                author=author or repo.namespace,
                timestamp=time.time(),
                files=files,
            )
            repo.commits[commit.oid] = commit
            repo.branches[branch] = commit.oid
            return commit

    # ---- access rules -------------------------------------------------------------------------

    def can_write(self, namespace: str, user: str | None) -> bool:
        return user is not None and (user == namespace or user in self.orgs.get(namespace, ()))

    def can_read(self, repo: Repo, user: str | None) -> bool:
        return not repo.private or self.can_write(repo.namespace, user)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "hubserver/1"

    # Silence http.server's logging entirely: it would print request lines to stderr.
    def log_message(self, format: str, *args: Any) -> None:
        pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = lambda self: self._dispatch()

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    # ---- plumbing -----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        self.status = 500
        try:
            user = self._user()
            self._route(segments, user)
        except _HTTPError as err:
            self._error(err)
        except Exception:  # noqa: BLE001 - a server bug: answer 500, keep the traceback
            self.hub.errors.append(traceback.format_exc())
            self._error(_HTTPError(500, "hubserver internal error"))

    def _user(self) -> str | None:
        header = self.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        user = self.hub.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise _HTTPError(401, "Invalid credentials in Authorization header")
        return user

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json_body(self) -> dict[str, Any]:
        try:
            data = json.loads(self._body() or b"{}")
        except ValueError as err:
            raise _HTTPError(400, f"Invalid JSON body: {err}") from err
        if not isinstance(data, dict):
            raise _HTTPError(400, "JSON body must be an object")
        return data

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        self.status = status
        with self.hub.lock:  # recorded before the answer leaves, so a client never outruns it
            self.hub.requests.append((self.command, urlsplit(self.path).path, status))
            if self.command != "HEAD":
                self.hub.bytes_served += len(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, err: _HTTPError) -> None:
        safe = " ".join(err.message.encode("ascii", "replace").decode().split())[:500]
        headers = {"X-Error-Message": safe, **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._json({"error": err.message, **err.extra}, err.status, headers)

    def _flag(self, name: str) -> bool:
        return self.query.get(name, ["false"])[-1].lower() in ("1", "true")

    # ---- routing ------------------------------------------------------------------------------

    def _route(self, seg: list[str], user: str | None) -> None:
        method = self.command
        if seg[:1] == ["api"] and len(seg) >= 2:
            head = seg[1]
            if head == "whoami-v2" and method == "GET":
                return self._whoami(user)
            if head == "agent-harnesses" and method == "GET":
                return self._json({"standardEnvVars": [], "harnesses": {}})
            if head == "validate-yaml" and method == "POST":
                return self._validate_yaml()
            if seg[1:] == ["repos", "create"] and method == "POST":
                return self._create_repo(user)
            if seg[1:] == ["repos", "delete"] and method == "DELETE":
                return self._delete_repo(user)
            if head in _API_PLURALS and len(seg) >= 4:
                repo_type, repo_id, rest = _API_PLURALS[head], f"{seg[2]}/{seg[3]}", seg[4:]
                return self._repo_api(method, repo_type, repo_id, rest, user)
        elif method in ("GET", "HEAD"):
            repo_type = "model"
            if seg[:1] in (["datasets"], ["spaces"]):
                repo_type, seg = _API_PLURALS[seg[0]], seg[1:]
            if len(seg) >= 5 and seg[2] == "resolve":
                return self._resolve(repo_type, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]), user)
        self.hub.unhandled.append(f"{method} {urlsplit(self.path).path}")
        raise _HTTPError(404, f"hubserver has no route for {method} {urlsplit(self.path).path}")

    def _repo_api(self, method: str, repo_type: str, repo_id: str, rest: list[str], user: str | None):
        action = rest[0] if rest else ""
        arg = "/".join(rest[1:])
        if method == "GET" and action in ("", "revision"):
            return self._info(repo_type, repo_id, arg or "main", user)
        if method == "GET" and action == "tree" and rest[1:]:
            return self._tree(repo_type, repo_id, rest[1], "/".join(rest[2:]), user)
        if method == "POST" and action == "paths-info" and arg:
            return self._paths_info(repo_type, repo_id, arg, user)
        if method == "GET" and action == "commits" and arg:
            return self._commits(repo_type, repo_id, arg, user)
        if method == "GET" and action == "refs":
            return self._refs(repo_type, repo_id, user)
        if method == "POST" and action == "preupload" and arg:
            return self._preupload(repo_type, repo_id, arg, user)
        if method == "POST" and action == "commit" and arg:
            return self._commit(repo_type, repo_id, arg, user)
        if method in ("POST", "DELETE") and action in ("branch", "tag") and arg:
            return self._ref_write(method, action, repo_type, repo_id, arg, user)
        if method == "PUT" and action == "settings":
            return self._settings(repo_type, repo_id, user)
        self.hub.unhandled.append(f"{method} {urlsplit(self.path).path}")
        raise _HTTPError(404, f"hubserver has no route for {method} {urlsplit(self.path).path}")

    # ---- access helpers -----------------------------------------------------------------------

    def _readable(self, repo_type: str, repo_id: str, user: str | None) -> Repo:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or not self.hub.can_read(repo, user):
            # Like the Hub: 401 when anonymous (existence is not revealed), 404 otherwise.
            raise _HTTPError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def _writable(self, repo_type: str, repo_id: str, user: str | None) -> Repo:
        repo = self._readable(repo_type, repo_id, user)
        if user is None:
            raise _HTTPError(401, "You must be authenticated to write to this repo")
        if not self.hub.can_write(repo.namespace, user):
            raise _HTTPError(403, f"You don't have the rights to write to {repo_type} {repo_id}")
        return repo

    @staticmethod
    def _at(repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _check_branch(self, repo: Repo, revision: str) -> str:
        if self._flag("create_pr"):
            raise _HTTPError(400, "hubserver does not support pull requests (create_pr)")
        branch = revision.removeprefix("refs/heads/")
        if branch not in repo.branches:
            raise _HTTPError(404, f"Invalid rev id: {revision} is not a branch", "RevisionNotFound")
        return branch

    # ---- account and repo management ----------------------------------------------------------

    def _whoami(self, user: str | None) -> None:
        if user is None:
            raise _HTTPError(401, "Invalid credentials in Authorization header")
        orgs = [{"type": "org", "name": o, "fullname": o} for o, m in self.hub.orgs.items() if user in m]
        self._json(
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": f"{user}@example.com",
                "emailVerified": True,
                "isPro": False,
                "orgs": orgs,
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "test", "role": "write"},
                },
            }
        )

    def _create_repo(self, user: str | None) -> None:
        body = self._json_body()
        if user is None:
            raise _HTTPError(401, "You must be authenticated to create a repo")
        name, namespace = body.get("name"), body.get("organization") or user
        repo_type = body.get("type") or "model"
        if not name or repo_type not in REPO_TYPES or not re.fullmatch(r"[\w.-]+", name):
            raise _HTTPError(400, f"Invalid repo name or type: {namespace}/{name} ({repo_type})")
        if not self.hub.can_write(namespace, user):
            raise _HTTPError(403, f"You don't have the rights to create a {repo_type} under {namespace}")
        repo_id = f"{namespace}/{name}"
        url = self.hub.repo_url(repo_id, repo_type)
        private = body.get("visibility", "private" if body.get("private") else "public") == "private"
        with self.hub.lock:
            if (repo_type, repo_id) in self.hub.repos:
                raise _HTTPError(409, f"You already created this {repo_type} repo", url=url)
            self.hub.create_repo(repo_id, repo_type, private=private)
        self._json({"url": url, "name": repo_id, "id": hashlib.sha1(url.encode()).hexdigest()[:24]})

    def _delete_repo(self, user: str | None) -> None:
        body = self._json_body()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or user}/{body.get('name')}"
        self._writable(repo_type, repo_id, user)
        with self.hub.lock:
            del self.hub.repos[(repo_type, repo_id)]
        self._json({})

    def _settings(self, repo_type: str, repo_id: str, user: str | None) -> None:
        repo = self._writable(repo_type, repo_id, user)
        body = self._json_body()
        if "visibility" in body:
            repo.private = body["visibility"] == "private"
        if "private" in body:
            repo.private = bool(body["private"])
        if "gated" in body:
            repo.gated = body["gated"]
        self._json({})

    def _validate_yaml(self) -> None:
        body = self._json_body()
        try:
            meta = _front_matter(str(body.get("content", "")))
        except ValueError as err:
            raise _HTTPError(400, str(err), errors=[{"message": str(err)}]) from err
        warnings = []
        if not meta:
            warnings.append({"message": "empty or missing yaml metadata in repo card", "type": "warning"})
        self._json({"errors": [], "warnings": warnings})

    # ---- reading ------------------------------------------------------------------------------

    def _info(self, repo_type: str, repo_id: str, revision: str, user: str | None) -> None:
        repo = self._readable(repo_type, repo_id, user)
        commit = self._at(repo, revision)
        blobs = self._flag("blobs")
        siblings = []
        for path in sorted(commit.files):
            entry: dict[str, Any] = {"rfilename": path}
            if blobs:
                data = commit.files[path]
                entry.update(size=len(data), blobId=git_blob_sha1(data))
            siblings.append(entry)
        card: dict[str, Any] | None = None
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            card = _front_matter(commit.files.get("README.md", b"").decode())
        tags = (card or {}).get("tags") or []
        tags = [str(t) for t in ([tags] if isinstance(tags, str) else tags)]
        for key in ("library_name", "license"):
            if card and card.get(key):
                tags.append(f"{key}:{card[key]}" if key == "license" else str(card[key]))
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo.namespace,
            "sha": commit.oid,
            "lastModified": _iso(commit.timestamp),
            "createdAt": _iso(repo.created),
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": tags,
            "siblings": siblings,
            "usedStorage": sum(len(d) for d in commit.files.values()),
        }
        if card:
            info["cardData"] = card
        if repo_type == "model":
            info["modelId"] = repo_id
            if card and card.get("library_name"):
                info["library_name"] = card["library_name"]
            if card and card.get("pipeline_tag"):
                info["pipeline_tag"] = card["pipeline_tag"]
        self._json(info)

    def _entries(self, repo: Repo, commit: Commit, paths: list[str], expand: bool) -> list[dict]:
        """Tree entries (files and directories) for exact `paths` present at `commit`."""
        dirs = {str(p) for f in commit.files for p in Path(f).parents if str(p) != "."}
        out = []
        for path in paths:
            if path in commit.files:
                data = commit.files[path]
                entry = {
                    "type": "file",
                    "oid": git_blob_sha1(data),
                    "size": len(data),
                    "path": path,
                }
            elif path in dirs:
                inside = sorted((f, d) for f, d in commit.files.items() if f.startswith(path + "/"))
                listing = "".join(f"{f}\0{git_blob_sha1(d)}\n" for f, d in inside)
                oid = hashlib.sha1(f"tree:{path}\n{listing}".encode()).hexdigest()
                entry = {"type": "directory", "oid": oid, "size": 0, "path": path}
            else:
                continue
            if expand:
                last = self._last_commit(repo, commit, path)
                entry["lastCommit"] = {
                    "id": last.oid,
                    "title": last.title,
                    "date": _iso(last.timestamp),
                }
            out.append(entry)
        return out

    @staticmethod
    def _last_commit(repo: Repo, commit: Commit, path: str) -> Commit:
        def state(c: Commit) -> dict[str, bytes]:
            return {f: d for f, d in c.files.items() if f == path or f.startswith(path + "/")}

        current = commit
        while current.parent is not None:
            parent = repo.commits[current.parent]
            if state(parent) != state(current):
                return current
            current = parent
        return current

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str, user: str | None) -> None:
        repo = self._readable(repo_type, repo_id, user)
        commit = self._at(repo, revision)
        path = path.strip("/")
        prefix = path + "/" if path else ""
        below = [f for f in commit.files if f.startswith(prefix)]
        if path and not below:
            raise _HTTPError(404, f"Path {path} does not exist on {revision}", "EntryNotFound")
        names: set[str] = set()
        for f in below:
            parts = f[len(prefix) :].split("/")
            depth = len(parts) if self._flag("recursive") else 1
            names.update(prefix + "/".join(parts[: i + 1]) for i in range(depth))
        ordered = sorted(names, key=lambda p: (p in commit.files, p))  # directories first
        self._json(self._entries(repo, commit, ordered, self._flag("expand")))

    def _paths_info(self, repo_type: str, repo_id: str, revision: str, user: str | None) -> None:
        repo = self._readable(repo_type, repo_id, user)
        commit = self._at(repo, revision)
        raw = self._body().decode()
        if "json" in self.headers.get("Content-Type", ""):
            data = json.loads(raw or "{}")
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        else:
            form = parse_qs(raw)
            paths = form.get("paths", [])
            expand = form.get("expand", ["false"])[-1].lower() in ("1", "true")
        self._json(self._entries(repo, commit, [p.strip("/") for p in paths], expand))

    def _commits(self, repo_type: str, repo_id: str, revision: str, user: str | None) -> None:
        repo = self._readable(repo_type, repo_id, user)
        commit: Commit | None = self._at(repo, revision)
        out = []
        while commit is not None:
            out.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "authors": [{"user": commit.author}],
                    "date": _iso(commit.timestamp),
                }
            )
            commit = repo.commits.get(commit.parent or "")
        self._json(out)

    def _refs(self, repo_type: str, repo_id: str, user: str | None) -> None:
        repo = self._readable(repo_type, repo_id, user)

        def refs(kind: str, table: dict[str, str]) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": o} for n, o in table.items()]

        self._json(
            {
                "branches": refs("heads", repo.branches),
                "tags": refs("tags", repo.tags),
                "converts": [],
                "pullRequests": [],
            }
        )

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str, user: str | None) -> None:
        repo = self._readable(repo_type, repo_id, user)
        if repo.gated and user not in repo.granted and not self.hub.can_write(repo.namespace, user):
            status = 401 if user is None else 403
            raise _HTTPError(status, f"Access to {repo_id} is restricted", "GatedRepo")
        commit = self._at(repo, revision)
        if path not in commit.files:
            raise _HTTPError(
                404,
                "Entry not found",
                "EntryNotFound",
                headers={"X-Repo-Commit": commit.oid},
            )
        data = commit.files[path]
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_sha1(data)}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{Path(path).name}"',
        }
        status = 200
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and data:
            start = int(match.group(1) or 0)
            end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
            if start >= len(data) or start > end:
                raise _HTTPError(416, "Range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        if self.command == "GET":
            with self.hub.lock:
                self.hub.served.append((repo_type, repo_id, path, len(data)))
        self._send(status, data, headers, content_type="application/octet-stream")

    # ---- writing ------------------------------------------------------------------------------

    def _preupload(self, repo_type: str, repo_id: str, revision: str, user: str | None) -> None:
        repo = self._writable(repo_type, repo_id, user)
        body = self._json_body()
        commit = repo.resolve(self._check_branch(repo, revision))
        files = []
        for item in body.get("files", []):
            path = item["path"]
            existing = commit.files.get(path) if commit else None
            files.append(
                {
                    "path": path,
                    "uploadMode": "regular",  # never "lfs": content travels inside the commit
                    "shouldIgnore": False,
                    "oid": git_blob_sha1(existing) if existing is not None else None,
                }
            )
        self._json({"files": files, "commitOid": commit.oid if commit else None})

    def _commit(self, repo_type: str, repo_id: str, revision: str, user: str | None) -> None:
        repo = self._writable(repo_type, repo_id, user)
        branch = self._check_branch(repo, revision)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header: dict[str, Any] = {}
        add: dict[str, bytes] = {}
        delete: list[str] = []
        with self.hub.lock:
            current = repo.commits[repo.branches[branch]]
            files = set(current.files)
            for line in lines:
                key, value = line.get("key"), line.get("value") or {}
                if key == "header":
                    header = value
                elif key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise _HTTPError(400, f"Unsupported encoding {value.get('encoding')}")
                    add[value["path"]] = base64.b64decode(value["content"])
                    files.add(value["path"])
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise _HTTPError(404, "A file with this name doesn't exist", "EntryNotFound")
                    delete.append(value["path"])
                    add.pop(value["path"], None)
                    files.discard(value["path"])
                elif key == "deletedFolder":
                    prefix = value["path"].strip("/") + "/"
                    gone = [f for f in files if f.startswith(prefix)]
                    if not gone:
                        raise _HTTPError(404, "A folder with this name doesn't exist", "EntryNotFound")
                    for f in gone:
                        delete.append(f)
                        add.pop(f, None)
                        files.discard(f)
                else:
                    raise _HTTPError(400, f"hubserver accepts only regular files, got {key!r}")
            parent = header.get("parentCommit")
            if parent and parent != current.oid:
                raise _HTTPError(412, f"A commit has happened since {parent}; head is {current.oid}")
            summary = header.get("summary") or "update"
            commit = self.hub.commit(repo, branch, add, delete, summary, header.get("description", ""), user)
        url = f"{self.hub.repo_url(repo_id, repo_type)}/commit/{commit.oid}"
        self._json({"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": ""})

    def _ref_write(self, method: str, kind: str, repo_type: str, repo_id: str, name: str, user: str | None) -> None:
        repo = self._writable(repo_type, repo_id, user)
        body = self._json_body() if method == "POST" else {}
        with self.hub.lock:
            if kind == "branch":
                table, new_name, start = repo.branches, name, body.get("startingPoint") or "main"
            else:  # POST /tag/{revision} with {"tag": name}; DELETE /tag/{name}
                table, new_name, start = repo.tags, body.get("tag", name), name
            if method == "DELETE":
                if table.pop(name, None) is None:
                    raise _HTTPError(404, f"Invalid rev id: {name}", "RevisionNotFound")
                return self._json({})
            if new_name in table:
                raise _HTTPError(409, f"Reference {new_name} already exists")
            table[new_name] = self._at(repo, start).oid
        self._json({})
