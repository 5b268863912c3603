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

from cutmix import _ops
from cutmix._checks import (
    check_bool,
    check_choice,
    check_fill_for,
    check_fraction,
    check_fused,
    check_images,
    check_index,
    check_labels,
    check_same_device,
    check_target_dtype,
)
from cutmix._choices import LABEL_MODES
from cutmix.boxes import box_lambda, check_boxes


def _lam_tensor(lam: float | Tensor, n: int) -> Tensor:
    """``lam`` as float64 [N]; a number is shared by the batch."""
    if not isinstance(lam, Tensor) and (isinstance(lam, bool) or not isinstance(lam, (int, float))):
        raise TypeError(f"lam must be a number or a tensor of shape [{n}], got {type(lam).__name__}")
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    if lam_t.ndim == 0:
        return lam_t.expand(n)
    if lam_t.shape != (n,):
        raise ValueError(f"lam must be a number or a tensor of shape [{n}], got shape {tuple(lam_t.shape)}")
    return lam_t


def _check_lam(lam: float | Tensor, n: int, device: torch.device | None = None) -> float | Tensor:
    """``lam`` in [0, 1] (checked on the CPU only: elsewhere it would cost a host sync), on ``device`` or the CPU."""
    lam_t = _lam_tensor(lam, n)
    if device is not None:
        check_same_device(lam_t, device, "lam")
    if lam_t.device.type == "cpu" and bool(((lam_t < 0) | (lam_t > 1) | lam_t.isnan()).any()):
        raise ValueError("lam must lie in [0, 1]")
    return float(lam_t[0]) if not isinstance(lam, Tensor) or lam.ndim == 0 else lam_t


def _partners(index: object, images: Tensor) -> Tensor:
    """Checked partner indices [N] as int64 on the images' device (from there or from the CPU)."""
    index = check_index(index, images.shape[0])
    check_same_device(index, images.device, "index")
    return index.to(images.device, non_blocking=True)


def _boxes(boxes: object, images: Tensor) -> Tensor:
    """Checked boxes [4] or [N, 4] for ``images``, on their device or on the CPU."""
    n, _, h, w = images.shape
    boxes = check_boxes(boxes, n, h, w)
    check_same_device(boxes, images.device, "boxes")
    return boxes


def label_weights(lam: Tensor, label: str = "area") -> Tensor:
    """The weight of each image's own label given the share ``lam`` of its pixels that it keeps."""
    if not isinstance(lam, Tensor) or not lam.is_floating_point():
        raise TypeError(f"lam must be a floating tensor, got {getattr(lam, 'dtype', type(lam).__name__)}")
    return _ops.label_weights(lam, check_choice(label, "label", LABEL_MODES))


def one_hot(
    labels: Tensor,
    num_classes: int | None = None,
    *,
    label_smoothing: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Targets [N, K] of class indices [N] (soft labels [N, K] pass through), with optional label smoothing."""
    labels, k = check_labels(labels, labels.shape[0] if isinstance(labels, Tensor) and labels.ndim else -1,
                             num_classes)
    return _ops.one_hot(labels, k, check_fraction(label_smoothing, "label_smoothing"),
                        check_target_dtype(dtype, "dtype"))


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
    n = labels.shape[0] if isinstance(labels, Tensor) and labels.ndim else -1
    labels, k = check_labels(labels, n, num_classes)
    index = check_index(index, n)
    check_same_device(index, labels.device, "index")
    lam_t = _lam_tensor(_check_lam(lam, n, labels.device), n)
    return _ops.mix_targets(labels, index, lam_t, k, check_choice(label, "label", LABEL_MODES),
                            check_fraction(label_smoothing, "label_smoothing"), check_target_dtype(dtype, "dtype"))


def paste(images: Tensor, boxes: Tensor, index: Tensor, *, inplace: bool = False, fused: bool = False) -> Tensor:
    """The CutMix image op: each image receives its partner's pixels inside its box.

    One box [4] for the batch is a slice copy of the box region only; boxes [N, 4] select per pixel, vectorised.
    ``fused=True`` (boxes [N, 4], not in place) builds the result in one pass over memory, each pixel from the image
    or its partner: bit-identical to the default, faster on large batches. On a CPU it is a C kernel built with the
    system's compiler at the first call of the machine (under a second, cached in ``$CUTMIX_CACHE``); elsewhere one
    ``torch.compile``-generated pass, compiled at the first call of each dtype/layout (seconds). Where building or
    compiling fails it warns once and runs the eager op; with autograd recording, or for layouts other than NCHW
    and channels_last, the eager op runs.
    """
    check_images(images, min_batch=1)
    index = _partners(index, images)
    boxes = _boxes(boxes, images)
    inplace = check_bool(inplace, "inplace")
    fused = check_fused(fused, inplace=inplace, per_sample=boxes.ndim == 2, boxes="boxes of shape [N, 4]")
    return _ops.paste(images, boxes, index, inplace=inplace, fused=fused)


def blend(images: Tensor, lam: float | Tensor, index: Tensor, *, inplace: bool = False) -> Tensor:
    """The Mixup image op: ``lam * x + (1 - lam) * x[index]``; uint8 is blended in float32 and rounded."""
    check_images(images, min_batch=1)
    index = _partners(index, images)
    return _ops.blend(images, _check_lam(lam, images.shape[0], images.device), index,
                      inplace=check_bool(inplace, "inplace"))


def erase(images: Tensor, boxes: Tensor, *, value: float = 0.0, inplace: bool = False) -> Tensor:
    """The Cutout image op: fill each box with ``value`` (which the images' dtype must represent exactly)."""
    check_images(images, min_batch=1)
    value = check_fill_for(value, images.dtype)
    return _ops.erase(images, _boxes(boxes, images), float(value), inplace=check_bool(inplace, "inplace"))


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
    fused: bool = False,
) -> tuple[Tensor, Tensor]:
    """CutMix a batch with given boxes and partners; returns ``(images, targets)``.

    The label weight of each image is the exact share of its pixels outside its (already clipped) box. ``fused``:
    see :func:`paste`.
    """
    check_images(images, min_batch=1)
    n, _, h, w = images.shape
    check_target_dtype(target_dtype)
    check_labels(labels, n, num_classes, device=images.device)
    boxes = _boxes(boxes, images)
    index = _partners(index, images)
    inplace = check_bool(inplace, "inplace")
    fused = check_fused(fused, inplace=inplace, per_sample=boxes.ndim == 2, boxes="boxes of shape [N, 4]")
    targets = mix_targets(labels, index, box_lambda(boxes, h, w).expand(n), num_classes=num_classes, label=label,
                          label_smoothing=label_smoothing, dtype=target_dtype)
    return _ops.paste(images, boxes, index, inplace=inplace, fused=fused), targets


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
    check_target_dtype(target_dtype)
    check_labels(labels, images.shape[0], num_classes, device=images.device)
    index = _partners(index, images)
    lam = _check_lam(lam, images.shape[0], images.device)
    targets = mix_targets(labels, index, lam, num_classes=num_classes, label=label,
                          label_smoothing=label_smoothing, dtype=target_dtype)
    return _ops.blend(images, lam, index, inplace=check_bool(inplace, "inplace")), targets


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
    check_target_dtype(target_dtype)
    check_labels(labels, images.shape[0], num_classes, device=images.device)
    targets = one_hot(labels, num_classes, label_smoothing=label_smoothing, dtype=target_dtype)
    return erase(images, boxes, value=value, inplace=inplace), targets
