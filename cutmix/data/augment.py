"""The CIFAR recipe's augmentation: a padded random crop and horizontal flip, applied to a whole uint8 or float
batch at once (on the GPU when the batch is there), since per-sample PIL transforms would dominate a small model's
step time. The ImageNet pipelines are in :mod:`cutmix.data.imagenet` (torchvision v2, imported only there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cutmix._checks import check_choice
from cutmix._choices import PADDING_MODES


def _check_batch(images: object) -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape [N, C, H, W], got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must have 4 dimensions [N, C, H, W], got shape {tuple(images.shape)}")
    if not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise TypeError(f"images must be uint8 or a floating dtype, got {images.dtype}")
    return images


def _check_pad(pad: object) -> int:
    if isinstance(pad, bool) or not isinstance(pad, int):
        raise TypeError(f"pad must be an int >= 0, got {type(pad).__name__}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    return pad


def crop_flip_params(
    n: int, pad: int, generator: torch.Generator | None = None, flip: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Draw per-sample (y offset, x offset, flip) for :func:`random_crop_flip`, in that order.

    Offsets are uniform integers in [0, 2 * pad] (the window's corner in the padded image), flips are Bernoulli(0.5)
    (all False with ``flip=False``, drawing nothing). The draws happen on the generator's device (CPU by default).
    """
    pad = _check_pad(pad)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    device = generator.device if generator is not None else torch.device("cpu")
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    if flip:
        flips = torch.randint(0, 2, (n,), generator=generator, device=device).bool()
    else:
        flips = torch.zeros(n, dtype=torch.bool, device=device)
    return oy, ox, flips


def _reflect(index: Tensor, length: int) -> Tensor:
    """Map indices in [-length + 1, 2 * length - 2] into [0, length) the way ``F.pad(mode="reflect")`` does."""
    index = index.abs()
    return torch.where(index >= length, 2 * (length - 1) - index, index)


def crop_flip(images: Tensor, oy: Tensor, ox: Tensor, flips: Tensor, pad: int, padding_mode: str = "zeros") -> Tensor:
    """The deterministic half of :func:`random_crop_flip`: crop each sample at its offsets, then flip it.

    Two gathers (rows, then columns) instead of padding a copy of the batch; out-of-range taps read zeros or the
    reflection, so the result equals pad + slice + flip exactly, for any dtype.
    """
    images = _check_batch(images)
    pad = _check_pad(pad)
    check_choice(padding_mode, "padding_mode", PADDING_MODES)
    n, c, h, w = images.shape
    if padding_mode == "reflect" and pad >= min(h, w):
        raise ValueError(f"padding_mode='reflect' needs pad < the image size ({h}x{w}), got pad={pad}")
    dev = images.device
    if oy.device == ox.device == flips.device != dev:
        # Parameters drawn on a CPU generator for images on an accelerator: one small asynchronous copy, so that the
        # host never waits for the device's queue (a blocking copy would synchronise once per batch).
        params = torch.stack([oy.long(), ox.long(), flips.long()]).to(dev, non_blocking=True)
        oy, ox, flips = params[0], params[1], params[2].bool()
    else:
        oy, ox, flips = (p.to(dev, non_blocking=True) for p in (oy, ox, flips))
    ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
    rows = oy[:, None] - pad + ar_h  # [n, h] source rows
    cols = ox[:, None] - pad + torch.where(flips[:, None], w - 1 - ar_w, ar_w)  # [n, w] source columns
    if padding_mode == "reflect":
        rows, cols = _reflect(rows, h), _reflect(cols, w)
        valid = None
    else:
        valid = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    out = images.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    out = out.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    if valid is not None:
        out = out.masked_fill_(~valid, 0)
    if images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def random_crop_flip(
    images: Tensor,
    pad: int,
    generator: torch.Generator | None = None,
    padding_mode: str = "zeros",
    flip: bool = True,
) -> Tensor:
    """CIFAR augmentation for a whole batch: pad by ``pad``, take a random same-size window, flip with p = 0.5.

    ``images`` is uint8 or float [N, C, H, W] on any device; the result has its dtype, shape and device (and stays
    channels_last if it was). Randomness comes from ``generator`` (on its own device; the global CPU generator by
    default) as in :func:`crop_flip_params`, so a seeded generator reproduces the batch exactly.
    """
    images = _check_batch(images)
    oy, ox, flips = crop_flip_params(images.shape[0], pad, generator, flip)
    return crop_flip(images, oy, ox, flips, pad, padding_mode)
