"""TensorBoard event files for training runs, through ``torch.utils.tensorboard`` (needs the tensorboard package).

The engine's ``metrics.jsonl`` stays the source of truth; this writes the same numbers where the field looks. Call
sites in the training engine (rank 0 only, when ``--tensorboard`` is on)::

    tb = TensorBoardLogger(run_dir)                          # when the run starts (or resumes: events append)
    tb.log_epoch(record, step=record["epoch"])               # after each epoch's record is appended
    tb.log_images("train/mixed", images, step=epoch)         # once per epoch: the first mixed batch (uint8 or float)
    tb.close()                                               # when the run ends or is interrupted

Tags group by split: ``train_loss`` -> ``train/loss``, ``val_top1_err`` -> ``val/top1_err``, ``train_eval_*`` ->
``train_eval/*``, ``lr`` -> ``train/lr``, ``epoch_time_s`` -> ``time/epoch_s``, and the mixing share
``mean_top_target_per_rank`` (the mean weight of each target's largest label, per rank) -> ``mix/mean_top_target``
(mean over ranks, plus ``.../rank{i}`` with several ranks). Records may lack ``val_*`` on epochs without evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

try:
    from torch.utils.tensorboard import SummaryWriter
except ImportError as err:  # torch raises this when the tensorboard package is missing
    raise ImportError("cutmix.integrations.tensorboard needs TensorBoard: pip install tensorboard") from err

_AXES = ("epoch", "step")  # the x axis, not a curve
_TAGS = {"lr": "train/lr", "epoch_time_s": "time/epoch_s", "mean_top_target_per_rank": "mix/mean_top_target"}
_SPLITS = ("train_eval", "train", "val", "test")


def tag_for(key: str) -> str:
    """The TensorBoard tag of an epoch-record key: ``val_top1_err`` -> ``val/top1_err``."""
    if key in _TAGS:
        return _TAGS[key]
    for split in _SPLITS:
        if key.startswith(split + "_"):
            return f"{split}/{key[len(split) + 1:]}"
    return key


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def epoch_scalars(record: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """``(tag, value)`` for every number of an epoch record; a list of numbers gives its mean and, when it has
    several, each element as ``tag/rank{i}``; nested dicts give ``tag/key``. Other values (text, None) are skipped."""
    for key, value in record.items():
        if key in _AXES:
            continue
        tag = tag_for(str(key))
        if _is_number(value):
            yield tag, float(value)
        elif isinstance(value, (list, tuple)) and value and all(_is_number(v) for v in value):
            yield tag, math.fsum(value) / len(value)
            if len(value) > 1:
                yield from ((f"{tag}/rank{i}", float(v)) for i, v in enumerate(value))
        elif isinstance(value, Mapping):
            yield from ((f"{tag}/{sub}", v) for sub, v in epoch_scalars(value))


def image_grid(images: Tensor, nrow: int = 8, padding: int = 2,
               value_range: tuple[float, float] | None = None) -> Tensor:
    """A float32 [C, H', W'] grid in [0, 1] of images [N, C, H, W]: uint8 as 0..255, float scaled from
    ``value_range`` (default: the batch's own min..max, so normalised inputs show)."""
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor [N, C, H, W], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be a non-empty batch [N, C, H, W] with 1 or 3 channels, got "
                         f"{tuple(images.shape)}")
    if not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise TypeError(f"images must be uint8 or floating, got {images.dtype}")
    x = images.detach().float().cpu()
    if images.dtype == torch.uint8:
        x /= 255.0
    else:
        low, high = value_range if value_range is not None else (float(x.min()), float(x.max()))
        x = ((x - low) / max(high - low, 1e-12)).clamp_(0.0, 1.0)
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    x = torch.nn.functional.pad(x, (padding, 0, padding, 0))  # a border left of and above every image
    x = torch.cat([x, x.new_zeros(rows * cols - n, *x.shape[1:])])
    grid = x.view(rows, cols, c, h + padding, w + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(c, rows * (h + padding), cols * (w + padding))
    return torch.nn.functional.pad(grid, (0, padding, 0, padding))


class TensorBoardLogger:
    """Writes a run's epoch records and mixed-batch pictures as TensorBoard events in ``run_dir``."""

    def __init__(self, run_dir: str | Path, *, flush_secs: int = 30) -> None:
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir), flush_secs=flush_secs)

    def log_epoch(self, record: Mapping[str, Any], step: int) -> list[str]:
        """Every numeric scalar of ``record`` at ``step``; returns the tags written."""
        if not isinstance(record, Mapping):
            raise TypeError(f"record must be a mapping of metric names to values, got {type(record).__name__}")
        tags = []
        for tag, value in epoch_scalars(record):
            self.writer.add_scalar(tag, value, int(step))
            tags.append(tag)
        self.writer.flush()
        return tags

    def log_images(self, tag: str, images: Tensor, step: int, *, max_images: int = 32, nrow: int = 8,
                   value_range: tuple[float, float] | None = None) -> None:
        """A grid of the first ``max_images`` of a (mixed) batch [N, C, H, W], uint8 or float."""
        if isinstance(images, Tensor) and images.ndim == 4:
            images = images[:max_images]
        self.writer.add_image(tag, image_grid(images, nrow, value_range=value_range), int(step), dataformats="CHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
