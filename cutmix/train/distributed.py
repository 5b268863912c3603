"""The few DDP pieces the engine needs: set-up from torchrun's environment, reductions, rank-0-only output.

``torchrun --nproc-per-node N -m cutmix train ...`` sets RANK / WORLD_SIZE / LOCAL_RANK; without them the run is a
single process and every helper here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from cutmix.runtime import DEFAULT_TIMEOUT_S, pick_device


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device_preference: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> Context:
    """Join the process group when launched by torchrun (NCCL on GPUs, gloo on CPUs).

    ``timeout_s`` bounds how long a collective waits for the other ranks: one stalled or dead rank then stops the
    job with an error after that long, instead of freezing it (torch's defaults are 10 to 30 minutes).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world_size == 1:
        return Context(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                timeout=timedelta(seconds=timeout_s))
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, device)


def is_timeout(err: BaseException) -> bool:
    """Whether ``err`` is a collective that gave up waiting (gloo and NCCL word it differently)."""
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("timed out" in text or "timeout" in text)


def teardown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Sum over ranks in place (returns the tensor for chaining)."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_floats(value: float, ctx: Context) -> list[float]:
    """One float from every rank, in rank order."""
    if not ctx.distributed:
        return [value]
    out: list[float | None] = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return [float(v) for v in out]  # type: ignore[arg-type]


def broadcast_object(value: object, ctx: Context) -> object:
    """Rank 0's value on every rank (e.g. the run directory)."""
    if not ctx.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()
