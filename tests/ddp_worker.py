"""Worker for tests/test_distributed.py, run under torchrun (or alone, as the single-process
reference). Writes what each rank ends with, so the test can check the gradient sync.

    python tests/ddp_worker.py fit OUT        # gan.train.fit under DDP; per-rank parameter hashes
    python tests/ddp_worker.py exact OUT B    # Trainer steps with no BatchNorm, plain SGD and an
                                              # explicit global noise/data batch, B images per rank
    python tests/ddp_worker.py both OUT B     # fit, then exact (one torchrun launch for the tests)
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

import gan.train as gt
from gan import ModelConfig, TrainConfig, make_synthetic
from gan import distributed as dist_util

TINY = dict(image_size=16, channels=3, z_dim=16, g_width=8, d_width=8)


class NoBN(nn.Identity):
    """BatchNorm2d's stand-in: passes x through; weight/bias are plain tensors for init_weights."""

    def __init__(self, c: int, **kw):
        super().__init__()
        self.weight, self.bias = torch.empty(c), torch.empty(c)


def param_hash(m: nn.Module) -> str:
    """Hash of the parameters (BatchNorm's running stats are per rank until DDP's next broadcast)."""
    h = hashlib.sha256()
    for name, p in sorted(m.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def run_fit(out: Path) -> None:
    made = []

    class Recording(gt.Trainer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    plain, gt.Trainer = gt.Trainer, Recording
    cfg = TrainConfig(steps=4, batch_size=8, precision="fp32", sample_every=0, checkpoint_every=0, log_every=1,
                      n_sample=4, augment="diffaugment", ema_decay=0.9)  # fmt: skip
    for _ in gt.fit(ModelConfig(**TINY), cfg, make_synthetic(64, 16, 3), out_dir=out / "run"):
        pass
    tr = made[0]
    rank = int(os.environ.get("RANK", "0"))
    hashes = {"G": param_hash(tr.G), "D": param_hash(tr.D), "E": param_hash(tr.E)}
    (out / f"rank{rank}.json").write_text(json.dumps(hashes))
    # Let go of the fit's DDP modules now, while the process group lives: left to the interpreter's
    # exit, after the exact run's teardown, gloo work they hold can abort the process (SIGABRT,
    # "terminate called without an active exception", seen once under load).
    gt.Trainer = plain
    made.clear()
    del tr
    gc.collect()


def run_exact(out: Path, per_rank: int) -> None:
    """Every rank sees its slice of one global batch; the single-process run sees all of it.
    Without BatchNorm and with SGD, DDP's averaged gradients make both runs the same."""
    nn.BatchNorm2d = NoBN  # G would normalise per rank otherwise
    ctx = dist_util.setup("cpu")
    rank, world = ctx.rank, ctx.world_size
    mcfg = ModelConfig(**TINY, d_norm="none")
    tcfg = TrainConfig(batch_size=per_rank, precision="fp32", augment="none", xflip=False, ema_decay=0.0)
    tr = gt.Trainer(mcfg, tcfg, ctx.device, ctx)
    tr.optG = torch.optim.SGD(tr.G.parameters(), lr=0.05)
    tr.optD = torch.optim.SGD(tr.D.parameters(), lr=0.05)
    images = make_synthetic(64, 16, 3)
    g = torch.Generator().manual_seed(123)
    for step in range(3):
        total = per_rank * world
        z = torch.randn(total, mcfg.z_dim, generator=g)
        idx = torch.randperm(len(images), generator=g)[:total]
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        tr.noise = lambda n, z=z[mine]: z.clone()
        tr.n_updates = step
        tr.step(images[idx[mine]])
    sd = {f"G.{k}": v.contiguous() for k, v in tr.G.state_dict().items()}
    sd.update({f"D.{k}": v.contiguous() for k, v in tr.D.state_dict().items()})
    save_file(sd, str(out / f"exact_w{world}_rank{rank}.safetensors"))
    dist_util.teardown(ctx)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "both":  # keep the process group for the exact run (re-initialising it hangs)
        keep = dist_util.teardown
        dist_util.teardown = lambda ctx: None
        run_fit(out)
        dist_util.teardown = keep
    elif mode == "fit":
        run_fit(out)
    if mode in ("exact", "both"):
        run_exact(out, int(sys.argv[3]))
