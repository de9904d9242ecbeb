"""Training throughput: (a) the plain pytorch/examples DCGAN step vs (b) gan.train's step.

Both train the same DCGAN-64 (widths 64) on in-memory uint8 images, in this one process,
alternating A/B rounds after a warm-up so that background load hits both alike. Prints img/s of
each, the ratio, the matmul peaks measured here, FLOPs per image (torch.utils.flop_counter) and
the fraction of peak reached; then sampling latency and peak memory. The last line is
`speedup: X.XXx` (b over a, batch 64).

    python benchmarks/throughput.py                 # ~5 minutes on 2 cores
    python benchmarks/throughput.py --rounds 3 --batches 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan import ModelConfig, TrainConfig  # noqa: E402
from gan.train import Trainer  # noqa: E402

# ---------------------------------------------------------------------------------------------
# (a) the textbook step, as pytorch/examples/dcgan/main.py writes it: fp32, contiguous, BCE


class RefG(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, x):
        return self.main(x)


class RefD(nn.Module):
    def __init__(self, ndf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


class Reference:
    """pytorch/examples' training step, unchanged in substance."""

    def __init__(self, batch: int):
        torch.manual_seed(0)
        self.G, self.D = RefG(), RefD()
        self.criterion = nn.BCELoss()
        self.optD = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.batch = batch

    def step(self, real_u8: torch.Tensor) -> torch.Tensor:
        real = real_u8.float() / 127.5 - 1
        b = real.shape[0]
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        self.D.zero_grad()
        label = torch.full((b,), 1.0)
        errD_real = self.criterion(self.D(real), label)
        errD_real.backward()
        noise = torch.randn(b, 100, 1, 1)
        fake = self.G(noise)
        label.fill_(0.0)
        errD_fake = self.criterion(self.D(fake.detach()), label)
        errD_fake.backward()
        self.optD.step()
        # (2) Update G network: maximize log(D(G(z)))
        self.G.zero_grad()
        label.fill_(1.0)
        errG = self.criterion(self.D(fake), label)
        errG.backward()
        self.optG.step()
        return errG.detach()


# ---------------------------------------------------------------------------------------------


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def flops_per_image(batch: int) -> float:
    ref = Reference(batch)
    x = torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8)
    with FlopCounterMode(display=False) as fc:
        ref.step(x)
    return fc.get_total_flops() / batch


def timed(trainer, data: torch.Tensor, batch: int, steps: int) -> float:
    n = data.shape[0]
    t0 = time.perf_counter()
    for i in range(steps):
        j = (i * batch) % (n - batch)
        out = trainer.step(data[j : j + batch])
    out.tolist()  # one sync at the end, as in fit()
    return steps * batch / (time.perf_counter() - t0)


def compare(batch: int, rounds: int, steps: int, warmup: int, ours_cfg: TrainConfig):
    data = torch.randint(0, 256, (max(1024, 4 * batch), 3, 64, 64), dtype=torch.uint8)
    a = Reference(batch)
    b = Trainer(ModelConfig(), ours_cfg.replace(batch_size=batch), torch.device("cpu"))
    t0 = time.perf_counter()
    timed(b, data, batch, warmup)  # includes torch.compile when on
    warm_b = time.perf_counter() - t0
    timed(a, data, batch, warmup)
    ra, rb = [], []
    for _ in range(rounds):
        ra.append(timed(a, data, batch, steps))
        rb.append(timed(b, data, batch, steps))
    return statistics.median(ra), statistics.median(rb), warm_b


MEM_TRAIN = """
import resource, sys, torch
sys.path.insert(0, {root!r})
from gan import ModelConfig, TrainConfig
from gan.train import Trainer
tr = Trainer(ModelConfig(), TrainConfig(batch_size=128), torch.device("cpu"))
data = torch.randint(0, 256, (8351, 3, 64, 64), dtype=torch.uint8)  # a cats64-sized set in memory
for i in range(4):
    tr.step(data[i * 128:(i + 1) * 128])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

MEM_APP = """
import resource, sys, tempfile, pathlib
sys.path.insert(0, {root!r})
import gan
from gan import Generator, ModelConfig, save_model, load_model, sample
d = pathlib.Path(tempfile.mkdtemp())
for name, cfg in (("cats64", ModelConfig()), ("mnist32", ModelConfig(image_size=32, channels=1))):
    save_model(Generator(cfg), d / name)
try:
    import app
    demo = app.build_app(weights_dir=d, runs_dir=d / "runs")
except Exception as e:  # app not importable here: measure gradio + the package alone
    import gradio
    print("note: app.build_app unavailable (%s)" % e, file=sys.stderr)
models = [load_model(d / n) for n in ("cats64", "mnist32")]
for G in models:
    sample(G, range(64))
import gc
gc.collect()
rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]
print(int(rss) / 1024)  # resident now, idle, with both models loaded
"""


def rss_mb(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code.format(root=str(ROOT))], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def sampling_latency() -> tuple[float, float]:
    from gan import Generator
    from gan.sampling import sample

    G = Generator(ModelConfig()).eval()
    sample(G, range(64))
    grid = statistics.median(_time(lambda: sample(G, range(64))) for _ in range(7))
    one = statistics.median(_time(lambda: sample(G, [5])) for _ in range(15))
    return grid * 1e3, one * 1e3


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    p.add_argument("--rounds", type=int, default=5, help="alternating A/B rounds")
    p.add_argument("--steps", type=int, default=4, help="steps per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", choices=["off", "on"], default="off", help="torch.compile for (b)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default=None, help="override (b)'s precision")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    args = p.parse_args()

    ours = TrainConfig(compile=args.compile)
    if args.precision:
        ours = ours.replace(precision=args.precision)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    print(f"(b) gan.train defaults: precision {ours.precision}, augment {ours.augment}, EMA {ours.ema_decay}, "
          f"xflip {ours.xflip}, loss {ours.loss}, compile {ours.compile}")  # fmt: skip
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    fpi = flops_per_image(64)
    print(f"matmul peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")
    print(f"FLOPs per image (one training step, flop_counter): {fpi / 1e9:.2f} GFLOP")
    print(f"ceiling: fp32 {peak32 * 1e9 / fpi:.0f} img/s, bf16 {peak16 * 1e9 / fpi:.0f} img/s")
    print()
    print("batch | (a) plain img/s | (b) ours img/s | b/a   | a % fp32 peak | b % bf16 peak")
    res = {"peak_fp32": peak32, "peak_bf16": peak16, "flops_per_image": fpi, "rows": []}
    for batch in args.batches:
        a, b, warm = compare(batch, args.rounds, args.steps, args.warmup, ours)
        pa = a * fpi / (peak32 * 1e9)
        pb = b * fpi / ((peak16 if ours.precision == "bf16" else peak32) * 1e9)
        print(f"{batch:5d} | {a:15.1f} | {b:14.1f} | {b / a:4.2f}x | {pa:12.0%} | {pb:12.0%}")
        res["rows"].append({"batch": batch, "plain": a, "ours": b, "ratio": b / a, "warmup_s_b": warm})
    grid_ms, one_ms = sampling_latency()
    print()
    print(f"sampling (64 px, width 64, eval): 64-image grid {grid_ms:.0f} ms (target < 250), "
          f"one image {one_ms:.1f} ms (target < 30)")  # fmt: skip
    res.update(grid_ms=grid_ms, one_ms=one_ms)
    if not args.no_memory:
        train_mb, app_mb = rss_mb(MEM_TRAIN), rss_mb(MEM_APP)
        print(f"memory: training batch 128 at 64 px, peak RSS {train_mb:.0f} MB (target < 2048); "
              f"app idle with two models loaded, RSS {app_mb:.0f} MB (target < 1024)")  # fmt: skip
        res.update(train_rss_mb=train_mb, app_rss_mb=app_mb)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    row64 = next((r for r in res["rows"] if r["batch"] == 64), res["rows"][0])
    print(f"speedup: {row64['ratio']:.2f}x")


if __name__ == "__main__":
    main()
