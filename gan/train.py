"""The training loop as an iterator of small event records.

    for ev in fit(ModelConfig(), TrainConfig(steps=500), load_images("synthetic", 64, 3), out_dir="runs/a"):
        print(ev)

`fit` yields `Started`, then `StepLog` every `log_every` steps, `Samples` every `sample_every`,
`Metric` every `metric_every`, `Checkpoint` every `checkpoint_every`, `Rollback` after a
non-finite loss, and finally `Done`. Stopping is the caller's choice: set the `stop` event (a
checkpoint and the model folder are written, then `Done(reason="stopped")`), or just stop
iterating. One loop serves the CLI, the app and the tests.

A checkpoint holds everything needed to continue exactly (G, D, EMA, both optimizers, step, RNG
states, both configs, data fingerprint) in one safetensors file with a JSON header: loading it
runs no code. It is written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from . import augment
from . import data as gdata
from . import distributed as dist_util
from .config import GanError, ModelConfig, TrainConfig
from .device import PrecisionChoice, choose_precision, register_probe_step, set_threads
from .models import Discriminator, Generator
from .sampling import latents, make_grid, save_png

CKPT_NAME = "checkpoint.safetensors"
INTERRUPT_AFTER_S = 2.0  # a step slower than this arms Stop midway through a step (Trainer.arm)
CKPT_FORMAT = "gan-lab-checkpoint/1"
SAMPLE_SEED0 = 0  # the fixed sample grid shows seeds 0 .. n_sample-1
CHANNELS_LAST = True  # +9% img/s on CPU with bf16 (benchmarks/throughput.py)


# ---------------------------------------------------------------------------------------------
# events


@dataclass
class Started:
    step: int  # first step to run (0, or the resumed step)
    steps: int  # last step
    n_images: int
    batch_size: int  # per process
    world_size: int
    device: str
    precision: str  # what runs: fp32 | bf16 (precision "auto" resolved)
    data_fingerprint: str
    resumed_from: str | None = None
    precision_reason: str = ""  # why, e.g. "fp32: this CPU (AVX2) has no native bf16 kernels"
    threads: int = 0  # torch CPU threads of this process
    warning: str | None = None  # e.g. bf16 forced on a CPU without native bf16


@dataclass
class StepLog:
    step: int
    epoch: int
    loss_d: float
    loss_g: float
    d_real: float  # mean D(x) as a probability
    d_fake: float  # mean D(G(z)) as a probability, in the D step
    img_per_s: float  # real images through D per second, all processes
    elapsed_s: float
    threads: int = 0  # torch CPU threads at this step (the app's ThreadGovernor changes them; 0: not on a CPU)
    lr_factor: float = 1.0  # the learning-rate factor of the last update (below 1 in a cool-down)


@dataclass
class Samples:
    step: int
    grid: np.ndarray  # uint8 (H, W, C) grid of the fixed-seed samples
    path: str | None = None


@dataclass
class Metric:
    step: int
    name: str
    value: float


@dataclass
class Checkpoint:
    step: int
    path: str


@dataclass
class Rollback:
    step: int
    to_step: int
    message: str


@dataclass
class Done:
    step: int
    reason: str  # finished | stopped | diverged
    message: str
    model_dir: str | None = None
    checkpoint: str | None = None


Event = Started | StepLog | Samples | Metric | Checkpoint | Rollback | Done


# ---------------------------------------------------------------------------------------------
# helpers


def d_loss_fn(real: torch.Tensor | None, fake: torch.Tensor | None, kind: str) -> torch.Tensor:
    """Discriminator loss on logits (either term may be None, for separate backward passes).

    bce: -log D(x) - log(1 - D(G(z))) = softplus(-real) + softplus(fake); hinge: max(0, 1 -+ .)."""
    terms = []
    if real is not None:
        terms.append((F.relu(1 - real) if kind == "hinge" else F.softplus(-real)).mean())
    if fake is not None:
        terms.append((F.relu(1 + fake) if kind == "hinge" else F.softplus(fake)).mean())
    return sum(terms[1:], terms[0])


def g_loss_fn(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Generator loss on logits. bce: non-saturating -log D(G(z)); hinge: -D(G(z))."""
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


def batch_indices(step: int, n: int, batch: int, seed: int, rank: int = 0, world: int = 1):
    """Indices of the images for `step` on `rank`: a fresh permutation each epoch, derived from
    (seed, epoch) alone, so any step can be recomputed on resume. Returns (epoch, LongTensor)."""
    global_batch = batch * world
    per_epoch = max(1, n // global_batch)
    epoch, i = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    if n < global_batch:  # fewer images than one batch: repeat them
        perm = perm.repeat(-(-global_batch // n))
    idx = perm[i * global_batch : (i + 1) * global_batch]
    return epoch, idx[rank::world]


def ema_beta(decay: float, step: int) -> float:
    """EMA decay ramped up over the first steps: min(decay, (1 + step) / (10 + step)).

    A fixed 0.999 would keep half of the random initial weights in the average after 700 steps,
    which washes out every sample of a short CPU run; the ramp averages over the recent ~10% of
    training until the run is long enough for the full decay."""
    return min(decay, (1.0 + step) / (10.0 + step))


def lr_factor(cfg: TrainConfig, step: int, late: bool = False) -> float:
    """Learning-rate factor of update `step` (0-based): `cooldown_lr` over the last `cooldown`
    fraction of `cfg.steps`, or once `late` (fit sets it when the last `cooldown` fraction of the
    time limit has begun, if that comes first), 1 before. A run stopped early with Stop never cools
    down; one resumed with more steps moves its cool-down to the new end."""
    if cfg.cooldown > 0 and (late or step >= round(cfg.steps * (1.0 - cfg.cooldown))):
        return cfg.cooldown_lr
    return 1.0


def cool_by_time_at(cfg: TrainConfig) -> float | None:
    """Seconds into a fit at which a cool-down starts by the clock (the last `cooldown` fraction of
    the time limit), or None without a limit or a cool-down."""
    if cfg.cooldown > 0 and cfg.max_minutes:
        return 60.0 * cfg.max_minutes * (1.0 - cfg.cooldown)
    return None


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameters only (BN stats are recalibrated)."""
    ema_p = list(ema.parameters())
    torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1.0 - decay)


@torch.no_grad()
def recalibrate_bn(G: nn.Module, z_dim: int, device: torch.device, n_batches: int = 8, batch: int = 64):
    """Set BatchNorm running stats to the exact average over fresh noise, then eval mode.

    Sampling in eval mode makes an image depend only on its own z (not on the batch); the EMA
    weights need statistics of their own, which this measures with a fixed noise stream."""
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        G.eval()
        return
    g = torch.Generator().manual_seed(12345)
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    G.train()
    for _ in range(n_batches):
        G(torch.randn(batch, z_dim, generator=g).to(device))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    G.eval()


def _unwrap(m: nn.Module) -> nn.Module:
    m = getattr(m, "module", m)  # DDP
    return getattr(m, "_orig_mod", m)  # torch.compile


# ---------------------------------------------------------------------------------------------
# checkpoints: one safetensors file, tensors flat, the rest as JSON in the header


def _flat_optim(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict:
    sd = opt.state_dict()
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"{prefix}.{pid}.{k}"] = v.detach().cpu().contiguous()
    return {"param_groups": sd["param_groups"]}


def _unflat_optim(prefix: str, meta: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            pid, k = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically: temporary name, fsync, rename."""
    tensors: dict[str, torch.Tensor] = {}
    for name in ("G", "D", "E"):
        if state.get(name) is not None:
            for k, v in _unwrap(state[name]).state_dict().items():
                tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    meta = {
        "step": state["step"],
        "model_config": state["model_cfg"].to_dict(),
        "train_config": state["train_cfg"].to_dict(),
        "optG": _flat_optim("optG", state["optG"], tensors),
        "optD": _flat_optim("optD", state["optD"], tensors),
        "data_fingerprint": state["fingerprint"],
        "rollbacks": state["rollbacks"],
        "elapsed_s": state["elapsed_s"],
    }
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.g"] = state["gen"].get_state().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={"format": CKPT_FORMAT, "json": json.dumps(meta)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as e:  # a full disk (ENOSPC: OSError, or safetensors' own error): the old one stays
        tmp.unlink(missing_ok=True)
        kept = "the previous checkpoint is kept" if path.exists() else "there is no earlier checkpoint"
        raise CheckpointError(
            f"could not write the checkpoint of step {state['step']} to {path.parent} "
            f"({getattr(e, 'strerror', None) or str(e)[:200]}); {kept}. Free some disk space, then resume"
        ) from None
    return path


class CheckpointError(GanError):
    """A checkpoint file is missing, not ours, or does not fit the model."""


class StepInterrupted(Exception):
    """Stop was asked for in the middle of a (long) training step."""


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """-> (meta, flat tensors). Accepts a checkpoint file or a run folder holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / CKPT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), "pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({e})") from None
    if header.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path} is not a GAN Lab checkpoint (format {header.get('format')!r})")
    meta = json.loads(header["json"])
    meta["path"] = str(path)
    return meta, tensors


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """A checkpoint's JSON metadata (step, elapsed_s, configs) from its header, without its tensors;
    {} when there is none or it is unreadable."""
    try:
        with safe_open(str(path), "pt") as f:
            return json.loads((f.metadata() or {}).get("json", "{}"))
    except Exception:  # noqa: BLE001 - missing, damaged, not ours
        return {}


def _match_layout(opt: torch.optim.Optimizer) -> None:
    """Give each loaded optimizer state tensor its parameter's memory layout (channels_last).

    Checkpoints store contiguous tensors; the fused Adam kernel walks parameter and state memory
    in step, so a layout mismatch would silently mix up elements after a resume."""
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    opt.state[p][k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def _sub(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


# ---------------------------------------------------------------------------------------------
# one training step


class Trainer:
    """G, D, the EMA copy, both optimizers and the noise generator; `step` runs one D and one G
    update. `fit` drives it; benchmarks time it directly."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        device: torch.device,
        ctx=None,
        precision: PrecisionChoice | None = None,
    ):
        self.mcfg, self.tcfg, self.device = model_cfg, train_cfg, device
        # "auto" -> fp32 or bf16 from what this device runs natively (gan.device)
        self.precision = precision or choose_precision(train_cfg.precision, device)
        self.ctx = ctx or dist_util.DistContext(0, 1, 0, device, False)
        torch.manual_seed(train_cfg.seed)
        self.G = Generator(model_cfg).to(device)
        self.D = Discriminator(model_cfg).to(device)
        self.E = copy.deepcopy(self.G).eval().requires_grad_(False) if train_cfg.ema_decay > 0 else None
        betas = (train_cfg.beta1, train_cfg.beta2)
        fused = device.type in ("cpu", "cuda")  # one fused kernel per optimizer step
        self.optG = torch.optim.Adam(self.G.parameters(), lr=train_cfg.lr_g, betas=betas, fused=fused)
        self.optD = torch.optim.Adam(self.D.parameters(), lr=train_cfg.lr_d, betas=betas, fused=fused)
        self.gen = torch.Generator(device=device).manual_seed(train_cfg.seed + self.ctx.rank)  # noise + augment
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision.precision == "bf16")
        self.augment = {"none": None, "classic": augment.augment_classic, "diffaugment": augment.diffaugment}[
            train_cfg.augment
        ]
        self.channels_last = device.type == "cpu" and CHANNELS_LAST
        if self.channels_last:
            for m in (self.G, self.D) + ((self.E,) if self.E is not None else ()):
                m.to(memory_format=torch.channels_last)
        self.G_plain, self.D_plain = _maybe_compile(self.G, self.D, train_cfg)
        self.G_train = dist_util.wrap(self.G_plain, self.ctx)
        self.D_train = dist_util.wrap(self.D_plain, self.ctx)

    n_updates = 0  # generator updates so far (set by fit on resume); drives the EMA ramp-up and lazy R1
    interrupt = None  # an Event: while set during `step`, the next layer raises StepInterrupted (see arm)
    _hooks: list | None = None

    @property
    def armed(self) -> bool:
        return self._hooks is not None

    def arm(self) -> None:
        """Let `interrupt` end a step midway: a check before every layer of G and D (about a
        microsecond each; fit arms it only once a step takes seconds)."""
        if self._hooks is None:

            def check(module: nn.Module, args: tuple) -> None:
                if self.interrupt is not None and self.interrupt.is_set():
                    raise StepInterrupted

            self._hooks = [m.register_forward_pre_hook(check) for net in (self.G, self.D) for m in net.modules()]

    def snapshot(self) -> dict[str, Any]:
        """What a step changes before its last layer check: D and its optimizer, G's BatchNorm
        statistics, the random streams. `restore` puts them back after an interrupted step."""
        return {
            "G": {k: v.clone() for k, v in self.G.state_dict().items()},
            "D": {k: v.clone() for k, v in self.D.state_dict().items()},
            "optD": copy.deepcopy(self.optD.state_dict()),
            "rng": torch.get_rng_state(),
            "gen": self.gen.get_state(),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.G.load_state_dict(snap["G"])
        self.D.load_state_dict(snap["D"])
        self.optD.load_state_dict(snap["optD"])
        _match_layout(self.optD)
        self.D.requires_grad_(True)
        torch.set_rng_state(snap["rng"])
        self.gen.set_state(snap["gen"])
        self.optD.zero_grad(set_to_none=True)
        self.optG.zero_grad(set_to_none=True)

    late = False  # set by fit once the time limit's cool-down share has begun (see lr_factor)
    last_lr_factor = 1.0

    def noise(self, n: int) -> torch.Tensor:
        """z for one step, from this trainer's own generator (so a run is reproducible)."""
        return torch.randn(n, self.mcfg.z_dim, generator=self.gen, device=self.device)

    def step(self, real_u8: torch.Tensor) -> torch.Tensor:
        """One D and one G update on a uint8 batch (B, C, S, S). Returns detached stats
        (loss_d, loss_g, mean D(x), mean D(G(z))) without a host sync."""
        cfg, gen, aug = self.tcfg, self.gen, self.augment
        real = gdata.to_float(real_u8)  # (B, C, S, S) in [-1, 1]
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        if cfg.xflip:
            real = augment.xflip(real, gen)
        z = self.noise(real.shape[0])
        # every step: a loaded optimizer state holds the rate it was saved with
        f = self.last_lr_factor = lr_factor(cfg, self.n_updates, self.late)
        for opt, lr in ((self.optG, cfg.lr_g), (self.optD, cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * f
        do_r1 = cfg.r1_gamma > 0 and self.n_updates % cfg.r1_every == 0

        # (1) D step: maximise log D(x) + log(1 - D(G(z)))  [or the hinge form]. Real and fake
        # go through D separately (BatchNorm sees pure batches, as in pytorch/examples) with one
        # backward each; under DDP the first backward skips the gradient all-reduce.
        self.optD.zero_grad(set_to_none=True)
        with self.autocast:
            fake = self.G_train(z)
        with dist_util.no_sync(self.D_train, self.ctx), self.autocast:
            r_in = (aug(real, gen) if aug else real).detach().requires_grad_(do_r1)
            logit_r = self.D_train(r_in).float()
            loss_r = d_loss_fn(logit_r, None, cfg.loss)
            if do_r1:  # lazy R1 (StyleGAN2): gamma/2 E|grad_x D(x)|^2 on the images D saw, x r1_every
                (grad,) = torch.autograd.grad(logit_r.sum(), r_in, create_graph=True)
                r1 = grad.float().square().sum(dim=(1, 2, 3)).mean()
                loss_r_total = loss_r + (cfg.r1_gamma / 2) * cfg.r1_every * r1
        (loss_r_total if do_r1 else loss_r).backward()
        with self.autocast:
            f_in = fake.detach()
            logit_f = self.D_train(aug(f_in, gen) if aug else f_in).float()
            loss_f = d_loss_fn(None, logit_f, cfg.loss)
        loss_f.backward()
        self.optD.step()

        # (2) G step: maximise log D(G(z)) (non-saturating), D frozen and outside DDP
        self.D.requires_grad_(False)
        with self.autocast:
            loss_g = g_loss_fn(self.D_plain(aug(fake, gen) if aug else fake).float(), cfg.loss)
        self.optG.zero_grad(set_to_none=True)
        loss_g.backward()
        self.optG.step()
        self.D.requires_grad_(True)
        if self.E is not None:
            ema_update(self.E, self.G, ema_beta(cfg.ema_decay, self.n_updates))
        self.n_updates += 1
        with torch.no_grad():
            return torch.stack(
                [
                    loss_r.detach() + loss_f.detach(),
                    loss_g.detach(),
                    torch.sigmoid(logit_r.detach()).mean(),
                    torch.sigmoid(logit_f.detach()).mean(),
                ]
            )


# ---------------------------------------------------------------------------------------------
# the loop


def fit(
    model_cfg: ModelConfig | None,
    train_cfg: TrainConfig,
    data: gdata.ImageData | torch.Tensor,
    *,
    out_dir: str | Path,
    resume: str | Path | None = None,
    stop: threading.Event | None = None,
    on_step: Callable[[], object] | None = None,
) -> Iterator[Event]:
    """Train a GAN; yields events (see the module doc). `model_cfg` may be None when resuming.
    `on_step` is called in the training thread after every step (the app's ThreadGovernor)."""
    from .modelfolder import save_model

    if isinstance(data, torch.Tensor):
        data = gdata.ImageData(data, gdata.DatasetReport("tensor", n_ok=len(data)))
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CKPT_NAME

    meta, ck = (None, None)
    if resume is not None:
        meta, ck = load_checkpoint(resume)
        saved_cfg = ModelConfig.from_dict(meta["model_config"])
        if model_cfg is not None and model_cfg != saved_cfg:
            raise CheckpointError(
                f"the checkpoint was trained with {saved_cfg}, not {model_cfg}; "
                "leave the model options out when resuming"
            )
        model_cfg = saved_cfg
    if model_cfg is None:
        raise ValueError("model_cfg is required unless resuming")

    images = data.images
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    n, c, h, w = images.shape
    if (c, h, w) != (model_cfg.channels, model_cfg.image_size, model_cfg.image_size):
        raise ValueError(
            f"images are {c}x{h}x{w} but the model wants "
            f"{model_cfg.channels}x{model_cfg.image_size}x{model_cfg.image_size}"
        )

    ctx = dist_util.setup(train_cfg.device)
    rank, world, device, is_main = ctx.rank, ctx.world_size, ctx.device, ctx.is_main
    # Set explicitly in the thread that trains: a thread inherits the count its parent had when
    # it started (an app's render thread may have set 1), never trust the default.
    threads = set_threads(train_cfg.threads) if device.type == "cpu" else torch.get_num_threads()
    fingerprint = data.fingerprint()
    precision = choose_precision(train_cfg.precision, device)

    # ---- models, optimizers, RNG (same seed -> same run) ----
    tr = Trainer(model_cfg, train_cfg, device, ctx, precision=precision)
    G, D, E, optG, optD, gen = tr.G, tr.D, tr.E, tr.optG, tr.optD, tr.gen
    betas = (train_cfg.beta1, train_cfg.beta2)
    step, rollbacks, elapsed0 = 0, 0, 0.0

    def restore(meta: dict, ck: dict[str, torch.Tensor], *, clock: bool) -> None:
        """Load a checkpoint into the live objects. `clock`: also take its elapsed time (a resume);
        a rollback keeps counting the time really spent, so nothing is counted twice."""
        nonlocal step, rollbacks, elapsed0
        try:
            G.load_state_dict(_sub(ck, "G"))
            D.load_state_dict(_sub(ck, "D"))
            if E is not None:
                E.load_state_dict(_sub(ck, "E") or _sub(ck, "G"))
            optG.load_state_dict(_unflat_optim("optG", meta["optG"], ck))
            optD.load_state_dict(_unflat_optim("optD", meta["optD"], ck))
            _match_layout(optG)
            _match_layout(optD)
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint does not fit the model: {e}") from None
        for opt in (optG, optD):  # the rates are set by Trainer.step, every step
            for group in opt.param_groups:
                group["betas"] = betas
        torch.set_rng_state(ck["rng.torch"])
        gen.set_state(ck["rng.g"].to(gen.get_state().device))
        step, rollbacks = meta["step"], meta["rollbacks"]
        if clock:
            elapsed0 = meta.get("elapsed_s", 0.0)
        if rank > 0:  # the checkpoint holds rank 0's noise stream; the others draw their own
            gen.manual_seed(train_cfg.seed + rank + 1_000_003 * step)

    if meta is not None:
        restore(meta, ck, clock=True)
        if meta["data_fingerprint"] != fingerprint and is_main:
            print(f"warning: the data differs from the checkpoint's ({fingerprint} vs {meta['data_fingerprint']})")

    def state() -> dict[str, Any]:
        return {
            "G": G, "D": D, "E": E, "optG": optG, "optD": optD, "gen": gen, "step": step,
            "model_cfg": model_cfg, "train_cfg": train_cfg, "fingerprint": fingerprint,
            "rollbacks": rollbacks, "elapsed_s": elapsed0 + (time.perf_counter() - t_start),
        }  # fmt: skip

    t_start = time.perf_counter()
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "samples").mkdir(exist_ok=True)
        for stale in out_dir.glob(CKPT_NAME + ".tmp*"):  # left by a killed run; never the real file
            stale.unlink(missing_ok=True)
    images = images.to(device)
    fixed_z = latents(range(SAMPLE_SEED0, SAMPLE_SEED0 + train_cfg.n_sample), model_cfg.z_dim)
    b = train_cfg.batch_size
    last_good = step
    yield Started(
        step, train_cfg.steps, n, b, world, str(device), precision.precision, fingerprint,
        resumed_from=meta["path"] if meta else None, precision_reason=precision.reason, threads=threads,
        warning=precision.warning,
    )  # fmt: skip

    def write_checkpoint() -> Path:
        """Rank 0 writes; every rank waits for the file before going on (collective)."""
        nonlocal last_good
        last_good = step
        if is_main:
            save_checkpoint(ckpt_path, state())
        dist_util.barrier(ctx)
        return ckpt_path

    shown = E if E is not None else G  # what samples, metrics and the model folder show

    def export() -> str:
        sampler = E if E is not None else copy.deepcopy(G)
        recalibrate_bn(sampler, model_cfg.z_dim, device)
        d = out_dir / "model"
        save_model(sampler, d, train_cfg=train_cfg, report=data.report, steps=step)
        return str(d)

    def weights_ok() -> bool:
        """G, D and EMA hold only finite numbers (checked before every checkpoint and export: an
        update can go non-finite after the last loss that was looked at)."""
        return not dist_util.any_rank(not _finite(G, D, E), ctx)

    if step == 0 and train_cfg.checkpoint_every:
        write_checkpoint()  # the rollback target before any update

    acc = torch.zeros(4, device=device)  # sums of loss_d, loss_g, d_real, d_fake since last log
    n_acc, t_log = 0, time.perf_counter()
    epoch, budget_hit = 0, False
    cool_at = cool_by_time_at(train_cfg)
    while step < train_cfg.steps:
        # the budget counts this session's training time: a resumed run gets a fresh one
        budget_hit = bool(train_cfg.max_minutes) and time.perf_counter() - t_start >= 60 * train_cfg.max_minutes
        if cool_at is not None and not tr.late and step % train_cfg.log_every == 0:  # the same steps on every rank
            tr.late = dist_util.any_rank(time.perf_counter() - t_start >= cool_at, ctx)
        if dist_util.any_rank(
            budget_hit or (stop is not None and stop.is_set()), ctx
        ):  # under torchrun all ranks stop at the same step
            break
        epoch, idx = batch_indices(step, n, b, train_cfg.seed, rank, world)
        if train_cfg.epochs is not None and epoch >= train_cfg.epochs:
            break
        tr.n_updates = step
        t_step = time.perf_counter()
        snap = tr.snapshot() if tr.armed else None
        tr.interrupt = stop if snap is not None else None
        try:
            acc += tr.step(images[idx.to(device)])
        except StepInterrupted:  # Stop during a long step: back to the last finished one
            tr.restore(snap)
            break
        finally:
            tr.interrupt = None
        if stop is not None and world == 1 and not tr.armed and time.perf_counter() - t_step > INTERRUPT_AFTER_S:
            tr.arm()  # steps take seconds: Stop ends the next one midway rather than waiting for it
        step += 1
        if on_step is not None:
            on_step()
        n_acc += 1

        due_log = step % train_cfg.log_every == 0 or step == train_cfg.steps
        due_ckpt = train_cfg.checkpoint_every and step % train_cfg.checkpoint_every == 0
        if due_log or due_ckpt:
            vals = (dist_util.all_mean(acc, ctx) / n_acc).tolist()  # the one host sync
            finite = all(np.isfinite(vals)) and (not due_ckpt or weights_ok())
            if not finite:
                rollbacks += 1
                what = "loss" if not all(np.isfinite(vals)) else "weights"
                if rollbacks > 1 or not ckpt_path.exists():
                    msg = (
                        f"training diverged at step {step} (non-finite {what}: loss_d={vals[0]:.3g}, "
                        f"loss_g={vals[1]:.3g}){' after a rollback' if rollbacks > 1 else ''}; stopped. Try a "
                        f"lower learning rate. The last good checkpoint (step {last_good}) is kept at {ckpt_path}."
                    )
                    dist_util.teardown(ctx)
                    yield Done(step, "diverged", msg, None, str(ckpt_path) if ckpt_path.exists() else None)
                    return
                bad = step
                m2, ck2 = load_checkpoint(ckpt_path)
                restore(m2, ck2, clock=False)
                rollbacks = 1
                gen.manual_seed(train_cfg.seed + 7919 * rollbacks + rank)  # a different noise stream
                acc.zero_()
                n_acc, t_log = 0, time.perf_counter()
                yield Rollback(bad, step, f"non-finite {what} at step {bad}; rolled back to step {step}")
                continue
            if due_log:
                dt = time.perf_counter() - t_log
                yield StepLog(
                    step, epoch, vals[0], vals[1], vals[2], vals[3],
                    n_acc * b * world / max(dt, 1e-9), elapsed0 + time.perf_counter() - t_start,
                    torch.get_num_threads() if device.type == "cpu" else 0, tr.last_lr_factor,
                )  # fmt: skip
                acc.zero_()
                n_acc, t_log = 0, time.perf_counter()
            if due_ckpt:
                p = write_checkpoint()
                if is_main:
                    yield Checkpoint(step, str(p))
        if is_main and train_cfg.sample_every and step % train_cfg.sample_every == 0:
            yield _samples(shown, fixed_z, step, out_dir, model_cfg, device)
        if is_main and train_cfg.metric_every and step % train_cfg.metric_every == 0:
            yield _cheap_swd(shown, images, step, model_cfg, device)

    stopped = stop is not None and stop.is_set() and step < train_cfg.steps
    reason = "stopped" if stopped else "finished"
    why = ""
    if not stopped and step < train_cfg.steps:  # a time or epoch budget ended the run early
        why = f" ({train_cfg.max_minutes:g} min budget)" if budget_hit else f" ({train_cfg.epochs} epochs)"
    model_dir = None
    if not weights_ok():  # went non-finite after the last check: never save or export that
        bad, have_ckpt = step, ckpt_path.exists()
        if have_ckpt:
            restore(*load_checkpoint(ckpt_path), clock=False)
            model_dir = export() if is_main else None
        kept = f"the last good checkpoint (step {step}) is kept" if have_ckpt else "no checkpoint was written"
        msg = (
            f"training diverged at step {bad} (non-finite weights); stopped. Try a lower learning rate; "
            f"{kept}{' and exported as the model' if model_dir else ''}."
        )
        dist_util.teardown(ctx)
        yield Done(step, "diverged", msg, model_dir, str(ckpt_path) if have_ckpt else None)
        return
    ck = str(write_checkpoint())
    if is_main:
        if step % max(train_cfg.sample_every, 1) != 0 or not train_cfg.sample_every:
            yield _samples(shown, fixed_z, step, out_dir, model_cfg, device)
        model_dir = export()
    dist_util.teardown(ctx)
    msg = f"{reason} at step {step} of {train_cfg.steps}{why}"
    yield Done(step, reason, msg, model_dir, ck)


@torch.no_grad()
def _finite(*modules: nn.Module | None) -> bool:
    """Every parameter and buffer of the given modules is finite (one host sync)."""
    flags = [torch.isfinite(t).all() for m in modules if m is not None for t in (*m.parameters(), *m.buffers())
             if t.is_floating_point()]  # fmt: skip
    return bool(torch.stack(flags).all()) if flags else True


def _maybe_compile(G: nn.Module, D: nn.Module, cfg: TrainConfig):
    """torch.compile both nets when asked ('auto': only for runs long enough to repay it)."""
    if cfg.compile == "off" or (cfg.compile == "auto" and cfg.steps < 2000):
        return G, D
    return torch.compile(G), torch.compile(D)


@torch.no_grad()
def _samples(G: nn.Module, z: torch.Tensor, step: int, out_dir: Path, cfg: ModelConfig, device):
    """Fixed-seed sample grid from a copy of G with recalibrated BN stats (G keeps training)."""
    S = copy.deepcopy(_unwrap(G))
    recalibrate_bn(S, cfg.z_dim, device)
    imgs = gdata.to_uint8(S(z.to(device))).cpu()
    grid = make_grid(imgs)
    path = save_png(grid, out_dir / "samples" / f"step_{step:07d}.png")
    return Samples(step, grid, str(path))


@torch.no_grad()
def _cheap_swd(G: nn.Module, images: torch.Tensor, step: int, cfg: ModelConfig, device) -> Metric:
    """SWD (x1e3, average over levels) of 256 samples against 256 training images."""
    from .metrics import swd

    S = copy.deepcopy(_unwrap(G))
    recalibrate_bn(S, cfg.z_dim, device)
    z = latents(range(10_000, 10_256), cfg.z_dim)
    fake = gdata.to_uint8(S(z.to(device))).cpu()
    g = torch.Generator().manual_seed(step)
    real = images[torch.randperm(len(images), generator=g)[:256].to(images.device)].cpu()
    res = swd(real, fake, n_repeats=1)
    return Metric(step, "swd", float(res["swd_avg"]))


def _probe_step(precision: str) -> Callable[[], object]:
    """One step of the default `cpu` recipe's shape (64 px, widths 32, batch 32) at `precision`: what
    gan.device's bf16 probe times (registered below; the device layer never imports the trainer)."""
    mcfg = ModelConfig(image_size=64, g_width=32, d_width=32)
    real = torch.randint(0, 256, (32, 3, 64, 64), dtype=torch.uint8)
    tr = Trainer(mcfg, TrainConfig(precision=precision, ema_decay=0.0, augment="none"), torch.device("cpu"))
    return lambda: tr.step(real)


register_probe_step(_probe_step)
