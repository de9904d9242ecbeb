"""What precision auto buys in quality per CPU minute on a CPU with native bf16: one arm of
benchmarks/quality_per_minute.py (by default `xflip`, the `cpu` recipe) run twice on the same
machine, once as the arm asks (precision auto) and once with `--precision fp32`, each into its own
results folder; this script compares the two.

The main ablation table cannot show it: it ran on an AVX2-only CPU, where auto is fp32.

    # on a bf16-native CPU (AMX or AVX512-BF16), seeds 0-2, both precisions (one core each):
    python benchmarks/quality_per_minute.py --results benchmarks/results/quality_AMX/auto \\
        --runs runs/quality_AMX/auto run --arm xflip --seed 0 --cells 10min 20min 1000steps
    python benchmarks/quality_per_minute.py --results benchmarks/results/quality_AMX/fp32 \\
        --runs runs/quality_AMX/fp32 run --arm xflip --seed 0 --cells 10min 20min 1000steps --precision fp32
    python benchmarks/quality_precision.py --results benchmarks/results/quality_AMX

Other arms run at auto into <results>/auto/ on the same machine (e.g. `cool`, whose run is planned to
end where this machine's `xflip` runs got) get a row of their own, "not run" where they have no cell.

Writes <results>/precision_table.md, <results>/precision_results.json and
<results>/precision_grids.jpg (the median seed's 6x6 crop per precision and cell), and prints the
table."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_per_minute import ROOT, load_results, make_cells  # noqa: E402
from quality_report import _machine, _montage, summarise  # noqa: E402


def _where(r: dict) -> tuple[str, str, str]:
    """The CPU class, model and torch version a run had: runs compared must share all three."""
    return (*_machine(r), r["machine"]["torch"])


def compare(results: Path, arm: str, cells) -> dict:
    """{"machine", "arm", "sides": {"auto": {...}, "fp32": {...}}, "other_arms"} from results/auto and
    results/fp32. Raises ValueError when a side has no runs of `arm`, the fp32 side holds runs in
    another precision, or any run was on another CPU than the rest."""
    sides, machines = {}, set()
    loaded = {side: load_results(results / side) for side in ("auto", "fp32")}
    for side, all_recs in loaded.items():
        recs = [r for r in all_recs if r["arm"] == arm]
        if not recs:
            raise ValueError(f"no results for arm {arm!r} in {results / side}")
        machines |= {_where(r) for r in recs}
        chosen = sorted({r["precision"]["chosen"] for r in recs})
        reasons = sorted({r["precision"]["reason"] for r in recs})
        if side == "fp32" and chosen != ["fp32"]:
            raise ValueError(f"{results / side} holds runs in {chosen}, not fp32")
        row = summarise(results / side, cells)["arms"][arm]
        sides[side] = {"chosen": chosen, "reasons": reasons, "n_eval": sorted({r["n_eval"] for r in recs}),
                       "cells": {c.name: row[c.name] for c in cells}}  # fmt: skip
    if len(machines) != 1:
        raise ValueError(f"the two sides ran on different machines: {sorted(machines)}")
    where = machines.pop()
    out = {"arm": arm, "machine": dict(zip(("cpu_class", "model", "torch"), where)), "sides": sides}
    # speed: steps per CPU-second at the time cells, the same runs' own clocks
    speed = {}
    for side, s in sides.items():
        rates = [st / (60 * m) for c in cells if c.cpu_s and (cell := s["cells"][c.name])
                 for st, m in zip(cell["steps"], cell["cpu_min"])]  # fmt: skip
        speed[side] = statistics.fmean(rates) if rates else None
    out["steps_per_cpu_s"] = speed
    out["speedup"] = speed["auto"] / speed["fp32"] if speed["auto"] and speed["fp32"] else None
    # other arms run at auto on the same machine (e.g. `cool`, planned to the arm's steps there)
    others = {}
    for name, row in summarise(results / "auto", cells)["arms"].items():
        recs = [r for r in loaded["auto"] if r["arm"] == name]
        if name == arm or not recs:
            continue
        if {_where(r) for r in recs} != {where}:
            raise ValueError(f"arm {name!r} in {results / 'auto'} ran on another machine")
        others[name] = {"change": row["change"], "chosen": sorted({r["precision"]["chosen"] for r in recs}),
                        "cells": {c.name: row[c.name] for c in cells}}  # fmt: skip
    out["other_arms"] = others
    return out


def _cell(c: dict | None, time_cell: bool, missing: str = "pending") -> str:
    if c is None:
        return missing
    s = f"{c['mean']:.1f} ± {c['sd']:.1f} (n={c['n']})" if c["n"] > 1 else f"{c['mean']:.1f} (n=1)"
    if time_cell:
        return s + f", {statistics.fmean(c['steps']):.0f} steps"
    return s + f", {statistics.fmean(c['cpu_min']):.1f} CPU min"


def table(comp: dict, cells) -> str:
    m = comp["machine"]
    lines = [
        "| run | " + " | ".join(f"SWD at {c.name}" for c in cells) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for side, s in comp["sides"].items():
        name = f"`{comp['arm']}`, " + (f"auto (chose {'/'.join(s['chosen'])})" if side == "auto" else "fp32 (forced)")
        lines.append(f"| {name} | " + " | ".join(_cell(s["cells"][c.name], c.cpu_s is not None) for c in cells) + " |")
    for name, o in comp.get("other_arms", {}).items():
        cells_txt = " | ".join(_cell(o["cells"][c.name], c.cpu_s is not None, "not run") for c in cells)
        lines.append(f"| `{name}`, auto (chose {'/'.join(o['chosen'])}): {o['change']} | {cells_txt} |")
    why = "; ".join(comp["sides"]["auto"]["reasons"])
    n_eval = "/".join(f"{n:,}" for n in sorted({n for s in comp["sides"].values() for n in s["n_eval"]}))
    sp = comp["speedup"]
    return (
        f"## Precision auto against fp32: arm `{comp['arm']}` on {m['model']} ({m['cpu_class']}), "
        f"torch {m['torch']}\n\n"
        "`python benchmarks/quality_precision.py`: the same arm of `quality_per_minute.py`, seeds and budgets "
        "(one torch thread, CPU time of the training process), once at precision auto and once with fp32 forced, "
        f"on the same machine. SWD x1e3 of {n_eval} samples against as many training images, mean ± standard deviation "
        "over seeds; time cells show the mean steps reached, the step cell the mean CPU minutes it took.\n\n"
        + "\n".join(lines)
        + f"\n\nAuto's reason: {why}. Steps per CPU-second at the time cells: "
        + ", ".join(f"{k} {v:.2f}" for k, v in comp["steps_per_cpu_s"].items() if v)
        + (f" ({sp:.2f}x)" if sp else "")
        + ".\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "quality_AMX"),
                   help="folder holding auto/ and fp32/ result folders")  # fmt: skip
    p.add_argument("--arm", default="xflip")
    p.add_argument("--minutes", type=float, nargs="+", default=[10.0, 20.0])
    p.add_argument("--steps", type=int, nargs="*", default=[1000])
    args = p.parse_args()
    from gan.fileio import atomic_write_text

    results, cells = Path(args.results), make_cells(args.minutes, args.steps)
    try:
        comp = compare(results, args.arm, cells)
    except ValueError as e:
        sys.exit(f"error: {e}")
    text = table(comp, cells)
    panels = {f"{side} {c.name}": {"x": s["cells"][c.name]} for c in cells for side, s in comp["sides"].items()}
    panels |= {f"{name} auto {c.name}": {"x": o["cells"][c.name]} for name, o in comp["other_arms"].items()
               for c in cells if o["cells"][c.name]}  # fmt: skip
    if _montage({"arms": panels}, "x", results / "precision_grids.jpg", cols=2):
        text += f"\nSample grids of the median seeds (6x6 crops): `{(results / 'precision_grids.jpg').name}`.\n"
    atomic_write_text(results / "precision_results.json", json.dumps(comp, indent=2, allow_nan=False) + "\n")
    atomic_write_text(results / "precision_table.md", text)
    print(text)


if __name__ == "__main__":
    main()
