"""The CutMix paper's ImageNet pipelines as torchvision v2 transforms on uint8 tensors: random-resized crop, flip,
colour jitter and the AlexNet/ResNet PCA "lighting" noise for training; resize and centre crop for evaluation.

A module of its own because importing torchvision costs about two seconds (it loads ``torch._dynamo``): the CIFAR
recipe, the builtin sets and the command line's parser do not pay for it.
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


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
