"""Cross-entropy for the soft targets that mixing produces."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cutmix._checks import check_choice, check_distributions, check_fraction


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
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a floating torch.Tensor [N, K], got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape [N, K], got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating, got {logits.dtype}")
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.device != logits.device:
        raise ValueError(f"targets must be on the logits' device {logits.device}, got targets on {targets.device}")
    n, k = logits.shape
    work = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    if targets.ndim == 1:
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise TypeError(f"targets of shape [N] must be integer class indices, got {targets.dtype} "
                            "(pass soft targets as a floating [N, K] tensor)")
        if targets.shape[0] != n:
            raise ValueError(f"class-index targets must have shape [{n}] like the logits' batch, got "
                             f"{tuple(targets.shape)}")
        if targets.device.type == "cpu" and n:  # elsewhere a host sync; cross_entropy's device assert fires
            lo, hi = int(targets.min()), int(targets.max())
            if lo < 0 or hi >= k:
                raise ValueError(f"targets must be class indices in [0, {k - 1}], got values in [{lo}, {hi}]")
        return F.cross_entropy(work, targets.long(), label_smoothing=label_smoothing, reduction=reduction)
    if targets.ndim == 2 and not targets.is_floating_point():
        raise TypeError(f"soft targets [N, K] must be floating, got {targets.dtype}")
    if targets.shape != (n, k):
        raise ValueError(f"soft targets must have shape [{n}, {k}] like the logits, got {tuple(targets.shape)}")
    check_distributions(targets, "targets")
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
