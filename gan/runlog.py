"""A run's event log: `log.jsonl` in the run folder, one JSON object per line.

    with RunLog(out / "log.jsonl") as log:
        for ev in fit(...):
            log.write(ev)                  # a dataclass event (or a dict); Samples are left out
    events = read_log(out / "log.jsonl")   # [{"event": "StepLog", "step": 1, ...}, ...]

The command line and the app write the same log, so a run started in one can be resumed and
plotted in the other. Lines are appended and flushed one by one; a reader skips a line cut off
by a crash.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

LOG_NAME = "log.jsonl"


def event_record(ev: Any) -> dict[str, Any]:
    """An event dataclass (or a dict) as a JSON-able dict with its type name under "event";
    arrays (a Samples grid) are left out."""
    if isinstance(ev, dict):
        return dict(ev)
    if not dataclasses.is_dataclass(ev):
        raise TypeError(f"a log event is a dataclass or a dict, got {type(ev).__name__}")
    fields = {f.name: getattr(ev, f.name) for f in dataclasses.fields(ev)}
    return {"event": type(ev).__name__, **{k: v for k, v in fields.items() if not isinstance(v, np.ndarray)}}


class RunLog:
    """Appends events to a log.jsonl (opened on the first write, flushed after every line)."""

    def __init__(self, path: str | Path, *, skip: tuple[str, ...] = ("Samples",)) -> None:
        self.path = Path(path)
        self.skip = skip  # event type names not written (Samples: the grid is a PNG, not a log line)
        self._f = None

    def write(self, ev: Any) -> bool:
        """Append one event; returns False when its type is skipped."""
        rec = event_record(ev)
        if rec.get("event") in self.skip:
            return False
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")
        self._f.write(json.dumps(rec, default=str) + "\n")
        self._f.flush()
        return True

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_log(path: str | Path, *, events: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The events of a log.jsonl as dicts, in order ([] when the file does not exist); `events`
    keeps only those type names. A line that is not a JSON object (cut off by a crash) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and (events is None or rec.get("event") in events):
            out.append(rec)
    return out
