"""Per-channel normalisation, done on the batch after mixing so that uint8 images travel (and mix) at 1/4 the bytes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

Stats = tuple[tuple[float, float, float], tuple[float, float, float]]

# (mean, std) per RGB channel on the [0, 1] scale, over each training set.
MEAN_STD: dict[str, Stats] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # the builtin generator's 10000 default train images (tests/test_data_shapes.py recomputes it)
    "shapes": ((0.5, 0.502, 0.501), (0.256, 0.268, 0.249)),
}


def normalize(
    images: Tensor, mean: Sequence[float], std: Sequence[float], dtype: torch.dtype = torch.float32
) -> Tensor:
    """``(x / 255 - mean) / std`` for uint8 images, ``(x - mean) / std`` for floating ones (taken to be in [0, 1]).

    ``images`` is [..., C, H, W]; the result has ``dtype`` and the input's memory format (channels_last stays
    channels_last), on the input's device. A loop normalising every batch holds a :class:`Normalizer` instead.
    """
    _check_stats(mean, std)
    _check_call(images, len(mean), dtype)
    m = torch.tensor(mean, dtype=dtype, device=images.device)[:, None, None]
    s = torch.tensor(std, dtype=dtype, device=images.device)[:, None, None]
    return _apply(images, m, s, dtype)


class Normalizer(nn.Module):
    """:func:`normalize` with the statistics checked once and kept as buffers (moved with ``.to(device)``).

    The one normalisation of the toolkit: training normalises each batch after mixing, and evaluation puts a model
    behind it so that attacks and occlusions work on [0, 1] pixels. The buffers are not saved in a state dict.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        _check_stats(mean, std)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32)[:, None, None], persistent=False)

    def forward(self, images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        _check_call(images, self.mean.shape[0], dtype)
        return _apply(images, self.mean.to(dtype), self.std.to(dtype), dtype)


def _check_stats(mean: Sequence[float], std: Sequence[float]) -> None:
    if len(mean) != len(std):
        raise ValueError(f"mean and std need one value per channel each, got {len(mean)} and {len(std)} values")
    if any(s <= 0 for s in std):
        raise ValueError(f"std must be > 0 in every channel, got {tuple(std)}")


def _check_call(images: object, channels: int, dtype: object) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor [..., C, H, W], got {type(images).__name__}")
    if images.ndim < 3:
        raise ValueError(f"images must be [..., C, H, W], got shape {tuple(images.shape)}")
    if not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise TypeError(f"images must be uint8 or floating, got {images.dtype}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if images.shape[-3] != channels:
        raise ValueError(f"mean and std need one value per channel ({images.shape[-3]}), got {channels} values")


def _apply(images: Tensor, m: Tensor, s: Tensor, dtype: torch.dtype) -> Tensor:
    x = images.to(dtype)
    if images.dtype == torch.uint8:
        x = x.div_(255)
    elif x is images:  # .to() returned the input itself: do not modify the caller's tensor
        x = x.clone(memory_format=torch.preserve_format)
    return x.sub_(m).div_(s)
