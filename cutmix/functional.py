"""Stateless batch ops: CutMix, Mixup, Cutout and target mixing.

Every op takes its randomness as arguments (lambda, boxes, partner index), so it is a deterministic function that
tests can pin and that the transforms in :mod:`cutmix.transforms` wrap with a sampler. Conventions:

* images are [N, C, H, W], uint8 or floating, any memory format (the output keeps it), CPU or CUDA;
* ``index`` [N] names each sample's partner (a permutation in the transforms, but any indices work);
* boxes are ``(x0, y0, x1, y1)`` half-open int64, [4] for one box for the batch or [N, 4] for a box per sample;
* targets are [N, K] in ``target_dtype`` (float32 by default) and every row sums to 1;
* ops are out-of-place unless ``inplace=True``, differentiable when autograd is on, and never loop over samples.

Label modes (the paper's ablation, Table 5): ``"area"`` weights the two labels by the exact pixel shares
(the paper); ``"onehot"`` gives the whole label to the image that covers the larger area (ties keep the image's
own label); ``"complete"`` gives 0.5 / 0.5 to every sample that was actually mixed (0 < lambda < 1).
"""

from __future__ import annotations

import torch
from torch import Tensor

from cutmix._checks import check_choice, check_fraction, check_images, check_index, check_labels
from cutmix._select import box_mask, select_boxes
from cutmix.boxes import box_lambda, check_boxes

LABEL_MODES = ("area", "onehot", "complete")


def _lam_tensor(lam: float | Tensor, n: int, device: torch.device) -> Tensor:
    """``lam`` as float64 [N] on ``device``; a scalar is shared by the batch."""
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    if lam_t.ndim == 0:
        return lam_t.to(device).expand(n)
    if lam_t.shape != (n,):
        raise ValueError(f"lam must be a number or a tensor of shape [{n}], got shape {tuple(lam_t.shape)}")
    return lam_t.to(device, non_blocking=True)


def label_weights(lam: Tensor, label: str = "area") -> Tensor:
    """The weight of each image's own label given the share ``lam`` of its pixels it keeps."""
    check_choice(label, "label", LABEL_MODES)
    if label == "onehot":
        return (lam >= 0.5).to(lam.dtype)
    if label == "complete":
        return torch.where((lam > 0) & (lam < 1), torch.full_like(lam, 0.5), lam)
    return lam


def one_hot(
    labels: Tensor,
    num_classes: int | None = None,
    *,
    label_smoothing: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Targets [N, K] of class indices [N] (or soft labels [N, K], passed through), with optional smoothing."""
    labels, k = check_labels(labels, labels.shape[0] if isinstance(labels, Tensor) else 0, num_classes)
    if labels.ndim == 2:
        targets = labels.to(dtype)
    else:
        targets = torch.zeros(labels.shape[0], k, dtype=dtype, device=labels.device)
        targets.scatter_(1, labels.long()[:, None], 1.0)
    return _smooth(targets, label_smoothing)


def _smooth(targets: Tensor, label_smoothing: float) -> Tensor:
    eps = check_fraction(label_smoothing, "label_smoothing")
    if eps == 0.0:
        return targets
    return targets.mul(1.0 - eps).add_(eps / targets.shape[1])


def mix_targets(
    labels: Tensor,
    index: Tensor,
    lam: float | Tensor,
    *,
    num_classes: int | None = None,
    label: str = "area",
    label_smoothing: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``w * y + (1 - w) * y[index]`` with ``w = label_weights(lam, label)``, then label smoothing.

    ``labels`` are class indices [N] or soft labels [N, K]; ``lam`` is the share of each image that it keeps (a
    number for the batch, or [N]).
    """
    n = labels.shape[0] if isinstance(labels, Tensor) else 0
    labels, k = check_labels(labels, n, num_classes)
    index = check_index(index, n).to(labels.device, non_blocking=True)
    w = label_weights(_lam_tensor(lam, n, labels.device), label)
    if labels.ndim == 2:
        y = labels.double()
        targets = (w[:, None] * y + (1.0 - w[:, None]) * y[index]).to(dtype)
    else:
        y = labels.long()[:, None]
        targets = torch.zeros(n, k, dtype=torch.float64, device=labels.device)
        targets.scatter_add_(1, y, w[:, None]).scatter_add_(1, y[index], (1.0 - w)[:, None])
        targets = targets.to(dtype)
    return _smooth(targets, label_smoothing)


def paste(images: Tensor, boxes: Tensor, index: Tensor, *, inplace: bool = False) -> Tensor:
    """The CutMix image op: each image receives its partner's pixels inside its box.

    One box [4] for the batch is a slice copy of the box region only; boxes [N, 4] select per pixel, vectorised.
    """
    check_images(images, min_batch=1)
    n, _, h, w = images.shape
    index = check_index(index, n).to(images.device, non_blocking=True)
    boxes = check_boxes(boxes, n, h, w)
    if boxes.ndim == 1:
        x0, y0, x1, y1 = boxes.tolist()
        out = images if inplace else images.clone()
        if x1 > x0 and y1 > y0:
            out[:, :, y0:y1, x0:x1] = images[index, :, y0:y1, x0:x1]  # the gather copies before the write
        return out
    return select_boxes(images, images[index], boxes, inplace=inplace)


def blend(images: Tensor, lam: float | Tensor, index: Tensor, *, inplace: bool = False) -> Tensor:
    """The Mixup image op: ``lam * x + (1 - lam) * x[index]``; uint8 is blended in float32 and rounded."""
    check_images(images, min_batch=1)
    n = images.shape[0]
    index = check_index(index, n).to(images.device, non_blocking=True)
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    if lam_t.ndim == 0:
        weight: float | Tensor = float(lam_t)
    else:
        weight = _lam_tensor(lam_t, n, images.device).view(n, 1, 1, 1)
    work = images if images.is_floating_point() else images.float()
    if isinstance(weight, Tensor):
        weight = weight.to(work.dtype)
    mixed = torch.lerp(work[index], work, weight)  # start + weight * (end - start) = lam*x + (1-lam)*x[index]
    if not images.is_floating_point():
        mixed = mixed.round_().clamp_(0, 255).to(images.dtype)
    if inplace:
        return images.copy_(mixed)
    return mixed.contiguous(memory_format=_memory_format(images))


def erase(images: Tensor, boxes: Tensor, *, value: float = 0.0, inplace: bool = False) -> Tensor:
    """The Cutout image op: fill each box with ``value``."""
    check_images(images, min_batch=1)
    n, _, h, w = images.shape
    boxes = check_boxes(boxes, n, h, w)
    out = images if inplace else images.clone()
    if boxes.ndim == 1:
        x0, y0, x1, y1 = boxes.tolist()
        out[:, :, y0:y1, x0:x1] = value
        return out
    return out.masked_fill_(box_mask(boxes, h, w, images.device), value)


def _memory_format(t: Tensor) -> torch.memory_format:
    if not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def cutmix(
    images: Tensor,
    labels: Tensor,
    *,
    boxes: Tensor,
    index: Tensor,
    num_classes: int | None = None,
    label: str = "area",
    label_smoothing: float = 0.0,
    inplace: bool = False,
    target_dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """CutMix a batch with given boxes and partners; returns ``(images, targets)``.

    The label weight of each image is the exact share of its pixels outside its (already clipped) box.
    """
    check_images(images, min_batch=1)
    n, _, h, w = images.shape
    check_labels(labels, n, num_classes)
    boxes = check_boxes(boxes, n, h, w)
    mixed = paste(images, boxes, index, inplace=inplace)
    lam = box_lambda(boxes, h, w)
    targets = mix_targets(labels, index, lam, num_classes=num_classes, label=label,
                          label_smoothing=label_smoothing, dtype=target_dtype)
    return mixed, targets


def mixup(
    images: Tensor,
    labels: Tensor,
    *,
    lam: float | Tensor,
    index: Tensor,
    num_classes: int | None = None,
    label: str = "area",
    label_smoothing: float = 0.0,
    inplace: bool = False,
    target_dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Mixup a batch with given weights and partners; returns ``(images, targets)``."""
    check_images(images, min_batch=1)
    check_labels(labels, images.shape[0], num_classes)
    mixed = blend(images, lam, index, inplace=inplace)
    targets = mix_targets(labels, index, lam, num_classes=num_classes, label=label,
                          label_smoothing=label_smoothing, dtype=target_dtype)
    return mixed, targets


def cutout(
    images: Tensor,
    labels: Tensor,
    *,
    boxes: Tensor,
    num_classes: int | None = None,
    value: float = 0.0,
    label_smoothing: float = 0.0,
    inplace: bool = False,
    target_dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Cutout a batch with given boxes; targets are the (smoothed) one-hot labels."""
    check_images(images, min_batch=1)
    check_labels(labels, images.shape[0], num_classes)
    erased = erase(images, boxes, value=value, inplace=inplace)
    return erased, one_hot(labels, num_classes, label_smoothing=label_smoothing, dtype=target_dtype)
