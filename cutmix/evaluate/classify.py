"""Classification metrics from logits: top-k error, the confusion matrix and per-class accuracy.

The paper reports top-1 / top-5 error; the confusion matrix and the per-class accuracies show *where* a regulariser
helps (which classes it confuses less). Everything is a pure function of tensors on any device, vectorised over
samples, and the summary is plain JSON so that runs can be compared without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from cutmix._checks import check_positive_int
from cutmix.evaluate.common import check_eval_labels

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_logits(logits: object, name: str = "logits") -> Tensor:
    """Logits are a non-empty, finite, floating tensor [N, K] with K >= 1."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [N, K], got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"{name} must be [N, K], got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {logits.dtype}")
    if logits.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0)")
    if logits.shape[1] == 0:
        raise ValueError(f"{name} has no classes (K = 0)")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{name} holds non-finite values (nan or inf)")
    return logits


def topk_error(logits: Tensor, labels: Tensor, k: int = 1) -> float:
    """1 - the fraction of samples whose label is among the ``k`` largest logits (``k`` is clipped to K).

    Ties are broken as :func:`torch.topk` breaks them, like the training loop's validation error.
    """
    check_logits(logits)
    n, num_classes = logits.shape
    labels = check_eval_labels(labels, n, num_classes).to(logits.device)
    k = min(check_positive_int(k, "k"), num_classes)
    top = logits.topk(k, dim=1).indices
    hits = (top == labels[:, None]).any(dim=1)
    return 1.0 - float(hits.double().mean())


def confusion_matrix(predictions: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Counts int64 [K, K]: entry [t, p] is how many samples of true class t were predicted as p."""
    num_classes = check_positive_int(num_classes, "num_classes")
    if not isinstance(predictions, Tensor):
        raise TypeError(f"predictions must be an integer torch.Tensor [N], got {type(predictions).__name__}")
    if predictions.ndim != 1:
        raise ValueError(f"predictions must be [N], got shape {tuple(predictions.shape)}")
    if predictions.shape[0] == 0:
        raise ValueError("predictions is an empty batch (N = 0)")
    predictions = check_eval_labels(predictions, predictions.shape[0], num_classes, name="predictions")
    labels = check_eval_labels(labels, predictions.shape[0], num_classes).to(predictions.device)
    flat = labels * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: Tensor) -> Tensor:
    """Recall of every class, float64 [K]: the diagonal over the row sums, NaN for a class with no samples."""
    if not isinstance(confusion, Tensor):
        raise TypeError(f"confusion must be a torch.Tensor [K, K], got {type(confusion).__name__}")
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1] or confusion.shape[0] == 0:
        raise ValueError(f"confusion must be a non-empty square matrix [K, K], got shape {tuple(confusion.shape)}")
    if confusion.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"confusion must hold integer counts, got {confusion.dtype}")
    if bool((confusion < 0).any()):
        raise ValueError("confusion holds negative counts")
    counts = confusion.to(torch.float64)
    totals = counts.sum(dim=1)
    return torch.where(totals > 0, counts.diagonal() / totals.clamp(min=1), torch.full_like(totals, float("nan")))


def classification_summary(logits: Tensor, labels: Tensor, classes: Sequence[str]) -> dict[str, Any]:
    """JSON-ready metrics of one evaluation: top-1/top-5 error, per-class accuracy, the worst classes, confusion.

    ``per_class_acc`` maps every class name to its accuracy (``None`` when the class has no sample);
    ``worst_classes`` lists up to three classes with samples, lowest accuracy first (ties by class index).
    """
    check_logits(logits)
    n, num_classes = logits.shape
    if isinstance(classes, str) or not all(isinstance(c, str) for c in classes):
        raise TypeError("classes must be a sequence of class names (str)")
    if len(classes) != num_classes:
        raise ValueError(f"classes names {len(classes)} classes but logits have K = {num_classes}")
    if len(set(classes)) != len(classes):
        raise ValueError("classes holds duplicate names")
    labels = check_eval_labels(labels, n, num_classes).to(logits.device)
    confusion = confusion_matrix(logits.topk(1, dim=1).indices[:, 0], labels, num_classes).cpu()
    accuracy = per_class_accuracy(confusion)
    present = torch.nonzero(~accuracy.isnan()).flatten()
    order = present[torch.sort(accuracy[present], stable=True).indices][:3]
    values = accuracy.tolist()
    return {
        "top1_err": topk_error(logits, labels, 1),
        "top5_err": topk_error(logits, labels, 5),
        "num_samples": n,
        "per_class_acc": {name: (None if math.isnan(v) else v) for name, v in zip(classes, values, strict=True)},
        "worst_classes": [{"class": classes[i], "accuracy": values[i]} for i in order.tolist()],
        "confusion": confusion.tolist(),
    }
