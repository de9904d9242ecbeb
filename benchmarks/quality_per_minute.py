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
OURS: list[str] = []  # the defaults of ModelConfig and TrainConfig


def train(name: str, extra: list[str], args, threads: int) -> subprocess.Popen:
    out = Path(args.out) / name
    cmd = [
        sys.executable, "-m", "gan", "train", "--data", args.data, "--out", str(out),
        "--steps", "10000000", "--max-minutes", str(args.minutes), "--sample-every", "0",
        "--checkpoint-every", "0", "--log-every", "50", "--quiet", "--image-size", str(args.image_size),
        "--threads", str(threads), "--seed", str(args.seed), *extra,
    ]  # fmt: skip
    if out.exists():
        import shutil

        shutil.rmtree(out)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(Path(args.out) / f"{name}.log", "w")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def steps_done(name: str, args) -> tuple[int, float]:
    lines = (Path(args.out) / name / "log.jsonl").read_text().splitlines()
    logs = [json.loads(x) for x in lines if '"StepLog"' in x]
    last = logs[-1]
    return last["step"], float(np.median([x["img_per_s"] for x in logs[1:]] or [last["img_per_s"]]))


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
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock training budget per recipe")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--n-eval", type=int, default=2048, help="samples and real images compared")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel", action="store_true", help="train both at once, one thread each")
    p.add_argument("--out", default=str(ROOT / "runs" / "quality"))
    p.add_argument("--skip-train", action="store_true", help="evaluate existing runs in --out")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)

    recipes = {"plain": PLAIN, "ours": OURS}
    if not args.skip_train:
        t0 = time.time()
        if args.parallel:
            procs = [train(n, r, args, threads=1) for n, r in recipes.items()]
            codes = [pr.wait() for pr in procs]
        else:
            threads = os.cpu_count() or 1
            codes = [train(n, r, args, threads=threads).wait() for n, r in recipes.items()]
        if any(codes):
            sys.exit(f"a training run failed (exit codes {codes}); see {args.out}/*.log")
        print(f"trained both recipes for {args.minutes:g} min each in {(time.time() - t0) / 60:.1f} min wall")

    from gan import load_model
    from gan.evaluate import evaluate_model
    from gan.sampling import make_grid, sample, save_png

    results = {}
    for name in recipes:
        model = Path(args.out) / name / "model"
        res = evaluate_model(model, args.data, n=args.n_eval, write=True, seed=args.seed)
        steps, ips = steps_done(name, args)
        res.update(steps=steps, img_per_s=ips)
        results[name] = res
        save_png(make_grid(sample(load_model(model), range(64)), nrow=8), Path(args.out) / f"{name}_grid.png")

    a, b = results["plain"], results["ours"]
    panels = [
        labelled(Path(args.out) / "plain_grid.png", f"plain pytorch/examples recipe: {args.minutes:g} min, "
                 f"{a['steps']} steps, SWD {a['swd_avg']:.2f}"),
        labelled(Path(args.out) / "ours_grid.png", f"GAN Lab default recipe: {args.minutes:g} min, "
                 f"{b['steps']} steps, SWD {b['swd_avg']:.2f}"),
    ]  # fmt: skip
    side = Image.new("RGB", (sum(p.width for p in panels) + 16, max(p.height for p in panels)), "white")
    side.paste(panels[0], (0, 0))
    side.paste(panels[1], (panels[0].width + 16, 0))
    side_path = Path(args.out) / f"side_by_side_{args.minutes:g}min.png"
    side.save(side_path)

    print(f"data {args.data}, {args.image_size} px, budget {args.minutes:g} min per recipe, n_eval {args.n_eval}")
    print("recipe | steps | img/s | SWD avg (x1e3) | per level | FID | KID")
    for name, r in results.items():
        levels = " ".join(f"{k[4:]}:{v:.2f}" for k, v in r.items() if k.startswith("swd_") and k != "swd_avg")
        print(f"{name:6s} | {r['steps']:5d} | {r['img_per_s']:5.0f} | {r['swd_avg']:14.2f} | {levels} | "
              f"{r.get('fid', 'n/a')} | {r.get('kid_mean', 'n/a')}")  # fmt: skip
    print(f"side by side: {side_path}")
    (Path(args.out) / f"results_{args.minutes:g}min.json").write_text(json.dumps(results, indent=2))
    print(f"SWD ours / plain: {b['swd_avg'] / a['swd_avg']:.2f} ({1 - b['swd_avg'] / a['swd_avg']:.0%} lower)")


if __name__ == "__main__":
    main()
