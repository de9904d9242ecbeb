"""Training throughput: the plain pytorch/examples DCGAN step vs gan.train's step, on this CPU.

All arms train the same DCGAN-64 (widths 64) on in-memory uint8 images, in this one process, in
rounds whose order alternates (ABBA: A B ... then ... B A) after a warm-up, so that background
load hits every arm alike. Arms: (a) plain fp32; (b) ours fp32; (c) ours with its defaults
(precision auto), measured only where auto picks something other than fp32. Each prints
min / median / max img/s over the rounds. First the CPU: torch's capability (AVX2, AVX512, ...),
native bf16 yes/no, AMX, and what precision auto chose and why. Then matmul peaks, FLOPs per image,
sampling latency and memory. Results go to benchmarks/results/throughput_<CPU class>.json; the
last line is `speedup: X.XXx` = ours with its defaults over the plain step, batch 64.

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
from gan.device import choose_precision, machine_summary  # noqa: E402
from gan.train import Trainer  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import textbook_dcgan as textbook  # noqa: E402  (pytorch/examples' G and D, with no GAN Lab code)

# ---------------------------------------------------------------------------------------------
# the textbook step, as pytorch/examples/dcgan/main.py writes it: fp32, contiguous, BCE


class Reference:
    """pytorch/examples' training step, unchanged in substance."""

    def __init__(self, batch: int):
        torch.manual_seed(0)
        self.G, self.D = textbook.Generator(), textbook.Discriminator()
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


def spread(xs: list[float]) -> dict[str, float]:
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs), "n": len(xs)}


def compare(batch: int, rounds: int, steps: int, warmup: int, arms: dict[str, TrainConfig | None]):
    """img/s of each arm (None = the plain reference) over `rounds` rounds in ABBA order."""
    data = torch.randint(0, 256, (max(1024, 4 * batch), 3, 64, 64), dtype=torch.uint8)
    trainers = {
        name: Reference(batch) if cfg is None else Trainer(ModelConfig(), cfg.replace(batch_size=batch),
                                                           torch.device("cpu"))
        for name, cfg in arms.items()
    }  # fmt: skip
    warm = {}
    for name, tr in trainers.items():
        t0 = time.perf_counter()
        timed(tr, data, batch, warmup)  # oneDNN primitives (and torch.compile when on)
        warm[name] = time.perf_counter() - t0
    runs: dict[str, list[float]] = {name: [] for name in trainers}
    names = list(trainers)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:  # A B C, C B A, A B C, ...
            runs[name].append(timed(trainers[name], data, batch, steps))
    return {name: spread(v) for name, v in runs.items()}, warm


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
    p.add_argument("--rounds", type=int, default=6, help="rounds per arm, order alternating (ABBA)")
    p.add_argument("--steps", type=int, default=4, help="steps per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", choices=["off", "on"], default="off", help="torch.compile for ours")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="ours-with-defaults' precision (auto is the default everywhere)")  # fmt: skip
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the JSON results")
    args = p.parse_args()

    machine = machine_summary()
    choice = choose_precision(args.precision, torch.device("cpu"))
    ours = TrainConfig(compile=args.compile, precision=args.precision)
    arms: dict[str, TrainConfig | None] = {"plain fp32": None, "ours fp32": ours.replace(precision="fp32")}
    if choice.precision != "fp32":
        arms[f"ours {args.precision}"] = ours
    default_arm = f"ours {args.precision}" if choice.precision != "fp32" else "ours fp32"
    print(f"CPU: {machine['model']}; torch capability {machine['capability']}, native bf16 "
          f"{'yes' if machine['native_bf16'] else 'no'}, AMX {'yes' if machine['amx'] else 'no'} "
          f"-> class {machine['cpu_class']}")  # fmt: skip
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {machine['cores']} usable cores")
    warn = f" (warning: {choice.warning})" if choice.warning else ""
    print(f"precision {args.precision} -> {choice.reason}{warn}")
    print(f"ours = gan.train.Trainer with its defaults: augment {ours.augment}, EMA {ours.ema_decay}, "
          f"xflip {ours.xflip}, loss {ours.loss}, compile {ours.compile}, channels-last, fused Adam")  # fmt: skip
    # bf16 GEMM without native kernels runs a reference loop: a smaller matrix keeps this to a second
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16, n=2048 if machine["native_bf16"] else 256)
    fpi = flops_per_image(64)
    print(f"matmul peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s")
    print(f"FLOPs per image (one training step, flop_counter): {fpi / 1e9:.2f} GFLOP")
    print()
    print("img/s, min / median / max over alternated rounds")
    print("batch | " + " | ".join(f"{n:>24}" for n in arms) + " | ours default / plain (median)")
    res = {"machine": machine, "precision": {"requested": args.precision, **choice.__dict__},
           "peak_fp32": peak32, "peak_bf16": peak16, "flops_per_image": fpi, "rows": []}  # fmt: skip
    for batch in args.batches:
        r, warm = compare(batch, args.rounds, args.steps, args.warmup, arms)
        ratio = r[default_arm]["median"] / r["plain fp32"]["median"]
        cells = " | ".join(f"{v['min']:6.1f} / {v['median']:6.1f} / {v['max']:6.1f}" for v in r.values())
        print(f"{batch:5d} | {cells} | {ratio:.2f}x")
        res["rows"].append({"batch": batch, "arms": r, "default_arm": default_arm, "ratio": ratio, "warmup_s": warm})
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
    res["load_avg"] = os.getloadavg()
    res["date"] = time.strftime("%Y-%m-%d %H:%M")
    out = Path(args.out) / f"throughput_{machine['cpu_class']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"results -> {out}")
    row64 = next((r for r in res["rows"] if r["batch"] == 64), res["rows"][0])
    print(f"speedup: {row64['ratio']:.2f}x")


if __name__ == "__main__":
    main()
