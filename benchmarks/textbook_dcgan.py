"""The textbook DCGAN, as its own training loop: arm 0 of benchmarks/quality_per_minute.py.

This is the pytorch/examples `dcgan/main.py` step (Radford et al. 2015) on 64 px RGB images, with
none of GAN Lab's code: its own G and D (ngf = ndf = 64, BatchNorm, Sigmoid at D's end), its own
`weights_init`, `nn.BCELoss`, Adam 2e-4 with betas (0.5, 0.999) for both nets, batch 128
(the PyTorch DCGAN tutorial's batch; main.py's command-line default is 64), fp32, no
augmentation, no EMA. G stays in training mode throughout, as in main.py, so its samples use
batch statistics.

What differs from main.py, and why (none of it touches the step):
- The images are decoded once into memory (a uint8 tensor) instead of by DataLoader workers,
  so that the CPU time of the training process is all the time training costs; batches are
  drawn as `DataLoader(shuffle=True)` draws them (a fresh permutation each epoch, the last
  partial batch kept) and scaled as `ToTensor() + Normalize((0.5,)*3, (0.5,)*3)` scales them.
- A checkpoint (nets, optimizers, RNG state, position in the epoch, CPU seconds) every few CPU
  minutes, so a run resumes exactly where it stopped; the stopping rule is the caller's.

    python benchmarks/textbook_dcgan.py --data ../shared/datasets/cats64.zip --out runs/textbook --cpu-minutes 10
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from PIL import Image

NZ = 100  # size of the latent z vector
NGF = 64  # generator width
NDF = 64  # discriminator width
NC = 3  # image channels
IMAGE_SIZE = 64
BATCH_SIZE = 128
LR = 0.0002
BETA1 = 0.5
CKPT_NAME = "textbook_checkpoint.pt"


# custom weights initialization called on netG and netD (main.py)
def weights_init(m: nn.Module) -> None:
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(NGF * 8),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NGF * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NGF * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NGF),
            nn.ReLU(True),
            # state size. (ngf) x 32 x 32
            nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. (nc) x 64 x 64
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            # input is (nc) x 64 x 64
            nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 32 x 32
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NDF * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 16 x 16
            nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NDF * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*4) x 8 x 8
            nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(NDF * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*8) x 4 x 4
            nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        output = self.main(input)
        return output.view(-1, 1).squeeze(1)


def load_zip(path: str | Path) -> torch.Tensor:
    """Every image in a zip of JPEG/PNG files -> uint8 (N, 3, 64, 64), resized and centre-cropped
    as `transforms.Resize(64)` + `CenterCrop(64)` do."""
    out = []
    with zipfile.ZipFile(path) as zf:
        for name in sorted(zf.namelist()):
            if name.endswith("/") or not name.lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            img = Image.open(io.BytesIO(zf.read(name))).convert("RGB")
            w, h = img.size
            s = IMAGE_SIZE / min(w, h)
            if s != 1:
                img = img.resize((max(IMAGE_SIZE, round(w * s)), max(IMAGE_SIZE, round(h * s))), Image.BILINEAR)
            w, h = img.size
            left, top = (w - IMAGE_SIZE) // 2, (h - IMAGE_SIZE) // 2
            img = img.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
            out.append(np.asarray(img))
    if not out:
        raise ValueError(f"no images in {path}")
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)


class Textbook:
    """The nets, optimizers and loop state of one run; `step()` is one iteration of main.py."""

    def __init__(self, images: torch.Tensor, seed: int) -> None:
        random.seed(seed)
        torch.manual_seed(seed)
        self.images = images  # uint8 (N, 3, 64, 64)
        self.seed = seed
        self.netG = Generator()
        self.netG.apply(weights_init)
        self.netD = Discriminator()
        self.netD.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.real_label, self.fake_label = 1.0, 0.0
        self.optimizerD = optim.Adam(self.netD.parameters(), lr=LR, betas=(BETA1, 0.999))
        self.optimizerG = optim.Adam(self.netG.parameters(), lr=LR, betas=(BETA1, 0.999))
        self.step_count = 0  # iterations done
        self.epoch = 0
        self.i = 0  # batch index within the epoch
        self.perm = torch.randperm(len(images))  # this epoch's order, as DataLoader(shuffle=True)
        self.cpu_s = 0.0  # CPU seconds spent in step() so far (this process and earlier ones)
        self.last = {}

    def _next_batch(self) -> torch.Tensor:
        n = len(self.images)
        if self.i * BATCH_SIZE >= n:  # epoch over: a new permutation
            self.epoch, self.i = self.epoch + 1, 0
            self.perm = torch.randperm(n)
        idx = self.perm[self.i * BATCH_SIZE : (self.i + 1) * BATCH_SIZE]  # the last batch may be partial
        self.i += 1
        # ToTensor() + Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)): uint8 -> [-1, 1]
        return (self.images[idx].float() / 255.0 - 0.5) / 0.5

    def step(self) -> None:
        netD, netG, criterion = self.netD, self.netG, self.criterion
        ############################
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        ###########################
        # train with real
        netD.zero_grad()
        real_cpu = self._next_batch()
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), self.real_label, dtype=real_cpu.dtype)

        output = netD(real_cpu)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()

        # train with fake
        noise = torch.randn(batch_size, NZ, 1, 1)
        fake = netG(noise)
        label.fill_(self.fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()

        ############################
        # (2) Update G network: maximize log(D(G(z)))
        ###########################
        netG.zero_grad()
        label.fill_(self.real_label)  # fake labels are real for generator cost
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()

        self.step_count += 1
        self.last = {"loss_d": errD.item(), "loss_g": errG.item(), "d_x": D_x, "d_g_z1": D_G_z1, "d_g_z2": D_G_z2}

    @torch.no_grad()
    def samples(self, n: int, seed: int = 0) -> torch.Tensor:
        """n images as uint8 (N, 3, 64, 64), drawn as main.py draws its sample grids: G in training
        mode (batch statistics) on batches of 128 noise vectors. A copy of G is used, so its
        BatchNorm running statistics and the training RNG stay untouched."""
        import copy

        G = copy.deepcopy(self.netG).train()
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(n, NZ, 1, 1, generator=g)
        out = [G(noise[i : i + BATCH_SIZE]) for i in range(0, n, BATCH_SIZE)]
        return torch.cat(out).mul(127.5).add(127.5).round().clamp(0, 255).to(torch.uint8)

    # ---- checkpoints: tensors and plain numbers only, loaded with weights_only=True ----

    def save(self, out_dir: str | Path) -> Path:
        path = Path(out_dir) / CKPT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "netG": self.netG.state_dict(), "netD": self.netD.state_dict(),
            "optimizerG": self.optimizerG.state_dict(), "optimizerD": self.optimizerD.state_dict(),
            "rng": torch.get_rng_state(), "py_rng": list(random.getstate()[1]), "seed": self.seed,
            "step": self.step_count, "epoch": self.epoch, "i": self.i, "perm": self.perm, "cpu_s": self.cpu_s,
        }  # fmt: skip
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def load(self, out_dir: str | Path) -> bool:
        """Continue from the checkpoint in out_dir, if there is one (True if so)."""
        path = Path(out_dir) / CKPT_NAME
        if not path.is_file():
            return False
        st = torch.load(path, weights_only=True)
        if st["seed"] != self.seed:
            raise ValueError(f"{path} was trained with seed {st['seed']}, not {self.seed}")
        self.netG.load_state_dict(st["netG"])
        self.netD.load_state_dict(st["netD"])
        self.optimizerG.load_state_dict(st["optimizerG"])
        self.optimizerD.load_state_dict(st["optimizerD"])
        torch.set_rng_state(st["rng"])
        random.setstate((3, tuple(st["py_rng"]), None))
        self.step_count, self.epoch, self.i = st["step"], st["epoch"], st["i"]
        self.perm, self.cpu_s = st["perm"], st["cpu_s"]
        return True


def train(
    tb: Textbook,
    out_dir: str | Path,
    should_stop: Callable[[int, float], bool],
    *,
    checkpoint_cpu_s: float = 120.0,
    log: Callable[[str], None] = print,
) -> Textbook:
    """Run `tb.step()` until `should_stop(step, cpu_seconds)`; checkpoint every
    `checkpoint_cpu_s` CPU seconds and at the end. CPU time is the process's (time.process_time),
    counted around the steps only."""
    last_ckpt = tb.cpu_s
    while not should_stop(tb.step_count, tb.cpu_s):
        c0 = time.process_time()
        tb.step()
        tb.cpu_s += time.process_time() - c0
        if tb.step_count % 10 == 0:
            s = tb.last
            log(
                f"step {tb.step_count} epoch {tb.epoch} cpu {tb.cpu_s:.0f}s Loss_D {s['loss_d']:.4f} "
                f"Loss_G {s['loss_g']:.4f} D(x) {s['d_x']:.4f} D(G(z)) {s['d_g_z1']:.4f} / {s['d_g_z2']:.4f}"
            )
        if tb.cpu_s - last_ckpt >= checkpoint_cpu_s:
            tb.save(out_dir)
            last_ckpt = tb.cpu_s
    tb.save(out_dir)
    return tb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="zip of images")
    p.add_argument("--out", required=True, help="folder for the checkpoint and the sample grid")
    p.add_argument("--cpu-minutes", type=float, default=10.0, help="stop after this much CPU time of training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tb = Textbook(load_zip(args.data), args.seed)
    if tb.load(args.out):
        print(f"resumed at step {tb.step_count} ({tb.cpu_s:.0f} CPU s)")
    train(tb, args.out, lambda step, cpu: cpu >= 60 * args.cpu_minutes)
    grid = tb.samples(64).view(8, 8, NC, IMAGE_SIZE, IMAGE_SIZE).permute(0, 3, 1, 4, 2)  # (row, H, col, W, C)
    Image.fromarray(grid.reshape(8 * IMAGE_SIZE, 8 * IMAGE_SIZE, NC).numpy()).save(Path(args.out) / "samples.png")
    print(f"stopped at step {tb.step_count} after {tb.cpu_s:.0f} CPU s; samples in {args.out}/samples.png")


if __name__ == "__main__":
    main()
