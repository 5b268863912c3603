"""Out-of-distribution detection with the maximum softmax probability (the paper's Table 9).

The detector is Hendrycks & Gimpel's baseline: an image is called in-distribution when the classifier's largest
softmax probability is at least a threshold. The paper reports, for models trained with each augmentation, how well
this score separates the test set from OOD sets. Conventions of :func:`detection_metrics`: in-distribution is the
positive class and a *higher* score means in-distribution; the decision rule is ``in-distribution iff s >= delta``.

OOD sets that need no download are made here: uniform and Gaussian noise (two of the paper's seven sets) and the
test images with their pixels shuffled (object shapes destroyed, colour statistics kept: a harder set than noise).
Real image sets (e.g. another dataset at a different resolution) are brought to the test images' size with
:func:`fit_to_size` and to three channels with :func:`grayscale_to_rgb`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from cutmix._checks import check_positive_int
from cutmix.evaluate.common import batches, check_eval_images, eval_mode, model_device, to_unit

METRICS = ("tnr_at_tpr95", "auroc", "aupr_in", "aupr_out", "detection_acc")


# -- the detector --------------------------------------------------------------------------------------------------
@torch.inference_mode()
def max_softmax_scores(classifier: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """The largest softmax probability of each image, float32 [N] on the CPU (computed in float32 per batch)."""
    check_eval_images(images)
    device = model_device(classifier)
    with eval_mode(classifier):
        out = [
            nnf.softmax(classifier(to_unit(images[s], device)).float(), dim=1).amax(dim=1).cpu()
            for s in batches(images.shape[0], batch_size)
        ]
    return torch.cat(out)


# -- metrics -------------------------------------------------------------------------------------------------------
def _check_scores(scores: object, name: str) -> Tensor:
    t = torch.as_tensor(scores).detach()
    if t.ndim != 1:
        raise ValueError(f"{name} must be a 1-D tensor of scores [N], got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: detection metrics need at least one score")
    t = t.to("cpu", torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return t


def tnr_at_tpr(scores_in: Tensor, scores_out: Tensor, tpr: float = 0.95) -> float:
    """The share of OOD scores below the highest threshold that still accepts at least ``tpr`` of the in-scores.

    With the in-scores sorted ascending and ``m = ceil(tpr * n)`` the fewest that must be accepted, the threshold
    is the ``(n - m)``-th smallest in-score ``delta``: ``P_in(s >= delta) >= tpr``, and any higher threshold would
    accept fewer than ``m``. Ties are settled by the rule ``s >= delta``: an OOD score equal to ``delta`` is
    accepted, so it is not a true negative. ``tpr * n`` is rounded to 9 decimals before the ceiling so that
    0.95 * 20 counts as 19.
    """
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1], got {tpr}")
    s_in = torch.sort(_check_scores(scores_in, "scores_in")).values
    s_out = _check_scores(scores_out, "scores_out")
    n = s_in.numel()
    delta = s_in[n - math.ceil(round(tpr * n, 9))]
    return float((s_out < delta).double().mean())


def _average_ranks(values: Tensor) -> Tensor:
    """1-based ranks of ``values`` with tied values sharing the mean of their ranks."""
    sorted_vals, order = torch.sort(values)
    _, inverse, counts = torch.unique_consecutive(sorted_vals, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[order] = mean_rank[inverse]
    return ranks


def auroc(scores_in: Tensor, scores_out: Tensor) -> float:
    """``P(s_in > s_out) + P(s_in = s_out) / 2`` via the Mann-Whitney rank sum (ties count half)."""
    s_in, s_out = _check_scores(scores_in, "scores_in"), _check_scores(scores_out, "scores_out")
    n_in, n_out = s_in.numel(), s_out.numel()
    rank_sum = float(_average_ranks(torch.cat([s_in, s_out]))[:n_in].sum())
    return (rank_sum - n_in * (n_in + 1) / 2) / (n_in * n_out)


def average_precision(scores_pos: Tensor, scores_neg: Tensor) -> float:
    """Area under the step-wise precision-recall curve, as scikit-learn's ``average_precision_score``.

    ``sum_k (R_k - R_{k-1}) * P_k`` over the distinct scores ``t_k`` taken as thresholds from the highest down,
    ``P_k`` and ``R_k`` being the precision and recall of the rule ``s >= t_k`` (tied scores enter together).
    """
    s_pos, s_neg = _check_scores(scores_pos, "scores_pos"), _check_scores(scores_neg, "scores_neg")
    scores = torch.cat([s_pos, s_neg])
    is_pos = torch.cat([torch.ones_like(s_pos), torch.zeros_like(s_neg)])
    scores, order = torch.sort(scores, descending=True)
    tp = torch.cumsum(is_pos[order], 0)
    last_of_tie = torch.ones_like(scores, dtype=torch.bool)
    last_of_tie[:-1] = scores[:-1] != scores[1:]
    tp = tp[last_of_tie]
    predicted = (torch.nonzero(last_of_tie).squeeze(1) + 1).double()
    recall = tp / s_pos.numel()
    recall_step = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((recall_step * tp / predicted).sum())


def detection_accuracy(scores_in: Tensor, scores_out: Tensor) -> float:
    """``max over delta of 0.5 * P_in(s >= delta) + 0.5 * P_out(s < delta)`` (the ODIN code's convention).

    Every distinct score and ``+inf`` are tried as ``delta``: between two consecutive scores nothing changes.
    """
    s_in = torch.sort(_check_scores(scores_in, "scores_in")).values
    s_out = torch.sort(_check_scores(scores_out, "scores_out")).values
    deltas = torch.cat([torch.unique(torch.cat([s_in, s_out])), s_in.new_full((1,), math.inf)])
    tpr = 1.0 - torch.searchsorted(s_in, deltas).double() / s_in.numel()
    tnr = torch.searchsorted(s_out, deltas).double() / s_out.numel()
    return float((0.5 * tpr + 0.5 * tnr).max())


def detection_metrics(scores_in: Tensor, scores_out: Tensor) -> dict[str, float]:
    """TNR at 95% TPR, AUROC, AUPR-in, AUPR-out and detection accuracy (higher score = in-distribution).

    AUPR-in takes the in-distribution images as positives; AUPR-out takes the OOD images as positives with the
    scores negated. All in float64.
    """
    s_in, s_out = _check_scores(scores_in, "scores_in"), _check_scores(scores_out, "scores_out")
    return {
        "tnr_at_tpr95": tnr_at_tpr(s_in, s_out, 0.95),
        "auroc": auroc(s_in, s_out),
        "aupr_in": average_precision(s_in, s_out),
        "aupr_out": average_precision(-s_out, -s_in),
        "detection_acc": detection_accuracy(s_in, s_out),
    }


# -- OOD sets ------------------------------------------------------------------------------------------------------
def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    if len(shape) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"shape must be (C, H, W) with positive ints, got {tuple(shape)}")
    return tuple(shape)  # type: ignore[return-value]


def uniform_noise(n: int, shape: Sequence[int], seed: int = 0) -> Tensor:
    """``n`` images uint8 [n, C, H, W] with every pixel uniform over 0..255."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (check_positive_int(n, "n"), *_check_shape(shape)), generator=g, dtype=torch.uint8)


def gaussian_noise(n: int, shape: Sequence[int], seed: int = 0, mean: float = 0.5, std: float = 0.25) -> Tensor:
    """``n`` images uint8 [n, C, H, W] of i.i.d. ``N(mean, std^2)`` pixels in [0, 1] units, clipped and rounded."""
    if not (math.isfinite(std) and std >= 0):
        raise ValueError(f"std must be a finite number >= 0, got {std}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((check_positive_int(n, "n"), *_check_shape(shape)), generator=g).mul_(std).add_(mean)
    return x.clamp_(0.0, 1.0).mul_(255).round_().to(torch.uint8)


def fit_to_size(images: Tensor, size: int) -> Tensor:
    """uint8 images [N, C, size, size]: the shorter side resized to ``size`` (bilinear, antialiased), centre crop.

    An odd leftover of the crop puts the extra pixel after it (offset ``(L - size) // 2``).
    """
    check_eval_images(images)
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    check_positive_int(size, "size")
    h, w = images.shape[2:]
    short = min(h, w)
    new_h, new_w = max(size, round(h * size / short)), max(size, round(w * size / short))
    x = images
    if (new_h, new_w) != (h, w):
        x = (
            nnf.interpolate(images.float(), size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
            .round_()
            .clamp_(0, 255)
            .to(torch.uint8)
        )
    y0, x0 = (new_h - size) // 2, (new_w - size) // 2
    return x[:, :, y0 : y0 + size, x0 : x0 + size].contiguous()


def grayscale_to_rgb(images: Tensor) -> Tensor:
    """Single-channel images [N, 1, H, W] repeated to three channels; three-channel images pass through."""
    check_eval_images(images)
    if images.shape[1] == 3:
        return images
    if images.shape[1] != 1:
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")
    return images.expand(-1, 3, -1, -1).contiguous()


def shuffled_pixels(images: Tensor, seed: int = 0) -> Tensor:
    """Each image with its pixel positions permuted (its own random permutation; a pixel's channels move together).

    The colour histogram of every image is kept exactly while its objects are destroyed, so a detector cannot
    reject these on colour statistics alone.
    """
    check_eval_images(images)
    n, c, h, w = images.shape
    g = torch.Generator().manual_seed(seed)
    perm = torch.argsort(torch.rand(n, h * w, generator=g), dim=1)
    flat = images.reshape(n, c, h * w)
    return torch.gather(flat, 2, perm.to(images.device)[:, None, :].expand(n, c, h * w)).reshape(n, c, h, w)


# -- the evaluation ------------------------------------------------------------------------------------------------
class OODResult(NamedTuple):
    """``metrics`` is JSON-ready; the scores (for histograms) are kept apart from it."""

    metrics: dict[str, Any]
    scores_in: Tensor
    scores_out: dict[str, Tensor]


def evaluate_ood(
    classifier: nn.Module, in_images: Tensor, out_sets: dict[str, Tensor], batch_size: int = 256
) -> OODResult:
    """Max-softmax detection of each OOD set against the in-distribution test images.

    ``metrics`` holds ``in_mean_max_softmax``, per set its :func:`detection_metrics`, ``mean_max_softmax`` and
    ``num_samples``, and ``average``: each metric averaged over the sets (the paper's Table 9 averages its sets).
    Every OOD set must have the in-distribution images' (C, H, W); use :func:`fit_to_size` and
    :func:`grayscale_to_rgb` first.
    """
    check_eval_images(in_images, "in_images")
    if not out_sets:
        raise ValueError("out_sets is empty: give at least one OOD set, e.g. {'uniform': uniform_noise(...)}")
    for name, images in out_sets.items():
        check_eval_images(images, f"out_sets[{name!r}]")
        if images.shape[1:] != in_images.shape[1:]:
            raise ValueError(
                f"out_sets[{name!r}] has images of shape {tuple(images.shape[1:])} but in_images have "
                f"{tuple(in_images.shape[1:])}: use fit_to_size / grayscale_to_rgb first"
            )
    scores_in = max_softmax_scores(classifier, in_images, batch_size)
    scores_out = {name: max_softmax_scores(classifier, images, batch_size) for name, images in out_sets.items()}
    per_set = {
        name: {
            **detection_metrics(scores_in, s),
            "mean_max_softmax": float(s.double().mean()),
            "num_samples": int(s.numel()),
        }
        for name, s in scores_out.items()
    }
    metrics = {
        "in_mean_max_softmax": float(scores_in.double().mean()),
        "num_in": int(scores_in.numel()),
        "sets": per_set,
        "average": {k: sum(m[k] for m in per_set.values()) / len(per_set) for k in METRICS},
    }
    return OODResult(metrics, scores_in, scores_out)
