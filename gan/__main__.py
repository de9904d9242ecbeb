"""Command line: `python -m gan train|sample|interpolate|eval|export|push`.

Every option of ModelConfig and TrainConfig is a flag of `train` (`--help` shows each default).
Every `--model` takes a local model folder or a Hub repo id (user/name).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import types
import typing
from pathlib import Path

HELP = {
    "image_size": "image side in pixels, a power of two 16..256",
    "channels": "1 (grayscale) or 3 (RGB)",
    "z_dim": "latent size",
    "g_width": "generator base width (ngf)",
    "d_width": "discriminator base width (ndf)",
    "g_style": "deconv (ConvTranspose) or upsample (nearest + conv)",
    "d_norm": "discriminator normalisation: batch, spectral or none",
    "g_sle": "skip-layer excitation in G (lightweight-gan): 4x4 maps gate 16x16 ones, 8x8 gate 32x32, ...",
    "batch_size": "images per step (per process under torchrun)",
    "steps": "generator updates to train for",
    "epochs": "stop after this many passes over the data (if sooner than --steps)",
    "max_minutes": "stop after this many minutes of training (0 = no limit)",
    "lr_g": "generator learning rate",
    "lr_d": "discriminator learning rate",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "loss": "bce (non-saturating) or hinge",
    "ema_decay": "EMA decay of the generator's weights (0 = off)",
    "augment": "none, classic (flip/rotate/shift/zoom) or diffaugment (color/translation/cutout)",
    "xflip": "mirror real images at random",
    "precision": "auto (bf16 only where the device runs it natively and faster), fp32, or bf16",
    "cooldown": "the last fraction of --steps (or of --max-minutes, if that comes first) trains at --cooldown-lr times "
    "the learning rates (0 = off)",
    "cooldown_lr": "learning-rate factor of the cool-down",
    "seed": "random seed: the same seed gives the same run",
    "sample_every": "write a sample grid every N steps (0 = off)",
    "checkpoint_every": "write a checkpoint every N steps (0 = only at the end)",
    "log_every": "log losses every N steps",
    "device": "auto, cpu, cuda or mps",
    "compile": "torch.compile: off, on, or auto (on for long runs)",
    "threads": "CPU threads for torch (0 = every core this process may use)",
    "n_sample": "images in the fixed-seed sample grid",
    "metric_every": "cheap SWD on 256 samples every N steps (0 = off)",
}


def _field_type(f: dataclasses.Field, owner: type) -> type:
    hints = typing.get_type_hints(owner)
    t = hints[f.name]
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return t


def _add_config_flags(p: argparse.ArgumentParser, cls: type, title: str) -> None:
    g = p.add_argument_group(title)
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        t = _field_type(f, cls)
        default = f.default
        flag = "--" + f.name.replace("_", "-")
        help_ = f"{HELP.get(f.name, f.name)} (default: {'none' if default is None else default})"
        if t is bool:
            g.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            g.add_argument(flag, dest=f.name, type=t, default=None, help=help_, metavar=t.__name__.upper())


def _collect(args: argparse.Namespace, cls: type) -> dict:
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.name != "extra" and getattr(args, f.name, None) is not None
    }


def build_parser() -> argparse.ArgumentParser:
    from .config import ModelConfig, TrainConfig
    from .recipes import RECIPES

    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(prog="python -m gan", description="GAN Lab: train, sample and share DCGANs.")
    sub = p.add_subparsers(dest="cmd", required=True)

    # each config flag names its own default (the config's, or the recipe's): no defaults formatter
    t = sub.add_parser("train", help="train a GAN")
    t.add_argument(
        "--data",
        default=None,
        help="folder, .zip, .npz, IDX file, hf://datasets/user/name, or synthetic "
        "(default: synthetic; when resuming, the run's own data)",
    )
    t.add_argument("--out", required=True, help="run folder: checkpoint, samples/, model/")
    t.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="start from a named recipe (" + "; ".join(f"{r.name}: {r.description}" for r in
                   RECIPES.values()) + "); flags given override it")  # fmt: skip
    t.add_argument("--resume", nargs="?", const="", default=None,
                   help="continue from a checkpoint (file or run folder; bare flag: the --out folder)")  # fmt: skip
    t.add_argument("--n-synthetic", type=int, default=None, help="images in the synthetic set (default: 2048)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(t, ModelConfig, "model")
    _add_config_flags(t, TrainConfig, "training")

    s = sub.add_parser("sample", help="render images from seeds", formatter_class=fmt)
    s.add_argument("--model", required=True, help="model folder or Hub repo id")
    s.add_argument("--seed", type=int, default=0, help="first seed; images use seeds S..S+n-1")
    s.add_argument("--n", type=int, default=16, help="number of images")
    s.add_argument("--truncation", type=float, default=1.0, help="truncation psi (0..2); <1 = safer samples")
    s.add_argument("--out", required=True, help="grid .png, or a folder (no extension) for one PNG per seed")
    s.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")

    i = sub.add_parser("interpolate", help="render a latent walk as GIF (or MP4)", formatter_class=fmt)
    i.add_argument("--model", required=True, help="model folder or Hub repo id")
    i.add_argument("--seeds", type=int, nargs="+", required=True, help="two or more seeds to walk through")
    i.add_argument("--frames", type=int, default=32, help="frames of the whole walk (all seeds)")
    i.add_argument("--mode", choices=["slerp", "lerp"], default="slerp", help="interpolation")
    i.add_argument("--loop", action="store_true", help="eased there and back: an animation that wraps around")
    i.add_argument("--fps", type=float, default=16.0, help="frames per second")
    i.add_argument("--scale", type=int, default=2, help="integer upscaling of the frames")
    i.add_argument("--truncation", type=float, default=1.0, help="truncation psi")
    i.add_argument("--out", required=True, help="walk.gif or walk.mp4 (the extension picks the format)")
    i.add_argument("--revision", default=None, help="Hub revision")

    e = sub.add_parser("eval", help="compute SWD (and FID/KID when Inception weights exist)", formatter_class=fmt)
    e.add_argument("--model", required=True, help="model folder or Hub repo id")
    e.add_argument("--data", required=True, help="the real images to compare with")
    e.add_argument("--n", type=int, default=2048, help="images to compare")
    e.add_argument("--inception-weights", default=None, help="path of the Inception-v3 weights file")
    e.add_argument("--write", action="store_true",
                   help="record the metrics in the model folder (metrics.json, the card); off by default")  # fmt: skip

    x = sub.add_parser("export", help="export a generator to ONNX (batch axis dynamic, BatchNorm folded)",
                       formatter_class=fmt)  # fmt: skip
    x.add_argument("--model", required=True, help="model folder or Hub repo id")
    x.add_argument("--onnx", required=True, help="output file, .onnx; checked against PyTorch with onnxruntime")
    x.add_argument("--revision", default=None, help="Hub revision")

    u = sub.add_parser("push", help="push a model folder to the Hugging Face Hub", formatter_class=fmt)
    u.add_argument("--model", required=True, help="model folder (or repo id to copy)")
    u.add_argument("--repo", required=True, help="target repo id, user/name")
    u.add_argument("--private", action="store_true", help="create the repo private")
    return p


def _open_model(spec: str, revision: str | None = None):
    from .hub import load_model

    return load_model(spec, revision=revision)


class _Refused(Exception):
    """A train command that cannot go on: its message, for stderr (exit code 2)."""


def _train_configs(args: argparse.Namespace, out: Path):
    """(model config, train config, resume path or None) from the flags, a recipe or a checkpoint."""
    from .config import ModelConfig, TrainConfig
    from .recipes import get_recipe
    from .train import CKPT_NAME, load_checkpoint

    model_kw = _collect(args, ModelConfig)
    if args.resume is not None:
        resume = Path(args.resume) if args.resume else out
        meta, _ = load_checkpoint(resume)
        mcfg = ModelConfig.from_dict(meta["model_config"])
        if args.recipe:
            raise _Refused("--recipe starts a new run; a resumed run keeps its own settings")
        if model_kw and mcfg.replace(**model_kw) != mcfg:
            raise _Refused(f"model options differ from the checkpoint's ({mcfg})")
        return mcfg, TrainConfig.from_dict(meta["train_config"]).replace(**_collect(args, TrainConfig)), resume
    if args.recipe:
        mcfg, tcfg = get_recipe(args.recipe).configs(**model_kw, **_collect(args, TrainConfig))
        tcfg = tcfg.replace(extra={**tcfg.extra, "recipe": args.recipe})
    else:
        mcfg, tcfg = ModelConfig(**model_kw), TrainConfig(**_collect(args, TrainConfig))
    if (out / CKPT_NAME).exists():
        raise _Refused(f"{out} already holds a run; use --resume to continue it or pick another --out")
    return mcfg, tcfg, None


class _Progress:
    """What the command line shows of gan.fit's events (rank 0 only under torchrun): a progress bar,
    warnings, the end; every event also goes to the run's log."""

    def __init__(self, out: Path, quiet: bool, is_main: bool):
        self.out, self.quiet, self.is_main = out, quiet, is_main
        self.bar = self.log = None
        self.rc = 0

    def started(self, ev) -> None:
        from tqdm import tqdm

        from .runlog import LOG_NAME, RunLog

        if self.log is None and self.is_main:  # rank 0 writes the log
            self.log = RunLog(self.out / LOG_NAME)
        if not self.is_main:
            return
        print(
            f"training {ev.n_images} images on {ev.device} ({ev.precision}), batch {ev.batch_size}"
            f" per process x {ev.world_size} = {ev.batch_size * ev.world_size} global,"
            f" steps {ev.step}->{ev.steps}, {ev.threads} threads"
        )
        print(f"precision {ev.precision_reason}")
        if ev.warning:
            print(f"warning: {ev.warning}", file=sys.stderr)
        self.bar = tqdm(total=ev.steps, initial=ev.step, disable=self.quiet or self.log is None, unit="step")

    def show(self, ev) -> None:
        from tqdm import tqdm

        from .train import Done, Rollback, Samples, Started, StepLog

        bar = self.bar
        if isinstance(ev, Started):
            self.started(ev)
        elif isinstance(ev, StepLog) and bar is not None:
            bar.update(ev.step - bar.n)
            bar.set_postfix(d=f"{ev.loss_d:.3f}", g=f"{ev.loss_g:.3f}", ips=f"{ev.img_per_s:.0f}")
        elif isinstance(ev, Rollback):
            tqdm.write(f"warning: {ev.message}")
        elif isinstance(ev, Samples) and bar is not None and not self.quiet:
            tqdm.write(f"step {ev.step}: samples -> {ev.path}")
        elif isinstance(ev, Done) and self.is_main:
            if bar is not None:
                bar.update(ev.step - bar.n)
                bar.close()
            print(ev.message)
            if ev.model_dir:
                print(f"model folder: {ev.model_dir}")
            self.rc = 3 if ev.reason == "diverged" else self.rc
        if self.log is not None:
            self.log.write(ev)  # Samples are PNGs, not log lines


def cmd_train(args: argparse.Namespace) -> int:
    from .data import load_images
    from .train import fit

    out = Path(args.out)
    try:
        mcfg, tcfg, resume = _train_configs(args, out)
    except _Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # the data source is recorded in the run, so `--resume` alone reads the same images again
    source = args.data or tcfg.extra.get("data", "synthetic")
    n_synth = args.n_synthetic or tcfg.extra.get("n_synthetic", 2048)
    data = load_images(source, mcfg.image_size, mcfg.channels, n_synthetic=n_synth, seed=tcfg.seed)  # hf:// too
    extra = {"data": str(source)} | ({"n_synthetic": n_synth} if source == "synthetic" else {})
    tcfg = tcfg.replace(extra={**tcfg.extra, **extra})
    is_main = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 talks
    if is_main:
        print(data.report.summary())
    stop = threading.Event()

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this step (Ctrl-C again to abort)...", file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    progress = _Progress(out, args.quiet, is_main)
    try:
        for ev in fit(None if resume else mcfg, tcfg, data, out_dir=out, resume=resume, stop=stop):
            progress.show(ev)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
        if progress.log is not None:
            progress.log.close()
    return progress.rc


def cmd_sample(args: argparse.Namespace) -> int:
    from .sampling import MAX_SEED, make_grid, sample, save_png

    if not 1 <= args.n <= 1024:
        print("error: --n must be in 1..1024", file=sys.stderr)
        return 2
    if not 0 <= args.seed or args.seed + args.n - 1 > MAX_SEED:
        print(f"error: seeds {args.seed}..{args.seed + args.n - 1} asked for; every seed must be in 0..{MAX_SEED}",
              file=sys.stderr)  # fmt: skip
        return 2
    if Path(args.out).suffix and Path(args.out).suffix.lower() != ".png":
        print(f"error: --out {args.out}: a grid is written as .png; give a .png file or a folder name",
              file=sys.stderr)  # fmt: skip
        return 2
    G = _open_model(args.model, args.revision)
    seeds = list(range(args.seed, args.seed + args.n))
    imgs = sample(G, seeds, args.truncation)
    out = Path(args.out)
    if out.suffix.lower() != ".png":  # a folder: one PNG per seed
        out.mkdir(parents=True, exist_ok=True)
        for s, im in zip(seeds, imgs):
            save_png(im, out / f"seed{s:06d}.png")
        print(f"{len(seeds)} images -> {out}/seedNNNNNN.png")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_png(make_grid(imgs), out)
        print(f"grid of seeds {seeds[0]}..{seeds[-1]} -> {out}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:

    from .sampling import MAX_SEED, save_gif, save_video, seed_walk_frames

    if len(args.seeds) < 2:
        print("error: --seeds needs at least two seeds", file=sys.stderr)
        return 2
    bad = [s for s in args.seeds if not 0 <= s <= MAX_SEED]
    if bad:
        print(f"error: seed {bad[0]} is out of range; every seed must be in 0..{MAX_SEED}", file=sys.stderr)
        return 2
    if not max(2, len(args.seeds)) <= args.frames <= 1024:
        print(f"error: --frames must be in {max(2, len(args.seeds))}..1024 (at least one frame per seed)",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.out)
    if out.suffix.lower() not in (".gif", ".mp4"):
        print(f"error: --out {args.out}: the walk is written as .gif or .mp4; name the file so", file=sys.stderr)
        return 2
    G = _open_model(args.model, args.revision)
    # --frames in total, evenly along the path through all the seeds (with --loop: there and back)
    frames = seed_walk_frames(G, args.seeds, args.frames, args.mode, args.truncation, loop=args.loop)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".mp4":
        save_video(frames, out, fps=args.fps, scale=args.scale)
    else:
        save_gif(frames, out, fps=args.fps, scale=args.scale)
    print(f"{len(frames)} frames -> {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_model

    res = evaluate_model(args.model, args.data, n=args.n, inception_weights=args.inception_weights,
                         write=args.write)  # fmt: skip
    notes = res.pop("notes", [])
    for k, v in res.items():
        print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
    for note in notes:
        print(f"note: {note}")
    if not args.write:
        print("nothing written (add --write to record the metrics in the model folder)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .onnx_export import OnnxExportError, export_onnx_file

    G = _open_model(args.model, args.revision)
    try:
        print(export_onnx_file(G, args.onnx))
    except OnnxExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import push_to_hub

    url = push_to_hub(args.model, args.repo, private=args.private)
    print(f"pushed to {url}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .config import GanError

    args = build_parser().parse_args(argv)
    handler = {
        "train": cmd_train, "sample": cmd_sample, "interpolate": cmd_interpolate,
        "eval": cmd_eval, "push": cmd_push, "export": cmd_export,
    }[args.cmd]  # fmt: skip
    try:
        return handler(args)
    except (GanError, ValueError) as e:  # GanError: ConfigError, DataError, HubError, ModelLoadError, ...
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
