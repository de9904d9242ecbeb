"""Quality per CPU minute: the plain pytorch/examples recipe vs GAN Lab's default recipe.

Each recipe trains for the same wall-clock budget on the same data at the same image size, with
the project's own CLI (`python -m gan train --max-minutes M`); then both are evaluated with SWD
(and FID/KID where the Inception weights exist) on the same number of samples against the same
real images. Both sample grids are saved side by side in one PNG. Prints both figures and the
ratio.

    python benchmarks/quality_per_minute.py --data ../shared/datasets/cats64.zip --minutes 20

--parallel runs the two trainings at once with one thread each (equal shares of a busy machine);
the default runs them one after the other with all threads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# pytorch/examples dcgan: BCE, BatchNorm, Adam 2e-4 (0.5, 0.999), batch 128, no augmentation, no EMA
PLAIN = [
    "--loss", "bce", "--d-norm", "batch", "--g-style", "deconv", "--g-width", "64", "--d-width", "64",
    "--lr-g", "2e-4", "--lr-d", "2e-4", "--beta1", "0.5", "--batch-size", "128", "--augment", "none",
    "--ema-decay", "0", "--no-xflip", "--precision", "fp32",
]  # fmt: skip
# GAN Lab's CPU recipe, the app's defaults: TrainConfig's defaults (bf16, DiffAugment, EMA 0.999,
# x-flips, batch 64) on a lighter DCGAN (widths 32: ~5x the images per second of widths 64)
OURS: list[str] = ["--g-width", "32", "--d-width", "32"]


def train(name: str, extra: list[str], args, threads: int, minutes: float, resume: bool) -> subprocess.Popen:
    """Train one recipe up to `minutes` of total training time (resuming the previous stage)."""
    out = Path(args.out) / name
    if resume:
        cmd = [sys.executable, "-m", "gan", "train", "--out", str(out), "--resume", "--max-minutes", str(minutes),
               "--threads", str(threads), "--quiet"]  # fmt: skip
    else:
        if out.exists():
            shutil.rmtree(out)
        cmd = [
            sys.executable, "-m", "gan", "train", "--data", args.data, "--out", str(out),
            "--steps", "10000000", "--max-minutes", str(minutes), "--sample-every", "0",
            "--checkpoint-every", "1000", "--log-every", "50", "--quiet", "--image-size", str(args.image_size),
            "--threads", str(threads), "--seed", str(args.seed), *extra,
        ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(Path(args.out) / f"{name}.log", "a")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def steps_done(name: str, args) -> tuple[int, float]:
    """(steps trained so far, median img/s) from the run's log.jsonl."""
    events = [json.loads(x) for x in (Path(args.out) / name / "log.jsonl").read_text().splitlines()]
    steps = [e["step"] for e in events if e["event"] == "Done"][-1]
    ips = [e["img_per_s"] for e in events if e["event"] == "StepLog"][1:]
    return steps, float(np.median(ips)) if ips else float("nan")


def labelled(grid_path: Path, title: str) -> Image.Image:
    im = Image.open(grid_path).convert("RGB")
    im = im.resize((im.width * 2, im.height * 2), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (im.width, im.height + 28), "white")
    canvas.paste(im, (0, 28))
    ImageDraw.Draw(canvas).text((6, 6), title, fill="black")
    return canvas


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cats64.zip"))
    p.add_argument(
        "--minutes",
        type=float,
        nargs="+",
        default=[10.0, 20.0],
        help="wall-clock training budgets per recipe, evaluated in stages (one run resumed)",
    )
    p.add_argument(
        "--plain-extra", type=float, nargs="*", default=[], help="further budgets for the plain recipe alone (e.g. 40)"
    )
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-eval", type=int, default=2048, help="samples and real images compared")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel", action="store_true", help="train both at once, one thread each")
    p.add_argument("--out", default=str(ROOT / "runs" / "quality"))
    p.add_argument("--skip-train", action="store_true", help="evaluate existing runs in --out")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)

    recipes = {"plain": PLAIN, "ours": OURS}
    stages = sorted(set(args.minutes) | set(args.plain_extra))
    results: dict[str, dict[float, dict]] = {"plain": {}, "ours": {}}
    for i, m in enumerate(stages):
        names = [n for n in recipes if m in args.minutes or (n == "plain" and m in args.plain_extra)]
        if not args.skip_train:
            t0 = time.time()
            if args.parallel:
                procs = [train(n, recipes[n], args, 1, m, resume=i > 0) for n in names]
                codes = [pr.wait() for pr in procs]
            else:
                threads = os.cpu_count() or 1
                codes = [train(n, recipes[n], args, threads, m, resume=i > 0).wait() for n in names]
            if any(codes):
                sys.exit(f"a training run failed (exit codes {codes}); see {args.out}/*.log")
            print(f"stage {m:g} min: trained {', '.join(names)} in {(time.time() - t0) / 60:.1f} min wall", flush=True)
        for n in names:
            results[n][m] = evaluate_stage(n, m, args)
        if len(names) == 2:
            side_by_side(m, results, args)
        print_table(m, {n: results[n][m] for n in names}, args)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2))
    last = max(args.minutes)
    a, b = results["plain"][last], results["ours"][last]
    print(f"SWD ours / plain at {last:g} min: {b['swd_avg'] / a['swd_avg']:.2f} "
          f"({1 - b['swd_avg'] / a['swd_avg']:.0%} lower)")  # fmt: skip


def evaluate_stage(name: str, minutes: float, args) -> dict:
    from gan import load_model
    from gan.evaluate import evaluate_model
    from gan.sampling import make_grid, sample, save_png

    src = Path(args.out) / name / "model"
    model = Path(args.out) / f"{name}_{minutes:g}min"
    if model.exists():
        shutil.rmtree(model)
    shutil.copytree(src, model)
    res = evaluate_model(model, args.data, n=args.n_eval, write=True, seed=args.seed)
    steps, ips = steps_done(name, args)
    res.update(steps=steps, img_per_s=ips)
    save_png(make_grid(sample(load_model(model), range(64)), nrow=8), Path(args.out) / f"{name}_{minutes:g}min.png")
    return res


def side_by_side(m: float, results: dict, args) -> None:
    a, b = results["plain"][m], results["ours"][m]
    panels = [
        labelled(Path(args.out) / f"plain_{m:g}min.png",
                 f"plain pytorch/examples recipe, {m:g} min: {a['steps']} steps, SWD {a['swd_avg']:.1f}"),
        labelled(Path(args.out) / f"ours_{m:g}min.png",
                 f"GAN Lab CPU recipe, {m:g} min: {b['steps']} steps, SWD {b['swd_avg']:.1f}"),
    ]  # fmt: skip
    side = Image.new("RGB", (sum(p.width for p in panels) + 16, max(p.height for p in panels)), "white")
    side.paste(panels[0], (0, 0))
    side.paste(panels[1], (panels[0].width + 16, 0))
    path = Path(args.out) / f"side_by_side_{m:g}min.png"
    side.save(path)
    print(f"side by side: {path}")


def print_table(m: float, rows: dict, args) -> None:
    print(f"budget {m:g} min per recipe, {args.image_size} px, n_eval {args.n_eval}, data {args.data}")
    print("recipe | steps  | img/s | SWD avg (x1e3) | per level                  | FID  | KID")
    for name, r in rows.items():
        levels = " ".join(f"{k[4:]}:{v:.1f}" for k, v in r.items() if k.startswith("swd_") and k != "swd_avg")
        print(f"{name:6s} | {r['steps']:6d} | {r['img_per_s']:5.0f} | {r['swd_avg']:14.2f} | {levels:26s} | "
              f"{r.get('fid', 'n/a')} | {r.get('kid_mean', 'n/a')}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
