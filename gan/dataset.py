"""What a data source gave: the images (ImageData) and the report of how they were read."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

N_EXAMPLES = 3


@dataclass
class DatasetReport:
    """What a source gave: images used, files skipped by reason, a few example names each."""

    source: str
    n_ok: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # used, but worth knowing (e.g. animated)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, name: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        ex = self.examples.setdefault(reason, [])
        if len(ex) < N_EXAMPLES:
            ex.append(name)

    def note(self, what: str, n: int = 1) -> None:
        self.notes[what] = self.notes.get(what, 0) + n

    @classmethod
    def merge(cls, reports: Sequence[DatasetReport], source: str) -> DatasetReport:
        """One report for several sources: counts added, a few examples kept per reason."""
        out = cls(source, n_ok=sum(r.n_ok for r in reports))
        for r in reports:
            for reason, n in r.skipped.items():
                out.skipped[reason] = out.skipped.get(reason, 0) + n
                ex = out.examples.setdefault(reason, [])
                ex.extend(r.examples.get(reason, [])[: N_EXAMPLES - len(ex)])
            for what, n in r.notes.items():
                out.note(what, n)
        return out

    def details(self) -> list[str]:
        """One line per skip reason (most frequent first, with example names), then the notes."""
        lines = [
            f"skipped {n}: {reason} (e.g. {', '.join(self.examples.get(reason, []))})"
            for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1])
        ]
        return lines + [f"note {n}: {what}" for what, n in sorted(self.notes.items())]

    def summary(self) -> str:
        head = f"{self.n_ok} images used from {self.source}; {self.n_skipped} files skipped"
        return "\n".join([head] + ["  " + line for line in self.details()])


@dataclass
class ImageData:
    """The training set: uint8 images (N, C, S, S) and the report of how they were read."""

    images: torch.Tensor
    report: DatasetReport

    def __len__(self) -> int:
        return self.images.shape[0]

    def fingerprint(self) -> str:
        """sha256 of shape + bytes, first 16 hex digits; stored in checkpoints."""
        h = hashlib.sha256(str(tuple(self.images.shape)).encode())
        h.update(self.images.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]
