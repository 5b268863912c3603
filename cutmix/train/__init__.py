"""The training toolkit behind ``cutmix train`` (extra ``[train]``): configs, data, loop, checkpoints, DDP."""

from cutmix.train.config import TrainConfig
from cutmix.train.engine import RunResult, train

__all__ = ["RunResult", "TrainConfig", "train"]
