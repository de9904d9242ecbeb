"""torchrun support: process group, DDP wrapping, rank-0-only writes. A no-op in one process.

`torchrun --nproc_per_node N -m gan train ...` sets WORLD_SIZE/RANK/LOCAL_RANK; `setup` then joins
the process group (nccl on CUDA, gloo on CPU). `batch_size` is per process: the global batch is
batch_size x world_size. BatchNorm is per rank (no SyncBatchNorm): each rank normalises its own
batch, as in single-process training with that batch size, and DDP broadcasts rank 0's running
stats at each forward, so every rank samples with the same statistics.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .device import resolve_device


@dataclass
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    active: bool  # a process group was set up by us

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_name: str) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if world <= 1:
        return DistContext(0, 1, 0, device, False)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world, local, device, True)


def wrap(m: nn.Module, ctx: DistContext) -> nn.Module:
    if not ctx.active:
        return m
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(m, device_ids=ids)


def no_sync(m: nn.Module, ctx: DistContext):
    """Skip the gradient all-reduce for this backward (gradients accumulate locally)."""
    return m.no_sync() if ctx.active else contextlib.nullcontext()


def all_mean(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.active:
        t = t.clone()
        dist.all_reduce(t)
        t /= ctx.world_size
    return t


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank if any rank says True (one tiny all-reduce; free in one process)."""
    if not ctx.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def teardown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
