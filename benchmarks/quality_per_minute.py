"""Quality per CPU minute: which change to the textbook DCGAN buys what, on one CPU core.

The arms form a chain. Arm `textbook` is the pytorch/examples DCGAN step in its own loop
(benchmarks/textbook_dcgan.py, no GAN Lab code). Arm `ourloop` runs the same settings in GAN Lab's
loop (`gan.train.fit`), and every later arm adds one change to the arm before it (`_chain` below), up
to GAN Lab's CPU recipe and the loss/normalisation changes the small-data literature suggests. A
branch arm (`sle`, `b16`) instead adds its one change to the arm it names (the CPU recipe's).

Every run trains with one torch thread, and its budget is the CPU time of the training process
(`time.process_time()` around the training steps; data loading, checkpoints at the stop,
sampling and evaluation are not counted), so other jobs on the machine do not bias the arms. One
run per (arm, seed) is evaluated on its way at each *cell*: 10 and 20 CPU minutes (the 20-minute
run stopped and evaluated at 10 minutes) and 1,000 steps (equal steps). Evaluation: SWD x1e3
(gan.metrics.swd, the average over the 64/32/16 px Laplacian levels, lower is better) of
2,048 samples against 2,048 training images drawn with a fixed seed, as `python -m gan eval`
does; GAN Lab arms are sampled from their exported model folder (EMA if on, BatchNorm
recalibrated), the textbook arm as its main.py draws samples (G in training mode, batches of 128).

Each cell's result is one JSON file in benchmarks/results/quality/, written when the cell is
done, so the experiment resumes across sessions: finished cells are skipped and an unfinished
run continues from its checkpoint (in runs/quality/).

    python benchmarks/quality_per_minute.py queue      # run every pending cell, most informative first
    python benchmarks/quality_per_minute.py run --arm xflip --seed 0 --cells 10min
    python benchmarks/quality_per_minute.py report     # -> benchmarks/results/quality_table.md, ...
    python benchmarks/quality_per_minute.py plan       # what the queue would run next

The queue runs `--workers` training processes at a time (default 1; each a one-thread subprocess with
its own log in runs/quality/logs/); start it in the background with nohup.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DATA = ROOT.parent / "shared" / "datasets" / "cats64.zip"
RESULTS = ROOT / "benchmarks" / "results" / "quality"
RUNS = ROOT / "runs" / "quality"
IMAGE_SIZE = 64
SEEDS = (0, 1, 2)
EVAL_SEED = 0  # which real images are compared, and the SWD projections: the same for every cell
EMA_PLAN_STEPS = 2500  # the steps a batch-32 arm makes in 20 CPU minutes here: EMA decay ema_decay_for(2500)
R1_GAMMA = 0.1  # R1 weight gamma/2 on |grad D(x)|^2, lazily every 16 steps (StyleGAN2)
# A learning-rate cool-down is scheduled over a run's planned steps, so an arm with one trains a run
# per cell, planned to end at the cell: at the x-flips arm's mean steps at that CPU budget (the same
# model and batch, so the same CPU time per step; quality_results.json), or at the step cell.
CELL_STEPS = {"10min": 1405, "20min": 3177}  # on the AVX2 EPYC; see planned_steps for another machine


def planned_steps(results: Path) -> dict[str, int]:
    """CELL_STEPS from the x-flips arm's runs in `results` (round of the mean steps per time cell),
    so a per-cell arm run on another machine or precision (e.g. bf16 on AMX: ~5,600 steps in 20 CPU
    minutes) is planned to end where that machine's x-flips runs got; CELL_STEPS where there are none.
    For benchmarks/results/quality/ this gives CELL_STEPS exactly."""
    by: dict[str, list[int]] = {}
    for r in load_results(results):
        if r["arm"] == "xflip" and r["cell"].endswith("min"):
            by.setdefault(r["cell"], []).append(r["step"])
    return {**CELL_STEPS, **{c: round(statistics.fmean(st)) for c, st in by.items()}}


# ---------------------------------------------------------------------------------------------
# the arms: each adds one change to the one before it


@dataclass(frozen=True)
class Arm:
    name: str
    change: str  # what this arm changes relative to the previous one
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields (cumulative)
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields (cumulative)
    textbook: bool = False  # run by benchmarks/textbook_dcgan.py instead of gan.train.fit
    needs_r1: bool = False

    @property
    def per_cell(self) -> bool:
        """One run per cell (a schedule planned to end at the cell), not one run evaluated on its way."""
        return self.train.get("cooldown", 0) > 0

    def configs(self, seed: int, cell: str | None = None, precision: str | None = None):
        """(ModelConfig, TrainConfig) for gan.train.fit; a per-cell arm plans its run to end at `cell`;
        `precision` overrides the arm's (to match, on another CPU class, what auto chose on the arm's
        other seeds: auto is fp32 on AVX2 and bf16 where bf16 is native)."""
        from gan.config import ModelConfig, TrainConfig

        steps = 10_000_000
        if self.per_cell and cell is not None:
            plan = planned_steps(Path(ARGS.results)) if "ARGS" in globals() else CELL_STEPS
            if cell in plan:
                steps = plan[cell]
            elif cell.endswith("min"):  # another budget (smoke tests): this machine's rough rate
                steps = max(2, int(60 * float(cell.removesuffix("min")) / self.sec_per_step()))
            else:
                steps = int(cell.removesuffix("steps"))
        m = ModelConfig(image_size=IMAGE_SIZE, channels=3, **self.model)
        train = {**self.train, "precision": precision} if precision else self.train
        t = TrainConfig(
            **train, seed=seed, steps=steps, threads=1, log_every=1, sample_every=0,
            checkpoint_every=self.checkpoint_every(), n_sample=64,
        )  # fmt: skip
        return m, t

    def sec_per_step(self) -> float:
        """Rough CPU seconds per step here (measured: widths 64 batch 128 ~6 s; widths 32 batch 32 ~0.45 s)."""
        w = self.model.get("g_width", 64) / 32
        return 0.012 * self.train.get("batch_size", 128) * w * w

    def checkpoint_every(self) -> int:
        """Steps between checkpoints: about every 2 CPU minutes."""
        return max(5, int(120 / self.sec_per_step()))


def _chain() -> list[Arm]:
    from gan.recipes import ema_decay_for

    textbook_model = {"g_width": 64, "d_width": 64, "g_style": "deconv", "d_norm": "batch"}
    textbook_train = {
        "batch_size": 128, "loss": "bce", "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999,
        "augment": "none", "xflip": False, "ema_decay": 0.0, "precision": "auto", "r1_gamma": 0.0,
    }  # fmt: skip
    steps = [
        ("ourloop", "textbook settings in GAN Lab's loop (channels-last, fused Adam, BN recalibrated "
         "for sampling), precision auto", {}, {}),
        ("w32", "widths 64 -> 32 (G and D)", {"g_width": 32, "d_width": 32}, {}),
        ("b64", "batch 128 -> 64", {}, {"batch_size": 64}),
        ("b32", "batch 64 -> 32", {}, {"batch_size": 32}),
        ("diffaug", "+ DiffAugment (colour, translation, cutout) on everything D sees", {}, {"augment": "diffaugment"}),
        ("ema", f"+ EMA of G's weights (decay ema_decay_for({EMA_PLAN_STEPS}) = "
         f"{ema_decay_for(EMA_PLAN_STEPS):.4f}, ramped up)", {}, {"ema_decay": ema_decay_for(EMA_PLAN_STEPS)}),
        ("xflip", "+ random x-flips of the real images", {}, {"xflip": True}),
        ("hinge_sn", "hinge loss + spectral norm in D (instead of BCE + BatchNorm)", {"d_norm": "spectral"},
         {"loss": "hinge"}),
        ("r1", f"+ lazy R1 penalty (gamma {R1_GAMMA:g}, every 16 steps)", {}, {"r1_gamma": R1_GAMMA, "r1_every": 16}),
        ("lr_d", "+ lr_d 2e-4 -> 1e-4", {}, {"lr_d": 1e-4}),
        # a branch: one change to the CPU recipe's arm rather than to the row above
        ("sle", "`xflip` + skip-layer excitation in G (lightweight-gan; 4x4 gates 16x16, 8x8 gates 32x32)",
         {"g_sle": True}, {}, "xflip"),
        ("b16", "`xflip` with batch 32 -> 16 (more steps per CPU minute; the same EMA decay)", {}, {"batch_size": 16},
         "xflip"),
        ("cool", "`xflip` + a learning-rate cool-down: the last quarter of the run at a quarter of both rates "
         "(a run per cell, planned to end at it)", {}, {"cooldown": 0.25, "cooldown_lr": 0.25}, "xflip"),
    ]  # fmt: skip
    arms = [Arm("textbook", "pytorch/examples DCGAN step in its own loop (benchmarks/textbook_dcgan.py), fp32",
                textbook_model, textbook_train, textbook=True)]  # fmt: skip
    m, t = dict(textbook_model), dict(textbook_train)
    for name, change, dm, dt, *base in steps:
        if base:  # branch off the named arm
            b = next(a for a in arms if a.name == base[0])
            m, t = dict(b.model), dict(b.train)
        m, t = {**m, **dm}, {**t, **dt}
        arms.append(Arm(name, change, m, t, needs_r1=t.get("r1_gamma", 0) > 0))
    return arms


def arms() -> dict[str, Arm]:
    return {a.name: a for a in _chain()}


def cpu_recipe_arm() -> str | None:
    """The arm whose settings are today's RECIPES['cpu'] (the app's default), if any."""
    from gan.recipes import get_recipe

    rm, rt = get_recipe("cpu").configs(image_size=IMAGE_SIZE, channels=3, steps=EMA_PLAN_STEPS)
    for a in _chain():
        if a.textbook:
            continue
        m, t = a.configs(0)
        if m == rm and all(getattr(t, k) == getattr(rt, k) for k in _RECIPE_FIELDS):
            return a.name
    return None


_RECIPE_FIELDS = (
    "batch_size", "lr_g", "lr_d", "beta1", "beta2", "loss", "r1_gamma", "r1_every", "ema_decay", "augment",
    "xflip", "precision",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# cells: the points of a run that are evaluated


@dataclass(frozen=True)
class Cell:
    name: str  # "10min", "20min", "1000steps"
    cpu_s: float | None = None
    step: int | None = None

    def met(self, step: int, cpu_s: float) -> bool:
        return (self.cpu_s is not None and cpu_s >= self.cpu_s) or (self.step is not None and step >= self.step)


def make_cells(minutes: list[float], steps: list[int]) -> list[Cell]:
    return [Cell(f"{m:g}min", cpu_s=60.0 * m) for m in minutes] + [Cell(f"{s}steps", step=s) for s in steps]


def result_path(results: Path, arm: str, seed: int, cell: str) -> Path:
    return results / f"{arm}__seed{seed}__{cell}.json"


def load_results(results: Path) -> list[dict]:
    out = []
    for p in sorted(results.glob("*__seed*__*.json")):
        r = json.loads(p.read_text())
        r["_file"] = str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
        out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# one run: train an (arm, seed) until the wanted cells are evaluated


def _log(fh, msg: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, file=fh, flush=True)


def _source_hash() -> str:
    """sha256 of gan/*.py and textbook_dcgan.py: which training code produced a result (the arm's
    settings are in the result itself)."""
    h = hashlib.sha256()
    files = sorted((ROOT / "gan").glob("*.py")) + [ROOT / "benchmarks" / "textbook_dcgan.py"]
    for p in files:
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""


class EvalSet:
    """The real images every cell is compared with, loaded once per process."""

    def __init__(self, data: Path, n: int, limit: int | None) -> None:
        import torch

        from gan.data import load_images

        imgs = load_images(str(data), IMAGE_SIZE, 3).images
        if limit:
            imgs = imgs[:limit]
        self.train_images = imgs  # uint8 (N, 3, 64, 64), what GAN Lab arms train on
        g = torch.Generator().manual_seed(EVAL_SEED)
        self.real = imgs[torch.randperm(len(imgs), generator=g)[:n]]  # as gan/evaluate.py draws them
        self.n = len(self.real)


def evaluate_images(fake, ev: EvalSet) -> dict[str, float]:
    from gan.metrics import swd

    return swd(ev.real, fake[: ev.n], seed=EVAL_SEED)


def save_grid(fake, path: Path) -> None:
    from gan.sampling import make_grid, save_png

    save_png(make_grid(fake[:64], nrow=8), path)


CROP = 2 + 6 * (IMAGE_SIZE + 2)  # a 6x6 corner of a run's 8x8 sample grid, in pixels


def crop_path(results: Path, arm: str, seed: int, cell: str) -> Path:
    """A cell's sample grid as kept with its JSON: a 6x6 JPEG crop under results/grids/ (the run's
    full PNG lives in runs/, which dies with its machine)."""
    return results / "grids" / f"{arm}__seed{seed}__{cell}.jpg"


def store_crop(png: Path, dst: Path) -> Path:
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp.jpg")
    Image.open(png).convert("RGB").crop((0, 0, CROP, CROP)).save(tmp, quality=88)
    return tmp.replace(dst)


def write_cell(results: Path, rec: dict) -> Path:
    from gan.fileio import atomic_write_text

    path = result_path(results, rec["arm"], rec["seed"], rec["cell"])
    return atomic_write_text(path, json.dumps(rec, indent=2, sort_keys=True, allow_nan=False) + "\n")


def run(arm: Arm, seed: int, want: list[str], cells: list[Cell], args) -> int:
    """Train (arm, seed), resuming its checkpoint, until every cell in `want` is recorded.
    Cells met on the way are evaluated too. Returns a process exit code."""
    import torch

    from gan.device import choose_precision, machine_summary

    torch.set_num_threads(1)
    log = sys.stdout
    if arm.per_cell and len(want) > 1:  # one run per cell
        return max(run(arm, seed, [w], cells, args) for w in want)
    results, run_dir = Path(args.results), Path(args.runs) / arm.name / f"seed{seed}"
    if arm.per_cell:
        run_dir = run_dir.with_name(f"seed{seed}_{want[0]}")
        cells = [c for c in cells if c.name == want[0]]
    run_dir.mkdir(parents=True, exist_ok=True)
    pending = [c for c in cells if not result_path(results, arm.name, seed, c.name).exists()]
    todo = [c for c in pending if c.name in want]
    if not todo:
        _log(log, f"{arm.name} seed {seed}: {', '.join(want)} already recorded")
        return 0
    if arm.needs_r1 and not _r1_supported():
        _log(log, f"{arm.name}: gan.train.Trainer does not apply r1_gamma yet; not run")
        return 3
    ev = EvalSet(Path(args.data), args.n_eval, args.limit_images)
    common = {
        "arm": arm.name, "change": arm.change, "seed": seed, "threads": torch.get_num_threads(),
        "machine": machine_summary(), "data": Path(args.data).name, "n_train_images": len(ev.train_images),
        "n_eval": ev.n, "eval_seed": EVAL_SEED, "git_head": _git_head(), "source_hash": _source_hash(),
        "budget_clock": "time.process_time() of the training process, around the training steps, 1 torch thread",
    }  # fmt: skip
    if arm.textbook:
        common["precision"] = {"requested": "fp32", "chosen": "fp32", "reason": "the textbook script is fp32"}
        common["config"] = {"model": arm.model, "train": {**arm.train, "precision": "fp32"}}
    else:
        m, t = arm.configs(seed, want[0], getattr(args, "precision", None))
        pc = choose_precision(t.precision, torch.device("cpu"))
        common["precision"] = {"requested": pc.requested, "chosen": pc.precision, "reason": pc.reason}
        if getattr(args, "precision", None):  # the arm's own setting, overridden for this machine
            common["precision"]["arm_requests"] = arm.train.get("precision", "auto")
        common["config"] = {"model": m.to_dict(), "train": t.to_dict()}
    trainer = _train_textbook if arm.textbook else _train_ganlab
    while todo:
        # stop at the first pending cell reached (any cell, wanted or not: one run, evaluated on its way)
        def stop_at(step: int, cpu_s: float, pending: tuple[Cell, ...] = tuple(pending)) -> bool:
            return any(c.met(step, cpu_s) for c in pending)

        state = trainer(arm, seed, run_dir, ev, stop_at, log, want[0])
        if state.get("diverged"):
            _log(log, f"{arm.name} seed {seed}: diverged at step {state['step']}: {state['message']}")
        met = [c for c in pending if c.met(state["step"], state["cpu_s"])]
        if arm.per_cell and state.get("finished"):  # the planned run ended a little before its CPU budget
            met = pending
        if not met and not state.get("diverged"):
            _log(log, f"{arm.name} seed {seed}: stopped at step {state['step']} before any cell; giving up")
            return 1
        t0 = time.process_time()
        res = evaluate_images(state["fake"], ev)
        eval_cpu = time.process_time() - t0
        for c in met or pending:
            grid = run_dir / f"grid_{c.name}.png"
            save_grid(state["fake"], grid)
            store_crop(grid, crop_path(results, arm.name, seed, c.name))
            rec = {
                **common, "cell": c.name, "target": {"cpu_s": c.cpu_s, "step": c.step},
                "step": state["step"], "cpu_s": round(state["cpu_s"], 1), "wall_s": round(state["wall_s"], 1),
                "images_seen": state["images_seen"], "img_per_cpu_s": round(state["images_seen"] / state["cpu_s"], 2),
                "cpu_estimated": state.get("cpu_estimated", False), "diverged": bool(state.get("diverged")),
                "swd": {k: round(v, 3) for k, v in res.items()}, "eval_cpu_s": round(eval_cpu, 1),
                "grid": str(grid.relative_to(ROOT)) if grid.is_relative_to(ROOT) else str(grid),
                "recorded_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            }  # fmt: skip
            p = write_cell(results, rec)
            _log(log, f"{arm.name} seed {seed} {c.name}: step {rec['step']}, {rec['cpu_s']:.0f} CPU s, "
                      f"SWD {res['swd_avg']:.1f} -> {p.name}")  # fmt: skip
        if state.get("diverged"):
            return 0
        pending = [c for c in pending if c not in met]
        todo = [c for c in todo if c not in met]
    return 0


def _r1_supported() -> bool:
    import inspect

    from gan import train

    return "r1_gamma" in inspect.getsource(train.Trainer)


def _progress(run_dir: Path) -> dict:
    p = run_dir / "progress.json"
    return json.loads(p.read_text()) if p.exists() else {"step": 0, "cpu_s": 0.0, "wall_s": 0.0, "images_seen": 0}


def _save_progress(run_dir: Path, prog: dict) -> None:
    from gan.fileio import atomic_write_json

    atomic_write_json(run_dir / "progress.json", prog)


def _train_ganlab(arm: Arm, seed: int, run_dir: Path, ev: EvalSet, stop_at, log, cell: str) -> dict:
    """One fit() segment: from the run's checkpoint (if any) until stop_at(step, cpu_s); returns the
    state at the stop with 2,048 samples of the exported model (EMA if on, BN recalibrated)."""
    import torch

    from gan.hub import load_model
    from gan.sampling import sample
    from gan.train import CKPT_NAME, Checkpoint, Done, Rollback, Started, StepLog, fit, load_checkpoint

    m, t = arm.configs(seed, cell, getattr(ARGS, "precision", None))
    ckpt = run_dir / CKPT_NAME
    prog = _progress(run_dir)
    estimated = prog.get("cpu_estimated", False)
    if ckpt.exists():
        meta, _ = load_checkpoint(ckpt)
        if meta["step"] != prog["step"]:  # killed between the checkpoint and progress.json: extrapolate
            rate = prog["cpu_s"] / prog["step"] if prog["step"] else arm.sec_per_step()
            _log(log, f"checkpoint at step {meta['step']}, progress at {prog['step']}: CPU time extrapolated")
            prog = {**prog, "step": meta["step"], "cpu_s": prog["cpu_s"] + rate * (meta["step"] - prog["step"]),
                    "images_seen": prog["images_seen"] + t.batch_size * (meta["step"] - prog["step"])}  # fmt: skip
            estimated = True
    stop = threading.Event()
    cpu_base, wall_base, seen_base = prog["cpu_s"], prog["wall_s"], prog["images_seen"]
    step0 = prog["step"]
    cur = dict(prog, cpu_estimated=estimated)
    c0 = w0 = 0.0
    done = None
    events = fit(None if ckpt.exists() else m, t, ev.train_images, out_dir=run_dir,
                 resume=ckpt if ckpt.exists() else None, stop=stop)  # fmt: skip
    for e in events:
        if isinstance(e, Started):
            c0, w0 = time.process_time(), time.perf_counter()
            _log(log, f"{arm.name} seed {seed}: fit from step {e.step} ({cpu_base:.0f} CPU s), precision {e.precision}")
        elif isinstance(e, StepLog):
            cur = {
                "step": e.step, "cpu_s": cpu_base + time.process_time() - c0,
                "wall_s": wall_base + time.perf_counter() - w0, "cpu_estimated": estimated,
                "images_seen": seen_base + (e.step - step0) * t.batch_size, "loss_d": e.loss_d, "loss_g": e.loss_g,
            }  # fmt: skip
            if e.step % 100 == 0:
                _log(log, f"step {e.step} cpu {cur['cpu_s']:.0f}s loss_d {e.loss_d:.3f} loss_g {e.loss_g:.3f} "
                          f"D(x) {e.d_real:.3f} D(G(z)) {e.d_fake:.3f}")  # fmt: skip
            if stop_at(e.step, cur["cpu_s"]):
                stop.set()
        elif isinstance(e, Checkpoint):
            _save_progress(run_dir, {**cur, "step": e.step})
        elif isinstance(e, Rollback):
            _log(log, f"rollback: {e.message}")
            step0, seen_base = e.to_step, cur["images_seen"]  # wasted steps still cost CPU and images
        elif isinstance(e, Done):
            done = e
    if done is None or done.reason == "diverged" or done.model_dir is None:
        msg = done.message if done else "fit ended without Done"
        return {**cur, "diverged": True, "message": msg, "fake": _diverged_samples(ev)}
    cur["step"] = done.step
    cur["finished"] = done.reason == "finished"
    _save_progress(run_dir, cur)
    G = load_model(done.model_dir)
    with torch.no_grad():
        fake = sample(G, range(ev.n))
    return {**cur, "fake": fake}


def _diverged_samples(ev: EvalSet):
    import torch

    return torch.full_like(ev.real, 128)  # a diverged run is scored as flat grey images


def _train_textbook(arm: Arm, seed: int, run_dir: Path, ev: EvalSet, stop_at, log, cell: str) -> dict:
    import textbook_dcgan as tb_mod

    images = tb_mod.load_zip(ARGS.data)
    if ARGS.limit_images:
        images = images[: ARGS.limit_images]
    tb = tb_mod.Textbook(images, seed)
    if tb.load(run_dir):
        _log(log, f"textbook seed {seed}: resumed at step {tb.step_count} ({tb.cpu_s:.0f} CPU s)")
    prog = _progress(run_dir)
    wall0, step0 = time.perf_counter(), tb.step_count
    tb_mod.train(tb, run_dir, stop_at, log=lambda s: _log(log, s) if tb.step_count % 50 == 0 else None)
    cur = {
        "step": tb.step_count, "cpu_s": tb.cpu_s,
        "wall_s": (prog["wall_s"] if prog["step"] == step0 else 0.0) + time.perf_counter() - wall0,
        "images_seen": tb.epoch * len(images) + min(tb.i * tb_mod.BATCH_SIZE, len(images)),
    }  # fmt: skip
    _save_progress(run_dir, cur)
    return {**cur, "fake": tb.samples(ev.n, seed=EVAL_SEED)}


def floor(args) -> dict:
    """SWD of the evaluation's real images against as many *other* training images: the score of a
    perfect generator that memorised nothing, give or take sampling noise."""
    import torch

    from gan.data import load_images
    from gan.fileio import atomic_write_text
    from gan.metrics import swd

    torch.set_num_threads(1)
    imgs = load_images(str(args.data), IMAGE_SIZE, 3).images
    perm = torch.randperm(len(imgs), generator=torch.Generator().manual_seed(EVAL_SEED))
    n = min(args.n_eval, len(imgs) // 2)
    res = swd(imgs[perm[:n]], imgs[perm[n : 2 * n]], seed=EVAL_SEED)
    rec = {"what": "real vs real: the evaluation's real images against as many other training images",
           "n_eval": n, "data": Path(args.data).name, "swd": {k: round(v, 3) for k, v in res.items()}}  # fmt: skip
    atomic_write_text(Path(args.results) / "real_vs_real.json", json.dumps(rec, indent=2, allow_nan=False) + "\n")
    return rec


# ---------------------------------------------------------------------------------------------
# the queue: most informative cells first


# the newest candidate (cool) first among the others: its cells say more than the known losers' later ones
PRIORITY = ["xflip", "textbook", "cool", "hinge_sn", "b32", "diffaug", "ema", "w32", "ourloop", "b64", "r1", "lr_d"]


def plan(results: Path, cells: list[Cell]) -> list[tuple[str, int, str]]:
    """(arm, seed, cell) still to do, in order: every arm at seed 0 for the first time cell; then
    seeds 1-2 for today's recipe and the three best arms so far (the candidates to replace it);
    then the other arms' seeds (the textbook's ~85 steps of grey noise among them); then the later
    time cells; then the step cells the time runs did not reach."""
    all_arms = arms()
    order = [a for a in PRIORITY if a in all_arms] + [a for a in all_arms if a not in PRIORITY]
    time_cells = [c.name for c in cells if c.cpu_s is not None]
    step_cells = [c.name for c in cells if c.step is not None]
    first = time_cells[0] if time_cells else step_cells[0]
    done = {(r["arm"], r["seed"], r["cell"]): r for r in load_results(results)}
    seed0 = {a: done[(a, 0, first)]["swd"]["swd_avg"] for a in order if (a, 0, first) in done}
    recipe = cpu_recipe_arm() or "xflip"
    best = [a for a in sorted(seed0, key=seed0.get) if a != recipe][:3]
    key = [a for a in [recipe, *best] if a in all_arms]
    key = list(dict.fromkeys(key))
    rest = [a for a in order if a not in key]
    items: list[tuple[str, int, str]] = []
    items += [(a, 0, first) for a in order]
    items += [(a, s, first) for a in key for s in SEEDS[1:]]
    items += [(a, s, first) for a in rest for s in SEEDS[1:]]
    for c in time_cells[1:]:
        items += [(a, s, c) for a in key + rest for s in SEEDS]
    for c in step_cells:
        items += [(a, s, c) for a in key + rest for s in SEEDS]
    return [it for it in dict.fromkeys(items) if it not in done]


def queue(args, cells: list[Cell]) -> None:
    """Run the plan, `--workers` training processes at a time (each one thread; never two runs of
    the same arm and seed at once), until everything is recorded."""
    runs = Path(args.runs)
    (runs / "logs").mkdir(parents=True, exist_ok=True)
    lock = open(runs / "queue.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another queue is running (lock {runs / 'queue.lock'})")
    lock.write(str(os.getpid()))
    lock.flush()
    qlog = open(runs / "queue.log", "a")
    failed: set[tuple[str, int]] = set()
    running: dict[tuple[str, int], tuple[subprocess.Popen, str, float, Any]] = {}
    while True:
        for key, (proc, c, t0, fh) in list(running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            fh.close()
            del running[key]
            _log(qlog, f"end {key[0]} seed {key[1]} {c}: exit {rc} after {(time.time() - t0) / 60:.1f} min wall")
            if rc != 0 or not result_path(Path(args.results), key[0], key[1], c).exists():
                failed.add(key)
        items = [it for it in plan(Path(args.results), cells) if (it[0], it[1]) not in failed | set(running)]
        if not items and not running:
            if failed:  # the code may have been mid-edit: try the failed runs again in a while
                _log(qlog, f"only failed runs left ({sorted(failed)}); retrying in 10 min")
                time.sleep(600)
                failed.clear()
                continue
            _log(qlog, "all cells recorded")
            return
        if items and len(running) < args.workers:
            a, s, c = items[0]
            logf = runs / "logs" / f"{a}_seed{s}.log"
            cmd = [sys.executable, str(Path(__file__).resolve()), *_common_argv(args), "run", "--arm", a, "--seed",
                   str(s), "--cells", c]  # fmt: skip
            _log(qlog, f"start {a} seed {s} {c} (log {logf})")
            fh = open(logf, "a")
            running[(a, s)] = (subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT), c, time.time(), fh)
            continue
        time.sleep(5)


def _common_argv(args) -> list[str]:
    # the list options first: a scalar option after them ends the list before the subcommand
    argv = ["--minutes", *[f"{m:g}" for m in args.minutes], "--steps", *[str(s) for s in args.steps],
            "--data", str(args.data), "--results", str(args.results), "--runs", str(args.runs),
            "--n-eval", str(args.n_eval)]  # fmt: skip
    if args.limit_images:
        argv += ["--limit-images", str(args.limit_images)]
    return argv


# ---------------------------------------------------------------------------------------------
# command line


ARGS: argparse.Namespace


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--results", default=str(RESULTS), help="folder of the per-cell JSON files")
    p.add_argument("--runs", default=str(RUNS), help="folder of the runs' checkpoints and logs")
    p.add_argument("--minutes", type=float, nargs="+", default=[10.0, 20.0], help="CPU-time cells")
    p.add_argument("--steps", type=int, nargs="*", default=[1000], help="equal-step cells")
    p.add_argument("--n-eval", type=int, default=2048, help="samples and real images compared")
    p.add_argument("--limit-images", type=int, default=0, help="train on the first N images only (smoke tests)")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train one (arm, seed) until the given cells are recorded")
    r.add_argument("--arm", required=True, choices=list(arms()))
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--cells", nargs="+", required=True)
    r.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default=None,
        help="override the arm's precision, e.g. fp32 on an AMX CPU to match auto's choice on AVX2 "
        "for the arm's other seeds (recorded in the cell's JSON)",
    )
    q = sub.add_parser("queue", help="run every pending cell, --workers processes at a time")
    q.add_argument("--workers", type=int, default=1, help="training processes at once (each uses one core)")
    sub.add_parser("plan", help="print what the queue would run, in order")
    sub.add_parser("report", help="write quality_table.md, quality_results.json and the grids")
    sub.add_parser("floor", help="SWD of real images against other real images (the floor)")
    return p.parse_args(argv)


def main() -> None:
    global ARGS
    ARGS = args = parse_args()
    cells = make_cells(args.minutes, args.steps)
    if args.cmd == "run":
        unknown = sorted(set(args.cells) - {c.name for c in cells})
        if unknown:
            sys.exit(f"unknown cell(s) {unknown}; cells are {[c.name for c in cells]}")
        sys.exit(run(arms()[args.arm], args.seed, args.cells, cells, args))
    elif args.cmd == "queue":
        queue(args, cells)
    elif args.cmd == "plan":
        for it in plan(Path(args.results), cells):
            print(*it)
    elif args.cmd == "floor":
        print(floor(args))
    else:  # the report's code lives beside this file and imports this one: run it, never import it back
        sys.exit(subprocess.call([sys.executable, str(Path(__file__).with_name("quality_report.py")), *sys.argv[1:]]))


if __name__ == "__main__":
    main()
