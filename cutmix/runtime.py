"""What training and evaluation both need from the machine: the device to run on and seeded random streams.

It sits below :mod:`cutmix.train` and :mod:`cutmix.evaluate` (and depends on torch only), so neither imports the
other for these.
"""

from __future__ import annotations

import hashlib

import torch

DEFAULT_TIMEOUT_S = 600.0  # how long a DDP collective waits for the other ranks before the job stops


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` (this rank's GPU when CUDA is available, else the CPU) or a torch device string.

    ``"cuda"`` without an index means this process's ``local_rank``; a CUDA device without CUDA is a ValueError.
    """
    if preference == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {preference!r} was requested but CUDA is not available")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def seed_for(*parts: int) -> int:
    """A 63-bit seed derived from integers, e.g. ``seed_for(seed, MIX, rank, epoch, step)``."""
    digest = hashlib.blake2b(b"".join(int(p).to_bytes(8, "little", signed=True) for p in parts), digest_size=8)
    return int.from_bytes(digest.digest(), "little") >> 1


def stream(*parts: int) -> torch.Generator:
    """A CPU generator seeded with :func:`seed_for` of ``parts``: one independent stream per purpose."""
    return torch.Generator().manual_seed(seed_for(*parts))
