"""Rebuild the README's "Quality per CPU minute" section from the stored results.

Reads benchmarks/results/quality_table.md and quality_results.json (written by
`python benchmarks/quality_per_minute.py report`) and replaces the section between its heading and
"## Sharing on the Hub": the table as it is, and prose whose every number is a cell of the table.
The claims the prose makes (which arm has the lowest mean, which ties) are checked against the
results first; when one no longer holds, the script stops and says which, and a person rewrites
the prose. The descriptions of the samples ("grey blobs") come from looking at the median seed's
grids (quality_grids_*.jpg): look again when the grids change.

    python benchmarks/quality_per_minute.py report && python benchmarks/quality_readme.py
"""

from __future__ import annotations

import json
import statistics
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CELLS = {"10min": "10 CPU-minutes", "20min": "20 CPU-minutes", "1000steps": "1,000 steps"}
SEEDS = 3
# the median seed's 10-minute grid of the sle arm, looked at (quality_grids_10min.jpg)
SEEN_SLE = (
    "By eye, at 10 CPU-minutes its median seed draws varied, recognisable cat faces like the `cpu` "
    "recipe's; its worst seed draws blurrier, smeared faces. It stays an option (`--g-sle`), off by default."
)
# the median seed's 10-minute grid of the b16 arm, looked at
SEEN_B16 = (
    "By eye its median seed draws cat faces with a speckled, grid-like noise texture, many of them blurred or "
    "dark. Batch 32 stays."
)
# the median seed's 10-minute grid of the cool arm, looked at
SEEN_COOL = (
    "By eye, at 10 CPU-minutes its median seed (seed 0) draws the same cats as the `cpu` recipe's seed 0 (the "
    "runs share their first three quarters), smoother and blurrier, with less contrast."
)
# what the median seed's 20-minute samples look like (quality_grids_20min.jpg), per arm: looked at, not computed
SEEN_20MIN = {
    "textbook": "grey blobs with a faint face-like blot in the middle, all alike",
    "ourloop": "blurry face-like blots in orange and blue-grey under a fine checkered texture, few kinds",
    "w32": "blurry cat-face shapes under a green, checkered noise, brown and grey colour casts",
    "b64": "cat faces, many white with blue-green tints and blown-out patches, speckled fur",
    "b32": "cat faces with green and yellow colour casts",
    "diffaug": "recognisable cat faces, no longer noisy",
    "ema": "recognisable, clean cat faces",
    "xflip": "recognisable cat faces with fur detail and the most varied coats",
    "hinge_sn": "cat faces with the same bright eyes and pose over and over, noisy fur",
    "r1": "cat faces in a few repeated brown, white and black coats, all in one pose, a fine grid texture",
    "cool": "recognisable cat faces, cleaner and smoother fur than the `cpu` recipe's same seed, a little softer",
    "lr_d": "blurry cat faces in one pose with the same green eyes, a grid texture over all of them",
    "sle": "cat faces with harsh, noisy fur texture, some blurred",
    "b16": "recognisable cat faces beside blurred dark ones and a few black frames",
}


def main() -> None:
    table_md = (RESULTS / "quality_table.md").read_text().splitlines()
    table = [ln for ln in table_md if ln.startswith("|")]
    dagger = "".join("\n" + textwrap.fill(ln, 100) + "\n" for ln in table_md if ln.startswith("†"))
    summary = json.loads((RESULTS / "quality_results.json").read_text())
    arms = summary["arms"]

    def cell(arm: str, name: str = "10min") -> dict | None:
        return arms[arm].get(name) or None

    def c(arm: str, name: str = "10min") -> str:
        x = cell(arm, name)
        if x is None:
            return "pending"
        return f"{x['mean']:.1f} ± {x['sd']:.1f}" if x["n"] > 1 else f"{x['mean']:.1f}, one seed"

    def tied(a: dict, b: dict) -> bool:
        """Two cells' means differ by no more than the larger standard deviation."""
        return abs(a["mean"] - b["mean"]) <= max(a["sd"], b["sd"])

    def verdict(arm: str) -> str:
        """'paid' or 'did not pay' at 10 CPU-minutes against the cpu recipe, with both cells."""
        x = cell(arm)
        return (f"{'paid' if x['mean'] < xflip['mean'] else 'did not pay'} at 10 CPU-minutes: {c(arm)} against "
                f"{c('xflip')}, {'within' if tied(x, xflip) else 'outside'} the spread")  # fmt: skip

    def bullet(text: str) -> str:
        """A list item wrapped at 100 columns, never at a hyphen ("CPU-" + newline reads "CPU- minutes")."""
        return textwrap.fill(text, 100, subsequent_indent="  ", break_on_hyphens=False)

    def steps(arm: str, name: str = "10min") -> str:
        return f"{statistics.fmean(arms[arm][name]['steps']):,.0f}"

    # the claims of the prose, checked
    means10 = {a: cell(a)["mean"] for a in arms if cell(a)}
    best = min(means10, key=means10.get)
    ema, xflip = cell("ema"), cell("xflip")
    checks = {
        "the cpu recipe (xflip) has the lowest mean at 10 CPU-minutes": best == "xflip",
        "EMA and x-flips are tied within their spread": tied(ema, xflip),
        "at 1,000 steps EMA alone is ahead of x-flips": cell("ema", "1000steps")["mean"]
        < cell("xflip", "1000steps")["mean"],
        "DiffAugment alone is worse than batch 32 at 10 CPU-minutes": cell("diffaug")["mean"] > cell("b32")["mean"],
        "the loss changes are worse than the cpu recipe": all(
            cell(a)["mean"] > xflip["mean"] for a in ("hinge_sn", "r1", "lr_d") if cell(a)
        ),
    }

    total = SEEDS * len(arms)
    done = {label: sum((cell(a, name) or {}).get("n", 0) for a in arms) for name, label in CELLS.items()}
    progress = (
        f"Every cell has {SEEDS} seeds."
        if all(n == total for n in done.values())
        else f"Runs finished ({SEEDS} seeds x {len(arms)} arms per column): "
        + "; ".join(f"{label}: {n} of {total} runs" for label, n in done.items())
        + ". A *pending* cell has no finished run yet."
    )
    twenty = [a for a in arms if cell(a, "20min")]
    if twenty:
        unseen = [a for a in twenty if a not in SEEN_20MIN]
        if unseen:
            sys.exit(f"20-minute cells of {unseen}: look at quality_grids_20min.jpg, describe them in SEEN_20MIN")
        listed = "; ".join(f"`{a}` {c(a, '20min')}" + (f" (n={n})" if (n := cell(a, "20min")["n"]) > 1 else "")
                           + f": {SEEN_20MIN[a]}" for a in twenty)  # fmt: skip
        best20 = min(twenty, key=lambda a: cell(a, "20min")["mean"])
        full = all(cell(a, "20min")["n"] == SEEDS for a in arms if cell(a, "20min")) and len(twenty) == len(arms)
        twenty_text = bullet(
            f"- **20 CPU-minutes**, {'every arm' if full else 'the cells finished so far'} (by eye, "
            f"`quality_grids_20min.jpg`): {listed}. Lowest mean{'' if full else ' so far'}: `{best20}`"
            + (", the `cpu` recipe" if best20 == "xflip" else "")
            + (
                ", within the spread of the next ones."
                if any(
                    cell(a, "20min")["mean"] - cell(a, "20min")["sd"] <= cell(best20, "20min")["mean"]
                    for a in twenty
                    if a != best20
                )  # fmt: skip
                else "."
            )
        )
    else:
        twenty_text = "- **20 CPU-minutes**: no cell has finished yet."

    # the first rows at equal steps: is their deficit at equal CPU time only the steps they get?
    first = ("textbook", "ourloop", "w32", "b64", "b32")

    def at1k(arm: str) -> str:
        x = cell(arm, "1000steps")
        n = f" (n={x['n']})" if 1 < x["n"] < SEEDS else ""
        own = x["cpu_min_main_machine"]  # CPU minutes compare only on one CPU
        mark = "†" if len(own) < x["n"] else ""
        where = f" (the {summary['main_machine']['cpu_class']} seed{'s' if len(own) > 1 else ''})" if mark else ""
        return f"`{arm}` {c(arm, '1000steps')}{n}{mark} in {statistics.fmean(own):.0f} CPU-minutes{where}"

    finished = [a for a in first if cell(a, "1000steps")]
    pending = [f"`{a}`" for a in first if not cell(a, "1000steps") or cell(a, "1000steps")["n"] < SEEDS]
    if not finished:
        equal_text = bullet("- **At equal steps (1,000)**, the first rows: no run has finished yet.")
    else:
        listed = "; ".join(at1k(a) for a in finished)
        if pending:
            verdict1k = f"Seeds still to finish: {', '.join(pending)}."
        else:
            k = {a: cell(a, "1000steps") for a in first}
            lo, hi = min(first, key=lambda a: k[a]["mean"]), max(first, key=lambda a: k[a]["mean"])
            all_tied = all(tied(k[a], k[b]) for a in first for b in first)
            slower = statistics.fmean(k["textbook"]["cpu_min_main_machine"]) / statistics.fmean(
                k["b32"]["cpu_min_main_machine"]
            )
            gap10 = cell("textbook")["mean"] - cell("b32")["mean"]
            gap1k = k[hi]["mean"] - k[lo]["mean"]
            spread = "all within each other's spread" if all_tied else "not all within each other's spread"
            verdict1k = (
                f"Per step their means run from {k[lo]['mean']:.1f} (`{lo}`) to {k[hi]['mean']:.1f} (`{hi}`), "
                f"{spread}; a textbook step costs {slower:.0f}x the CPU time of a batch-32, widths-32 step"
            )
            if gap10 >= 3 * gap1k:
                verdict1k += (
                    f". At equal CPU time, then, steps per CPU-minute separate these rows ({gap10:.0f} points "
                    f"between `textbook` and `b32` at 10 CPU-minutes) far more "
                    f"than what a step does ({gap1k:.0f} points between the extremes at 1,000 steps)."
                )
                checks["steps per CPU-minute separate the first rows 3x more than a step's quality"] = True
            else:
                verdict1k += "."
            checks[f"at 1,000 steps the first rows are {'' if all_tied else 'not '}tied"] = True
        equal_text = bullet(f"- **At equal steps (1,000)**, the same rows: {listed}. {verdict1k}")

    sle = cell("sle")
    if sle is None:
        sle_text = "- **lightweight-gan's skip-layer excitation** (`sle`): no run has finished yet."
    else:
        sle_text = bullet(
            f"- **lightweight-gan's skip-layer excitation** in G, added to the `cpu` recipe (`sle`), "
            f"{verdict('sle')}, nor at 20 ({c('sle', '20min')} against {c('xflip', '20min')}). Its gates cost little "
            f"CPU time (steps reached: {steps('sle')} against {steps('xflip')} at 10 CPU-minutes, "
            f"{steps('sle', '20min')} against {steps('xflip', '20min')} at 20); at 1,000 steps it scores "
            f"{c('sle', '1000steps')} against {c('xflip', '1000steps')}. {SEEN_SLE}"
        )
        checks["skip-layer excitation does not beat the cpu recipe at 10 CPU-minutes"] = sle["mean"] >= xflip["mean"]
        checks["nor at 20 CPU-minutes"] = cell("sle", "20min") is not None and (
            cell("sle", "20min")["mean"] >= cell("xflip", "20min")["mean"]
        )

    b16 = cell("b16")
    if b16 is None:
        b16_text = "- **Batch 16** on the `cpu` recipe (`b16`): no run has finished yet."
    else:
        b16_text = bullet(
            f"- **Batch 16** instead of 32 on the `cpu` recipe (`b16`: {steps('b16')} steps in 10 CPU-minutes "
            f"against {steps('xflip')}) {verdict('b16')}. {SEEN_B16}"
        )
        checks["batch 16 does not beat the cpu recipe at 10 CPU-minutes"] = b16["mean"] >= xflip["mean"]

    cool, cool20, xflip20 = cell("cool"), cell("cool", "20min"), cell("xflip", "20min")
    if cool is None:
        cool_text = "- **A learning-rate cool-down** (`cool`): no run has finished yet."
    else:
        at20, paid20 = "; its 20-minute cells are pending", False
        if cool20 is not None:
            paid20 = cool20["mean"] < xflip20["mean"]
            spread = "within" if tied(cool20, xflip20) else "outside"
            at20 = (f", {'but it paid' if paid20 else 'nor'} at 20 ({c('cool', '20min')} against "
                    f"{c('xflip', '20min')}, {spread} the spread)")  # fmt: skip
        cool1k, xflip1k = cell("cool", "1000steps"), cell("xflip", "1000steps")
        at1k = ""
        if cool1k is not None and cool1k["n"] == SEEDS:
            at1k = f" At 1,000 steps it costs too: {c('cool', '1000steps')} against {c('xflip', '1000steps')}."
            checks["the cool-down does not beat the cpu recipe at 1,000 steps"] = cool1k["mean"] >= xflip1k["mean"]
        when = (
            "It costs a short run progress and pays in longer ones (20 CPU-minutes here, and the long cats64 run). "
            "The app's default stays without it, as the best arm at 10 CPU-minutes, where the cool-down costs; "
            "for runs of 20 CPU-minutes and more, add `--cooldown 0.25` (in the app: *Cool-down* under *Model size "
            "and more*)."
            if paid20
            else "It pays once a long run has stopped improving, not within a short budget. It stays an option "
            "(`--cooldown`), off by default."
        )
        cool_text = bullet(
            "- **A learning-rate cool-down** on the `cpu` recipe (`cool`: the last quarter of the run at a quarter "
            f"of both learning rates; one run per cell, planned to end at it) {verdict('cool')}{at20}.{at1k} "
            "It came from retraining `weights/cats64`: 3,000 steps at lr 5e-5 after 10,000 took SWD 23.79 to 16.34, "
            f"where the same steps with only the longer EMA gave 28.36. {SEEN_COOL} {when}"
        )
        checks["the cool-down does not beat the cpu recipe at 10 CPU-minutes"] = cool["mean"] >= xflip["mean"]

    failed = [k for k, ok in checks.items() if not ok]
    if failed:
        sys.exit("the README's prose no longer holds: " + "; ".join(failed) + ". Rewrite it in " + __file__)

    other_cpu = ""
    if summary.get("other_machine_cells"):
        other_cpu = (
            textwrap.fill(
                "Cells marked † hold seeds that ran on another CPU at the same precision (listed under the table): "
                "their SWD is pooled, their CPU minutes are not.",
                100,
            )
            + "\n\n"
        )
    head = f"""### Quality per CPU minute (`benchmarks/quality_per_minute.py`)

An ablation on cats64 (8,351 cat faces, 64 px): the textbook pytorch/examples DCGAN in its own loop
(`benchmarks/textbook_dcgan.py`, no GAN Lab code), then GAN Lab's loop adding one change per row.
Budgets are *CPU time* of a one-thread training process (so runs sharing the machine do not bias
each other), at 10 and 20 CPU-minutes and at 1,000 steps; SWD x1e3 of 2,048 samples against 2,048
training images (lower is better; two sets of real images score 7.8); mean ± standard deviation
over the seeds finished (n). AVX2 EPYC, precision auto = fp32. The experiment resumes where it
stopped (`python benchmarks/quality_per_minute.py queue --workers 2`).

{textwrap.fill(progress, 100)}

{other_cpu}"""
    prose = f"""
What the stored runs show (the sample grids of each arm's median seed:
`benchmarks/results/quality_grids_10min.jpg`, `quality_grids_20min.jpg`, `quality_grids_1000steps.jpg`):

- **Steps per CPU minute decide the first rows.** After 10 CPU-minutes the textbook step has made
  {steps("textbook")} steps of near-uniform grey images ({c("textbook")}); the same settings in GAN Lab's
  loop: {steps("ourloop")} steps of grey blobs ({c("ourloop")}); widths 32: {steps("w32")} steps of blurry brown
  blobs ({c("w32")}); batch 64: {steps("b64")} steps of cat faces with checkered artefacts ({c("b64")});
  batch 32: {steps("b32")} steps of cats with colour casts ({c("b32")}).
- **DiffAugment needs EMA.** DiffAugment alone is worse at this budget ({c("diffaug")}: noisy,
  speckled samples); EMA of G on top gives the cleanest samples ({c("ema")}); x-flips, GAN Lab's
  `cpu` recipe, {c("xflip")}. EMA and x-flips are tied within their spread; the `cpu` recipe has
  the lowest mean at 10 CPU-minutes and stays the app's default. At equal steps (1,000) EMA alone
  is ahead ({c("ema", "1000steps")} against {c("xflip", "1000steps")}): x-flips pay only with more
  steps, if at all.
- **The loss changes from the small-data literature did not pay here**: hinge loss with spectral
  norm in D instead of BCE and BatchNorm ({c("hinge_sn")}: less varied, many similar faces), plus a
  lazy R1 penalty ({c("r1")}: similar brown and white faces), plus a lower learning rate for D
  ({c("lr_d")}: many near-identical brown cats, a mode collapse).
{equal_text}
{sle_text}
{b16_text}
{cool_text}
{twenty_text}

`python benchmarks/quality_per_minute.py report` rebuilds the table, `quality_results.json` and the
grids from the stored results; `python benchmarks/quality_readme.py` this section.

![10 CPU-minutes per arm, median seed](benchmarks/results/quality_grids_10min.jpg)

"""
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    a = readme.index("### Quality per CPU minute (`benchmarks/quality_per_minute.py`)")
    b = readme.index("## Sharing on the Hub")
    readme_path.write_text(readme[:a] + head + "\n".join(table) + "\n" + dagger + prose + readme[b:])
    print(f"README.md: quality section rebuilt ({len(table) - 2} arms); checked: {', '.join(checks)}")


if __name__ == "__main__":
    main()
