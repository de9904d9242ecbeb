"""The report of benchmarks/quality_per_minute.py: its stored results -> the table
(quality_table.md), the summary (quality_results.json) and the sample grids of each arm's median
seed. Run it as `python benchmarks/quality_per_minute.py report`."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from quality_per_minute import CROP, ROOT, Cell, _chain, cpu_recipe_arm, crop_path, load_results, store_crop


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def store_crops(results: Path) -> tuple[int, list[str]]:
    """Crop every cell's PNG grid that has no stored crop yet (runs from before `run` stored them).
    Returns (written, cells whose grid is in neither place)."""
    written, lost = 0, []
    for r in load_results(results):
        dst = crop_path(results, r["arm"], r["seed"], r["cell"])
        if dst.exists():
            continue
        if not (ROOT / r["grid"]).exists():
            lost.append(Path(r["_file"]).stem)
            continue
        store_crop(ROOT / r["grid"], dst)
        written += 1
    return written, lost


def _median_grid(results: Path, arm: str, rec: dict, cell: str) -> str:
    crop = crop_path(results, arm, rec["seed"], cell)
    if crop.exists():
        return str(crop.relative_to(ROOT)) if crop.is_relative_to(ROOT) else str(crop)
    return rec["grid"]


def summarise(results: Path, cells: list[Cell]) -> dict:
    recs = load_results(results)
    by: dict[tuple[str, str], list[dict]] = {}
    for r in recs:
        by.setdefault((r["arm"], r["cell"]), []).append(r)
    out: dict[str, Any] = {"cells": [c.name for c in cells], "arms": {}}
    machines = sorted({(r["machine"]["cpu_class"], r["machine"]["model"]) for r in recs})
    out["machines"] = [{"cpu_class": c, "model": m} for c, m in machines]
    # the machine most cells ran on: CPU minutes are only compared (and averaged) among its runs
    main = statistics.mode([_machine(r) for r in recs]) if recs else None
    out["main_machine"] = dict(zip(("cpu_class", "model"), main)) if main else None
    out["other_machine_cells"] = [
        {"arm": r["arm"], "seed": r["seed"], "cell": r["cell"], "cpu_class": r["machine"]["cpu_class"],
         "model": r["machine"]["model"], "precision": r["precision"]}
        for r in sorted(recs, key=lambda r: (r["arm"], r["cell"], r["seed"])) if _machine(r) != main
    ]  # fmt: skip
    for a in _chain():
        row: dict[str, Any] = {"change": a.change}
        for c in cells:
            rs = sorted(by.get((a.name, c.name), []), key=lambda r: r["seed"])
            if not rs:
                row[c.name] = None
                continue
            swds = [r["swd"]["swd_avg"] for r in rs]
            mean, sd = _mean_sd(swds)
            med = sorted(rs, key=lambda r: r["swd"]["swd_avg"])[(len(rs) - 1) // 2]
            row[c.name] = {
                "n": len(rs), "seeds": [r["seed"] for r in rs], "swd_avg": swds, "mean": round(mean, 3),
                "sd": round(sd, 3), "min": min(swds), "max": max(swds),
                "steps": [r["step"] for r in rs], "cpu_min": [round(r["cpu_s"] / 60, 2) for r in rs],
                "cpu_class": [r["machine"]["cpu_class"] for r in rs],
                "cpu_min_main_machine": [round(r["cpu_s"] / 60, 2) for r in rs if _machine(r) == main],
                "steps_main_machine": [r["step"] for r in rs if _machine(r) == main],
                "img_per_cpu_s": [r["img_per_cpu_s"] for r in rs], "diverged": [r["diverged"] for r in rs],
                "median_seed": med["seed"], "median_grid": _median_grid(results, a.name, med, c.name),
                "files": [r["_file"] for r in rs],
            }  # fmt: skip
        out["arms"][a.name] = row
    return out


def _machine(r: dict) -> tuple[str, str]:
    return r["machine"]["cpu_class"], r["machine"]["model"]


def _fmt(cell: dict | None, with_steps: bool) -> str:
    if cell is None:
        return "pending"
    s = f"{cell['mean']:.1f} ± {cell['sd']:.1f} (n={cell['n']})" if cell["n"] > 1 else f"{cell['mean']:.1f} (n=1)"
    own = cell["cpu_min_main_machine"]
    if len(own) < cell["n"]:
        s += "†"  # some seeds ran on another CPU: listed under the table
    if with_steps and cell["steps_main_machine"]:
        s += f", {statistics.fmean(cell['steps_main_machine']):.0f} steps"
    elif with_steps:
        s += ", on another CPU"
    elif own:
        s += f", {statistics.fmean(own):.1f} CPU min" + (f" (n={len(own)})" if len(own) < cell["n"] else "")
    else:
        s += ", on another CPU"
    if any(cell["diverged"]):
        s += ", diverged"
    return s


def report(args, cells: list[Cell]) -> str:
    from gan.fileio import atomic_write_text

    results = Path(args.results)
    store_crops(results)
    summ = summarise(results, cells)
    recipe = cpu_recipe_arm()
    summ["cpu_recipe_arm"] = recipe
    atomic_write_text(Path(args.results).parent / "quality_results.json",
                      json.dumps(summ, indent=2, allow_nan=False) + "\n")  # fmt: skip
    main = summ["main_machine"]
    machines = f"{main['model']} ({main['cpu_class']})" if main else "none yet"
    if summ["other_machine_cells"]:
        machines += ", every cell but those marked †"
    lines = [
        "| # | arm | change (each row adds one change to the row above, or to the arm it names) | "
        + " | ".join(f"SWD at {c.name}" for c in cells) + " |",
        "|---|---|---|" + "---|" * len(cells),
    ]  # fmt: skip
    for i, (name, row) in enumerate(summ["arms"].items()):
        mark = " (today's `cpu` recipe)" if name == recipe else ""
        vals = " | ".join(_fmt(row[c.name], c.cpu_s is not None) for c in cells)
        lines.append(f"| {i} | `{name}`{mark} | {row['change']} | {vals} |")
    n_eval = sorted({r["n_eval"] for r in load_results(results)}) or [args.n_eval]
    text = (
        "## Quality per CPU minute: which change buys what\n\n"
        f"`python benchmarks/quality_per_minute.py report`, from the JSON files in `benchmarks/results/quality/` "
        "(one per arm, seed and cell). cats64 (8,351 cat faces, 64 px). Each run has one torch thread and a budget "
        "of *CPU time of the training process* (`time.process_time()` around the training steps; data loading, "
        "sampling and evaluation not counted), so jobs sharing the machine do not bias the arms; the 20-minute run "
        "of an arm is the same run as its 10-minute one, evaluated on its way. SWD x1e3 (average of the 64/32/16 px "
        f"Laplacian levels; lower is better) of {'/'.join(map(str, n_eval))} samples against as many training images "
        "(the same images for every cell); mean ± standard deviation over seeds, n = seeds finished; time cells "
        "show the mean steps reached, the step cell the mean CPU minutes it took. "
        f"CPU: {machines}; precision auto = fp32 there (no native bf16). Not finished yet: *pending*.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + _other_machines_line(summ)
        + _floor_line(results)
    )
    grids = []
    for c in cells:
        path = Path(args.results).parent / f"quality_grids_{c.name}.jpg"
        if _montage(summ, c.name, path):
            grids.append(f"`benchmarks/results/{path.name}`")
    if grids:
        text += "Sample grids of each arm's median seed: " + ", ".join(grids) + ".\n"
    missing = [f"`{name}` seed {c['median_seed']} at {cn}" for name, row in summ["arms"].items()
               for cn in summ["cells"] if (c := row.get(cn)) and not (ROOT / c["median_grid"]).exists()]  # fmt: skip
    if missing:
        text += ("\nGrey panels: no sample grid was kept for " + ", ".join(missing) + " (the run's machine ended "
                 "before the report stored grids in `benchmarks/results/quality/grids/`); "
                 "its JSON has the figures.\n")  # fmt: skip
    atomic_write_text(Path(args.results).parent / "quality_table.md", text)
    return text


def _other_machines_line(summ: dict) -> str:
    """The † cells: which seeds ran on another CPU, at what precision; their SWD is pooled with the
    others' (the same recipe and precision), their CPU minutes are not (another CPU's speed)."""
    others = summ["other_machine_cells"]
    if not others:
        return ""
    groups: dict[tuple, list[int]] = {}
    for o in others:
        p = o["precision"]
        forced = ""
        if p.get("arm_requests"):
            forced = f", precision {p['chosen']} forced (the arm asks for {p['arm_requests']})"
        groups.setdefault((o["arm"], o["cell"], o["model"], o["cpu_class"], forced), []).append(o["seed"])
    parts = [f"`{a}` seed{'s' if len(ss) > 1 else ''} {', '.join(map(str, ss))} at {c} on {m} ({k}){f}"
             for (a, c, m, k, f), ss in groups.items()]  # fmt: skip
    main = summ["main_machine"]
    return (
        "† Cells holding seeds that ran on another CPU: " + "; ".join(parts) + f". Their SWD is pooled with the "
        f"{main['cpu_class']} seeds' (the same settings and precision); their CPU time is not: the CPU minutes and "
        f"steps per CPU budget shown are the {main['cpu_class']} runs' only.\n\n"
    )


def _floor_line(results: Path) -> str:
    p = results / "real_vs_real.json"
    if not p.exists():
        return ""
    r = json.loads(p.read_text())
    return (f"For scale: {r['n_eval']} real images against {r['n_eval']} other training images score "
            f"{r['swd']['swd_avg']:.1f} (`quality/real_vs_real.json`, `quality_per_minute.py floor`).\n\n")  # fmt: skip


def _montage(summ: dict, cell: str, path: Path, cols: int = 4) -> bool:
    """One labelled 6x6 crop of the median seed's sample grid per arm that has this cell, `cols` a row."""
    from PIL import Image, ImageDraw

    panels = []
    for i, (name, row) in enumerate(summ["arms"].items()):
        c = row.get(cell)
        if c is None:
            continue
        panel = Image.new("RGB", (CROP, CROP + 30), "white")
        d = ImageDraw.Draw(panel)
        if (ROOT / c["median_grid"]).exists():
            im = Image.open(ROOT / c["median_grid"]).convert("RGB")
            panel.paste(im.crop((0, 0, CROP, CROP)), (0, 30))  # 6x6 of the 8x8 grid (a crop is that already)
        else:  # trained on a machine whose runs/ is gone, before the report stored crops
            d.rectangle((0, 30, CROP - 1, CROP + 29), fill=(225, 225, 225))
            d.text((8, 40), "sample grid not kept:", fill="black")
            d.text((8, 54), "the run's machine is gone", fill="black")
        d.text((4, 2), f"{i} {name} seed {c['median_seed']}", fill="black")
        d.text((4, 15), f"SWD {c['swd_avg'][c['seeds'].index(c['median_seed'])]:.1f}, "
                        f"{c['steps'][c['seeds'].index(c['median_seed'])]} steps", fill="black")  # fmt: skip
        panels.append(panel)
    if not panels:
        return False
    cols = min(cols, len(panels))
    rows = math.ceil(len(panels) / cols)
    w, h = panels[0].size
    canvas = Image.new("RGB", (cols * (w + 8), rows * (h + 8)), "white")
    for k, p in enumerate(panels):
        canvas.paste(p, ((k % cols) * (w + 8), (k // cols) * (h + 8)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.jpg")
    canvas.save(tmp, quality=88)
    tmp.replace(path)
    return True


def main() -> None:
    """`python benchmarks/quality_per_minute.py report` runs this: the same arguments."""
    import quality_per_minute as qpm

    args = qpm.ARGS = qpm.parse_args()
    print(report(args, qpm.make_cells(args.minutes, args.steps)))


if __name__ == "__main__":
    main()
