"""Calibration: does the softmax confidence of a prediction match how often it is right?

Mixed-label training (Mixup, CutMix) is known to change a network's confidence as much as its accuracy, so the
evaluation reports the reliability diagram and its summaries (Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017): the expected / maximum calibration error over equal-width confidence bins, the negative
log-likelihood and the Brier score.

Binning convention (Guo et al.): ``num_bins`` equal-width bins over [0, 1]; bin ``i`` holds the confidences in the
half-open interval ``(edges[i], edges[i + 1]]``, except that a confidence of exactly 0 falls in the first bin.
A confidence of exactly 1 therefore falls in the last bin. Confidences are compared to the edges in float64.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from cutmix._checks import check_positive_int
from cutmix.evaluate.classify import check_logits
from cutmix.evaluate.common import check_eval_labels


def _check_inputs(confidences: object, correct: object, num_bins: object) -> tuple[Tensor, Tensor, int]:
    if not isinstance(confidences, Tensor):
        raise TypeError(f"confidences must be a floating torch.Tensor [N], got {type(confidences).__name__}")
    if confidences.ndim != 1 or not confidences.is_floating_point():
        raise ValueError(
            f"confidences must be a floating tensor [N], got {confidences.dtype} of shape {tuple(confidences.shape)}"
        )
    if confidences.shape[0] == 0:
        raise ValueError("confidences is an empty batch (N = 0)")
    if not bool(((confidences >= 0) & (confidences <= 1)).all()):  # also rejects nan
        raise ValueError("confidences must lie in [0, 1]")
    if not isinstance(correct, Tensor) or correct.dtype != torch.bool:
        raise TypeError(
            f"correct must be a bool torch.Tensor [N], got "
            f"{correct.dtype if isinstance(correct, Tensor) else type(correct).__name__}"
        )
    if correct.shape != confidences.shape:
        raise ValueError(
            f"correct must have the shape of confidences {tuple(confidences.shape)}, got {tuple(correct.shape)}"
        )
    check_positive_int(num_bins, "num_bins")
    return confidences.double(), correct.to(confidences.device), num_bins


def _bin_sums(confidences: Tensor, correct: Tensor, num_bins: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Edges [B + 1] and, per bin, the sample count, the sum of confidences and the number correct (float64)."""
    conf, correct, num_bins = _check_inputs(confidences, correct, num_bins)
    edges = torch.linspace(0.0, 1.0, num_bins + 1, dtype=torch.float64, device=conf.device)
    # bucketize (right=False) gives i with edges[i-1] < c <= edges[i]: bin i - 1, and c == 0 gives 0 -> bin 0.
    index = (torch.bucketize(conf, edges) - 1).clamp_(min=0)
    count = torch.bincount(index, minlength=num_bins).double()
    conf_sum = torch.bincount(index, weights=conf, minlength=num_bins)
    hits = torch.bincount(index, weights=correct.double(), minlength=num_bins)
    return edges, count, conf_sum, hits


def _ece(count: Tensor, conf_sum: Tensor, hits: Tensor) -> float:
    return float((hits - conf_sum).abs().sum() / count.sum())


def _mce(count: Tensor, conf_sum: Tensor, hits: Tensor) -> float:
    filled = count > 0
    return float(((hits[filled] - conf_sum[filled]) / count[filled]).abs().max())


def _bins_dict(edges: Tensor, count: Tensor, conf_sum: Tensor, hits: Tensor) -> dict[str, list]:
    filled = count > 0
    mean_conf = torch.where(filled, conf_sum / count.clamp(min=1), torch.nan)
    accuracy = torch.where(filled, hits / count.clamp(min=1), torch.nan)
    return {
        "edges": edges.tolist(),
        "count": [int(c) for c in count.tolist()],
        "confidence": [None if math.isnan(v) else v for v in mean_conf.tolist()],
        "accuracy": [None if math.isnan(v) else v for v in accuracy.tolist()],
    }


def reliability_bins(confidences: Tensor, correct: Tensor, num_bins: int = 15) -> dict[str, list]:
    """The reliability diagram's data as JSON-ready lists (see the module docstring for the binning convention).

    ``edges`` has ``num_bins + 1`` entries; ``count``, ``confidence`` (mean per bin) and ``accuracy`` have one per
    bin, with ``None`` for the mean confidence and accuracy of an empty bin.
    """
    return _bins_dict(*_bin_sums(confidences, correct, num_bins))


def expected_calibration_error(confidences: Tensor, correct: Tensor, num_bins: int = 15) -> float:
    """ECE = sum over bins of (n_b / N) * |accuracy_b - confidence_b|, i.e. sum_b |hits_b - conf_sum_b| / N."""
    return _ece(*_bin_sums(confidences, correct, num_bins)[1:])


def max_calibration_error(confidences: Tensor, correct: Tensor, num_bins: int = 15) -> float:
    """MCE = the largest |accuracy_b - confidence_b| over the non-empty bins."""
    return _mce(*_bin_sums(confidences, correct, num_bins)[1:])


def ece_from_bins(bins: dict[str, Any]) -> float:
    """The ECE of a :func:`reliability_bins` dict (for figures and reports that only kept the bins)."""
    total = sum(bins["count"])
    if total <= 0:
        raise ValueError("bins hold no samples")
    gaps = (
        n * abs(acc - conf)
        for n, acc, conf in zip(bins["count"], bins["accuracy"], bins["confidence"], strict=True)
        if n > 0
    )
    return float(sum(gaps) / total)


def calibration_summary(logits: Tensor, labels: Tensor, num_bins: int = 15) -> dict[str, Any]:
    """JSON-ready calibration of one evaluation, from the softmax (computed in float64) of ``logits`` [N, K].

    The prediction is the top-1 logit (as in :func:`cutmix.evaluate.classify.topk_error`), its confidence its
    softmax probability. ``overconfidence`` is mean confidence minus accuracy (> 0: over-confident), ``nll`` the
    mean cross-entropy, ``brier`` the multi-class Brier score mean_i sum_k (p_ik - y_ik)^2 (in [0, 2]).
    """
    check_logits(logits)
    n, num_classes = logits.shape
    labels = check_eval_labels(labels, n, num_classes).to(logits.device)
    log_probs = torch.log_softmax(logits.double(), dim=1)
    probs = log_probs.exp()
    predictions = logits.topk(1, dim=1).indices[:, 0]
    confidences = probs.gather(1, predictions[:, None])[:, 0].clamp(0.0, 1.0)
    correct = predictions == labels
    onehot = F.one_hot(labels, num_classes).double()
    mean_confidence = float(confidences.mean())
    accuracy = float(correct.double().mean())
    sums = _bin_sums(confidences, correct, num_bins)
    return {
        "ece": _ece(*sums[1:]),
        "mce": _mce(*sums[1:]),
        "mean_confidence": mean_confidence,
        "accuracy": accuracy,
        "overconfidence": mean_confidence - accuracy,
        "nll": float(F.nll_loss(log_probs, labels)),
        "brier": float((probs - onehot).pow(2).sum(dim=1).mean()),
        "bins": _bins_dict(*sums),
    }
