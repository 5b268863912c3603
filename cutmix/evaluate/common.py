"""What every evaluation shares: a classifier that takes pixels in [0, 1], and batched iteration over uint8 images.

Attacks (FGSM) and corruptions (occlusion, in-between-class mixing) are defined in pixel space, so the evaluation
wraps the trained network together with its normalisation: ``PixelClassifier(x01) = model((x01 - mean) / std)``.
Everything else feeds it uint8 batches converted on the model's device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from cutmix.data.normalize import Normalizer


class PixelClassifier(nn.Module):
    """``model`` behind its input normalisation: takes float images in [0, 1] [N, C, H, W], returns logits."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.normalizer = Normalizer(mean, std)

    @property
    def device(self) -> torch.device:
        return self.normalizer.mean.device

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.normalizer(x, x.dtype if x.is_floating_point() else torch.float32))


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in eval mode, then give every submodule back the mode it had (mixed modes survive)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


def model_device(module: nn.Module) -> torch.device:
    """Where ``module`` lives: its first parameter or buffer (CPU for a module with neither)."""
    for tensor in [*module.parameters(), *module.buffers()][:1]:
        return tensor.device
    return torch.device("cpu")


def to_unit(images: Tensor, device: torch.device | str | None = None) -> Tensor:
    """uint8 [N, C, H, W] (or float already in [0, 1]) -> float32 in [0, 1] on ``device``."""
    x = images.to(device) if device is not None else images
    return x.float().div_(255) if images.dtype == torch.uint8 else x.float()


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)`` in order (evaluation never shuffles)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@torch.inference_mode()
def predict_logits(classifier: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """Logits [N, K] (float32, on the CPU) of ``classifier`` (a :class:`PixelClassifier`) on uint8 ``images``."""
    check_eval_images(images)
    device = model_device(classifier)
    with eval_mode(classifier):
        out = [classifier(to_unit(images[s], device)).float().cpu() for s in batches(images.shape[0], batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def check_eval_images(images: Tensor, name: str = "images") -> Tensor:
    """Evaluation inputs are a non-empty uint8 or float batch [N, C, H, W] (one image is fine, unlike
    :func:`cutmix._checks.check_images`, which checks a batch to mix)."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [N, C, H, W], got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{name} must be [N, C, H, W], got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise TypeError(f"{name} must be uint8 or floating, got {images.dtype}")
    return images


def check_eval_labels(labels: Tensor, n: int, num_classes: int | None = None, name: str = "labels") -> Tensor:
    """Integer class indices [n], each in [0, num_classes), returned as int64 (evaluation takes no soft labels,
    unlike :func:`cutmix._checks.check_labels`)."""
    if not isinstance(labels, Tensor) or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"{name} must be an integer torch.Tensor [N], got "
                        f"{labels.dtype if isinstance(labels, Tensor) else type(labels).__name__}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
    if num_classes is not None and n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return labels.long()
