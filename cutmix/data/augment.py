"""Augmentations of the CutMix paper's recipes.

CIFAR: a padded random crop and horizontal flip, applied to a whole uint8 or float batch at once (on the GPU when
the batch is there), since per-sample PIL transforms would dominate a small model's step time. ImageNet: torchvision
v2 pipelines on uint8 tensors (random-resized crop, flip, colour jitter and the AlexNet/ResNet PCA "lighting"
noise for training; resize and centre crop for evaluation).
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from cutmix._checks import check_choice

PADDING_MODES = ("zeros", "reflect")


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


# -- ImageNet


class Lighting(v2.Transform):
    """PCA colour noise ("lighting"): add ``eigvec @ (alpha * eigval)`` to every pixel, alpha ~ N(0, alphastd).

    The eigen-decomposition of ImageNet's RGB covariance (pixel scale [0, 1]) is the one the ResNet and CutMix
    training recipes use. uint8 images are shifted by 255x the offset and rounded and clamped back into uint8;
    float images (assumed in [0, 1]) are shifted without clamping, as in those recipes. One draw per call.
    """

    EIGVAL = (0.2175, 0.0188, 0.0045)
    EIGVEC = (
        (-0.5675, 0.7192, 0.4009),
        (-0.5808, -0.0045, -0.8140),
        (-0.5836, -0.6948, 0.4203),
    )

    def __init__(self, alphastd: float = 0.1) -> None:
        super().__init__()
        if isinstance(alphastd, bool) or not isinstance(alphastd, (int, float)) or not alphastd >= 0:
            raise ValueError(f"alphastd must be a number >= 0, got {alphastd!r}")
        self.alphastd = float(alphastd)
        self.register_buffer("eigval", torch.tensor(self.EIGVAL), persistent=False)
        self.register_buffer("eigvec", torch.tensor(self.EIGVEC), persistent=False)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        alpha = torch.randn(3) * self.alphastd
        return {"rgb": self.eigvec @ (alpha * self.eigval)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, (tv_tensors.BoundingBoxes, tv_tensors.Mask)):
            return inpt
        if isinstance(inpt, PIL.Image.Image):
            raise TypeError("Lighting works on tensors: put v2.PILToTensor() or v2.ToImage() before it")
        if inpt.ndim < 3 or inpt.shape[-3] != 3:
            raise ValueError(f"Lighting needs RGB images [..., 3, H, W], got shape {tuple(inpt.shape)}")
        rgb = params["rgb"].to(inpt.device)[:, None, None]
        if inpt.dtype == torch.uint8:
            out = (inpt.float() + rgb * 255).round_().clamp_(0, 255).to(torch.uint8)
        elif inpt.is_floating_point():
            out = inpt + rgb.to(inpt.dtype)
        else:
            raise TypeError(f"Lighting needs uint8 or floating images, got {inpt.dtype}")
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    def extra_repr(self) -> str:
        return f"alphastd={self.alphastd}"


def imagenet_train_transform(size: int = 224) -> v2.Compose:
    """The CutMix paper's ImageNet training augmentation, on uint8 tensors (or PIL images): random-resized crop,
    horizontal flip, colour jitter 0.4 and PCA lighting 0.1. Returns a plain uint8 tensor [3, size, size]."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
            Lighting(alphastd=0.1),
            v2.ToPureTensor(),
        ]
    )


def eval_transform(size: int = 224, resize: int = 256) -> v2.Compose:
    """ImageNet evaluation: resize the short side to ``resize``, centre-crop ``size``; uint8 tensor out."""
    return v2.Compose([v2.ToImage(), v2.Resize(resize, antialias=True), v2.CenterCrop(size), v2.ToPureTensor()])
