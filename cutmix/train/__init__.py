"""The training toolkit behind ``cutmix train`` (extra ``[train]``): data, loop, DDP.

The run format it writes (config, settings, presets, checkpoints) lives in :mod:`cutmix.run`, below both this and
:mod:`cutmix.evaluate`. ``train`` and ``RunResult`` load the engine on first use, so ``import cutmix.train`` stays
light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunResult", "TrainConfig", "train"]


def __getattr__(name: str) -> Any:
    if name in ("RunResult", "train"):
        from cutmix.train import engine

        return getattr(engine, name)
    if name == "TrainConfig":
        from cutmix.run.config import TrainConfig

        return TrainConfig
    raise AttributeError(f"module 'cutmix.train' has no attribute {name!r}")
