"""`python -m gan eval`: compare a model's samples with real images; record the result.

Samples use seeds 0..n-1 (the same images each time); the real images are n drawn with a fixed
seed. Nothing is written unless asked (`write=True`, `--write` in the CLI): then the metrics go
into the model folder as metrics.json and into the card's Metrics table.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import torch

from .config import save_json
from .data import load_images
from .fileio import atomic_write_text
from .hub import load_model
from .metrics import evaluate
from .sampling import sample


def evaluate_model(
    model: str | Path,
    data: str | Path,
    *,
    n: int = 2048,
    inception_weights: str | None = None,
    write: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """SWD (always) and FID/KID (with Inception weights) of `n` samples against `n` real images."""
    if not 16 <= n <= 50_000:
        raise ValueError(f"n must be in 16..50000, got {n}")
    G = load_model(model)
    cfg = G.config
    real = load_images(data, cfg.image_size, cfg.channels).images
    g = torch.Generator().manual_seed(seed)
    notes = []
    if len(real) < n:
        notes.append(f"n={n} was asked for, but {data} holds {len(real)} usable images: compared {len(real)}")
    real = real[torch.randperm(len(real), generator=g)[:n]]
    t0 = time.perf_counter()
    fake = sample(G, range(len(real)))
    res: dict[str, Any] = evaluate(real, fake, inception_weights=inception_weights, seed=seed)
    res = {"n": len(real), "data": str(data), **res, "seconds": round(time.perf_counter() - t0, 1)}
    if write:
        if not (isinstance(G.folder, Path) and Path(model).is_dir()):
            raise ValueError(f"--write records metrics in a local model folder; {model} is not one")
        _record(Path(model), res)
        notes.append(f"wrote {Path(model) / 'metrics.json'} and the card's Metrics table")
    if notes:
        res["notes"] = notes
    return res


def _record(folder: Path, res: dict[str, Any]) -> None:
    """metrics.json, and a Metrics table in README.md (replacing an older one)."""
    res = dict(res, data=Path(str(res.get("data", ""))).name)  # no local paths in what gets shared
    if "note" in res:  # the full message names local paths; the card keeps its first sentence
        res["note"] = str(res["note"]).split(" (")[0].split(": Inception")[0] + ": Inception-v3 weights not present"
    save_json(res, folder / "metrics.json")
    card = folder / "README.md"
    if not card.exists():
        return
    rows = [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in res.items()]
    table = "## Metrics\n\n`python -m gan eval` (samples of seeds 0..n-1 against n real images):\n\n"
    table += "| metric | value |\n|---|---|\n" + "\n".join(rows) + "\n\n"
    text = card.read_text()
    text = re.sub(r"## Metrics\n.*?(?=\n## |\Z)", "", text, flags=re.S)
    head = next((h for h in ("## Known limits", "## Limits") if h in text), None)
    text = text.replace(head, table + head) if head else text.rstrip() + "\n\n" + table
    atomic_write_text(card, text)
