"""Argument validation shared by the ops and transforms.

Every check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, bad value) with a message
that names the argument and says what was expected, so that a mistake in user code is fixed from the message.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_images(images: object, name: str = "images", min_batch: int = 2) -> Tensor:
    """A batch of images: a 4-D uint8 or floating tensor [N, C, H, W] with at least ``min_batch`` samples."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [N, C, H, W], got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions [N, C, H, W], got shape {tuple(images.shape)}")
    if not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise TypeError(f"{name} must be uint8 or a floating dtype, got {images.dtype}")
    n, _, h, w = images.shape
    if n == 0:
        raise ValueError(f"{name} is an empty batch (N = 0): there is nothing to mix")
    if n < min_batch:
        raise ValueError(
            f"{name} has a batch of {n}; mixing needs at least {min_batch} images "
            "(use drop_last=True in the DataLoader, or mix larger batches)"
        )
    if h == 0 or w == 0:
        raise ValueError(f"{name} has an empty spatial size {h}x{w}")
    return images


def check_alpha(alpha: object, name: str = "alpha") -> float:
    """A Beta concentration: a finite number > 0."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"{name} must be a number > 0, got {type(alpha).__name__}")
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {alpha}")
    return float(alpha)


def check_probability(p: object, name: str = "prob") -> float:
    """A probability in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:  # also rejects nan
        raise ValueError(f"{name} must be in [0, 1], got {p}")
    return float(p)


def check_fraction(x: object, name: str, low: float = 0.0, high: float = 1.0) -> float:
    """A number in the closed interval [low, high]."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{name} must be a number in [{low}, {high}], got {type(x).__name__}")
    if not low <= x <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {x}")
    return float(x)


def check_sigma(sigma: object, name: str = "sigma") -> float:
    """The spread of a Gaussian box centre as a fraction of the side: a finite number >= 0 (an infinite one would
    put every centre at NaN)."""
    value = check_fraction(sigma, name, 0.0, float("inf"))
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value  # type: ignore[return-value]


def check_positive_int(value: object, name: str, *, none_ok: bool = False) -> int | None:
    """An int >= 1 (a count or a size; bools are refused), or None when ``none_ok``: the one check of its kind."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1{' or None' if none_ok else ''}, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


def check_num_classes(num_classes: object, name: str = "num_classes") -> int | None:
    return check_positive_int(num_classes, name, none_ok=True)


def check_labels(
    labels: object, batch: int, num_classes: int | None, name: str = "labels", device: torch.device | None = None
) -> tuple[Tensor, int]:
    """Class indices [N] (any integer dtype) or soft labels [N, K] (floating); returns them and K.

    Class indices stay integer whatever the images' dtype: casting them to bf16 would silently corrupt ids > 256.
    ``device`` (the images') is where the labels must be. Value checks (index range; soft labels finite,
    non-negative, rows summing to 1) run on CPU tensors only: on an accelerator they would cost a host sync per
    batch, so there a bad value is not caught here (an index out of range then fails in a device-side assert).
    """
    if not isinstance(labels, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor: class indices [N] or soft labels [N, K], got {type(labels).__name__}"
        )
    num_classes = check_num_classes(num_classes)
    if device is not None and labels.device != device:
        raise ValueError(f"{name} must be on the images' device {device}, got {name} on {labels.device}")
    if labels.ndim == 1:
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(
                f"{name} of shape [N] must hold integer class indices, got {labels.dtype} "
                "(pass soft labels as a floating [N, K] tensor)"
            )
        if labels.shape[0] != batch:
            raise ValueError(f"{name} has {labels.shape[0]} entries but the batch has {batch} images")
        if num_classes is None:
            raise ValueError(f"num_classes is required to turn class indices in {name} into targets")
        if labels.numel() and labels.device.type == "cpu":  # on an accelerator this check would cost a sync
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(
                    f"{name} must be class indices in [0, {num_classes - 1}] (num_classes={num_classes}), "
                    f"got values in [{lo}, {hi}]"
                )
        return labels, num_classes
    if labels.ndim == 2:
        if not labels.is_floating_point():
            raise TypeError(f"soft {name} of shape [N, K] must be floating, got {labels.dtype}")
        if labels.shape[0] != batch:
            raise ValueError(f"{name} has {labels.shape[0]} rows but the batch has {batch} images")
        k = labels.shape[1]
        if num_classes is not None and k != num_classes:
            raise ValueError(
                f"soft {name} must have num_classes={num_classes} columns, got shape {tuple(labels.shape)}"
            )
        if k < 1:
            raise ValueError(f"soft {name} must have at least one column, got shape {tuple(labels.shape)}")
        check_distributions(labels, name)
        return labels, k
    raise ValueError(f"{name} must be class indices [N] or soft labels [N, K], got shape {tuple(labels.shape)}")


def check_distributions(probs: Tensor, name: str) -> None:
    """Rows of a floating [N, K] CPU tensor are probability distributions: finite, >= 0, summing to 1.

    The sum tolerance is 1e-3 (or the dtype's epsilon when coarser, as for bfloat16). Skipped off the CPU (a host
    sync) and for empty tensors; two reductions and one transfer otherwise.
    """
    if probs.device.type != "cpu" or not probs.numel():
        return
    low, dev = torch.stack([probs.amin().double(), (probs.sum(1, dtype=torch.float64) - 1.0).abs().amax()]).tolist()
    if math.isnan(low):
        raise ValueError(f"soft {name} contain NaN")
    if low < 0:
        raise ValueError(f"soft {name} must be non-negative probabilities, got a value of {low:g}")
    if not math.isfinite(dev):
        raise ValueError(f"soft {name} contain inf")
    tol = max(1e-3, torch.finfo(probs.dtype).eps)
    if dev > tol:
        raise ValueError(f"soft {name} must have rows that sum to 1 (tolerance {tol:g}), got a row off by {dev:g}")


def check_same_device(t: Tensor, device: torch.device, name: str) -> None:
    """``t`` (a few numbers: boxes, partners, weights) is on ``device`` or on the CPU, from where it is copied."""
    if t.device != device and t.device.type != "cpu":
        raise ValueError(f"{name} must be on the images' device {device} or on the CPU, got {name} on {t.device}")


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_int(value: object, name: str, low: int = 1) -> int:
    """An int >= ``low`` (bools are rejected: ``True`` is not a size)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return value


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def check_target_dtype(dtype: object, name: str = "target_dtype") -> torch.dtype:
    """Targets are probabilities: an integer dtype would round them all to 0."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch.dtype (targets are probabilities), got {dtype!r}")
    return dtype


def check_fill(value: object, name: str = "value") -> float:
    """A fill value: a finite number (checked against an image dtype by :func:`check_fill_for`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def check_fill_for(value: object, dtype: torch.dtype, name: str = "value") -> float:
    """A fill value that ``dtype`` represents exactly: a whole number in [0, 255] for uint8, finite for floats."""
    check_fill(value, name)
    if dtype == torch.uint8 and not (float(value).is_integer() and 0 <= value <= 255):
        raise ValueError(f"{name} must be a whole number in [0, 255] for uint8 images, got {value}")
    if dtype.is_floating_point and abs(value) > torch.finfo(dtype).max:
        raise ValueError(f"{name} {value} overflows the images' dtype {dtype}")
    return value


def check_index(index: object, batch: int, name: str = "index") -> Tensor:
    """Partner indices [N] (any integer dtype) in [0, N)."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of partner indices [N], got {type(index).__name__}")
    if index.ndim != 1 or index.shape[0] != batch:
        raise ValueError(f"{name} must have shape [{batch}] (one partner per image), got {tuple(index.shape)}")
    if index.is_floating_point() or index.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got {index.dtype}")
    if index.device.type == "cpu" and index.numel():
        lo, hi = int(index.min()), int(index.max())
        if lo < 0 or hi >= batch:
            raise ValueError(f"{name} must hold indices in [0, {batch - 1}], got values in [{lo}, {hi}]")
    return index.long()


def check_fused(fused: object, *, inplace: bool, per_sample: bool, boxes: str = "per_sample=True") -> bool:
    """``fused`` as a bool, refusing the cases that the fused per-sample paste does not cover (``boxes``: how the
    caller asks for per-sample boxes, for the message)."""
    fused = check_bool(fused, "fused")
    if fused and not per_sample:
        raise ValueError(f"fused=True needs {boxes}: with one box for the batch CutMix is already a slice copy")
    if fused and inplace:
        raise ValueError("fused=True cannot be combined with inplace=True: the fused op reads each partner from the "
                         "input while it writes the output; pass inplace=False")
    return fused
