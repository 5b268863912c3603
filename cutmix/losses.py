"""Cross-entropy for the soft targets that mixing produces."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cutmix._checks import check_choice, check_fraction


def soft_target_cross_entropy(
    logits: Tensor, targets: Tensor, *, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy of ``logits`` [N, K] against soft targets [N, K] (rows summing to 1) or class indices [N].

    Computed in float32 at least, whatever the logits' dtype: a bf16 log-softmax over many classes loses the small
    target weights that mixing produces. This is ``torch.nn.functional.cross_entropy`` (which accepts
    probabilities) with the checks and the dtype handling around it.
    """
    check_choice(reduction, "reduction", ("mean", "sum", "none"))
    check_fraction(label_smoothing, "label_smoothing")
    if not isinstance(logits, Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must have shape [N, K], got {shape}")
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    n, k = logits.shape
    work = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    if targets.ndim == 1:
        if targets.is_floating_point() or targets.shape[0] != n:
            raise ValueError(f"class-index targets must be an integer tensor of shape [{n}], got "
                             f"{targets.dtype} {tuple(targets.shape)}")
        return F.cross_entropy(work, targets.long(), label_smoothing=label_smoothing, reduction=reduction)
    if targets.shape != (n, k) or not targets.is_floating_point():
        raise ValueError(f"soft targets must be a floating tensor of shape [{n}, {k}] like the logits, got "
                         f"{targets.dtype} {tuple(targets.shape)}")
    return F.cross_entropy(work, targets.to(work.dtype), label_smoothing=label_smoothing, reduction=reduction)


class SoftTargetCrossEntropy(nn.Module):
    """``loss = SoftTargetCrossEntropy()(model(images), targets)`` for mixed (soft) or plain (index) targets."""

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__()
        self.label_smoothing = check_fraction(label_smoothing, "label_smoothing")
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum", "none"))

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return soft_target_cross_entropy(logits, targets, label_smoothing=self.label_smoothing,
                                         reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"
