"""Who may stop or resume the training run: the visitor who started it.

On a public Space strangers share one server and its one training job. The job remembers who
started it in two ways: the Gradio session of the starting request (an API client keeps it for
its whole `Client`), and a run key, a random secret handed to the starting page, which keeps it
in the browser's localStorage (`gr.BrowserState`), so that a reload reattaches. Stop and Resume
need either one. Locally (no SPACE_ID) there is one user, and everyone may.

Only a hash of the key is kept on the server; the key itself is never logged or shown to others.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from .common import AppError


class NotOwner(AppError):
    """Someone other than the run's starter asked to stop or resume it."""


def new_key() -> str:
    return secrets.token_urlsafe(18)


SECRET_NAME = ".browser-state-secret"  # in the runs folder: it lives exactly as long as the runs


def browser_secret(runs_dir: Path) -> str:
    """The secret Gradio encrypts the page's run key with in localStorage. Gradio's default is new at
    every start, and a restarted app could not read the keys of the runs it still has: this one is
    kept (mode 0600) in the runs folder."""
    path = Path(runs_dir) / SECRET_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = path.read_text().strip()
        if len(text) >= 32:
            return text
        path.unlink(missing_ok=True)  # empty or cut short (a crash while writing it): a new one
        return browser_secret(runs_dir)
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Owner:
    session: str | None  # Gradio session hash of the request that started the run
    key_digest: str | None  # sha256 of the run key given to the starting page

    @classmethod
    def start(cls, session: str | None) -> tuple[Owner, str]:
        """A new owner for a run started from `session`, and the key to hand to that page."""
        key = new_key()
        return cls(session, _digest(key)), key

    def matches(self, session: str | None, key: str | None) -> bool:
        if session and self.session and hmac.compare_digest(session, self.session):
            return True
        return bool(key and self.key_digest and hmac.compare_digest(_digest(key), self.key_digest))


def check_control(owner: Owner | None, session: str | None, key: str | None, *, shared: bool, limits: str) -> None:
    """Raise NotOwner unless this visitor may stop/resume the run. `shared`: a public server
    (a Space); `limits` tells others when the run ends by itself."""
    if not shared or owner is None or owner.matches(session, key):
        return
    raise NotOwner(f"This run was started by another visitor; only they can stop or resume it. {limits}")


# ---- who is looking -------------------------------------------------------------------------------

_VIEWER: ContextVar[str | None] = ContextVar("gan_lab_viewer", default=None)


def current_session() -> str | None:
    """The Gradio session of the request being served (any event: Gradio sets it for every call), or the
    one set with `viewing` (tests, endpoint functions called directly); None outside a request."""
    session = _VIEWER.get()
    if session is not None:
        return session
    from gradio.context import LocalContext  # gan.ui may import gradio; the request of this call

    return getattr(LocalContext.request.get(None), "session_hash", None)


@contextlib.contextmanager
def viewing(session: str | None) -> Iterator[None]:
    """Serve what follows as `session` would be served (what a Space shows it of others' runs)."""
    token = _VIEWER.set(session)
    try:
        yield
    finally:
        _VIEWER.reset(token)
