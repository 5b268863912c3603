"""Robustness of a classifier (the paper's Table 8 and Figure 5): FGSM, occlusion and in-between-class samples.

All three are defined in pixel space, so they take a :class:`~cutmix.evaluate.common.PixelClassifier` (or any
module mapping float images in [0, 1] to logits), uint8 (or [0, 1] float) images [N, C, H, W] on the CPU and
int64 labels [N]; batches move to the classifier's device. The classifier runs in eval mode (the caller's modes
are restored afterwards) and under ``torch.inference_mode()``, except for the one input gradient FGSM needs.

* FGSM (Goodfellow et al. 2015): ``x + eps * sign(grad_x CE(f(x), y))``, clamped to [0, 1]; ``eps`` is in pixel
  units of [0, 1] (8/255 by default), i.e. the attack lives before the normalisation, as the paper's protocol.
* Occlusion (Figure 5a): a centred square of side ``size`` pixels is zeroed (``"center"``), or everything but it
  is (``"boundary"``). Zero is black (pixel value 0 in [0, 1]), as in the paper, not the mean colour.
* In-between-class samples (Figure 5b): pairs of test images with different labels are mixed by Mixup
  (``lam * x_a + (1 - lam) * x_b``) or by CutMix (``x_a`` with a centred square of side ``s`` taken from ``x_b``),
  and the rate of predicting *neither* label is measured: a model that has learnt to recognise partial objects
  predicts one of the two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from cutmix import functional
from cutmix.evaluate.common import batches, check_eval_images, check_eval_labels, eval_mode, model_device, to_unit

OCCLUSION_MODES = ("center", "boundary")
IN_BETWEEN_METHODS = ("mixup", "cutmix")
DEFAULT_EPSILONS = (8 / 255,)


# -- shared plumbing ---------------------------------------------------------------------------------------------
def _check_inputs(images: Tensor, labels: Tensor) -> Tensor:
    check_eval_images(images)
    if images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"images has an empty spatial size {images.shape[2]}x{images.shape[3]}")
    return check_eval_labels(labels, images.shape[0])


def _check_label_range(labels: Tensor, num_classes: int) -> None:
    """Labels must index the classifier's outputs (caught here, not as a device-side assert in the loss)."""
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}) (the classifier has {num_classes} outputs), "
            f"got values in [{lo}, {hi}]"
        )


def _check_labels_fit(classifier: nn.Module, images: Tensor, labels: Tensor, device: torch.device) -> None:
    """One image through the classifier tells its number of outputs, which every label must index."""
    _check_label_range(labels, classifier(to_unit(images[:1], device)).shape[1])


def _check_int(value: object, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def _check_epsilon(epsilon: object, name: str = "epsilon") -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        raise TypeError(f"{name} must be a number >= 0 (pixel units of [0, 1]), got {type(epsilon).__name__}")
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"{name} must be a finite number >= 0 (pixel units of [0, 1]), got {epsilon}")
    return float(epsilon)


def _predict(classifier: nn.Module, x: Tensor) -> Tensor:
    return classifier(x).argmax(dim=1)


def default_sizes(side: int, steps: int = 16) -> list[int]:
    """Square sides from 0 to ``side`` in at most ``steps`` even steps (every pixel for small images)."""
    return sorted({round(i * side / steps) for i in range(steps + 1)})


@torch.inference_mode()
def accuracy(classifier: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy on clean images: the reference point of every robustness curve."""
    labels = _check_inputs(images, labels)
    device = model_device(classifier)
    correct = 0
    with eval_mode(classifier):
        _check_labels_fit(classifier, images, labels, device)
        for s in batches(images.shape[0], batch_size):
            correct += int((_predict(classifier, to_unit(images[s], device)) == labels[s].to(device)).sum())
    return correct / images.shape[0]


# -- FGSM ----------------------------------------------------------------------------------------------------------
def _input_gradient_sign(classifier: nn.Module, x: Tensor, labels: Tensor) -> Tensor:
    """``sign(grad_x CE(classifier(x), labels))`` on ``x``'s device; the classifier's parameters get no ``.grad``.

    The loss is summed, not averaged, so that no sample's gradient is scaled towards underflow by the batch size
    (the sign would not care, but a zero would). Works inside an inference-mode caller: the input is a fresh
    autograd leaf made outside inference mode, and the labels a normal copy.
    """
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        logits = classifier(x).float()
        _check_label_range(labels, logits.shape[1])
        loss = nnf.cross_entropy(logits, labels.to(logits.device).clone(), reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


def fgsm(classifier: nn.Module, x: Tensor, labels: Tensor, epsilon: float) -> Tensor:
    """FGSM adversarial images: ``clamp(x + epsilon * sign(grad_x CE), 0, 1)`` for float images ``x`` in [0, 1].

    One batch, computed on the classifier's device and returned on ``x``'s. ``epsilon`` is in pixel units of
    [0, 1]; ``epsilon = 0`` returns ``x`` unchanged.
    """
    epsilon = _check_epsilon(epsilon)
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating tensor [N, C, H, W] in [0, 1] (convert uint8 images with to_unit)")
    labels = _check_inputs(x, labels)
    device = model_device(classifier)
    xd = x.to(device)
    with eval_mode(classifier):
        sign = _input_gradient_sign(classifier, xd, labels)
    return (xd + epsilon * sign).clamp_(0.0, 1.0).to(x.device)


def fgsm_accuracy(
    classifier: nn.Module,
    images: Tensor,
    labels: Tensor,
    epsilons: Sequence[float] = DEFAULT_EPSILONS,
    batch_size: int = 256,
) -> dict[float, float]:
    """Top-1 accuracy under FGSM for each ``epsilon``: ``{epsilon: accuracy}``.

    One gradient per batch serves every epsilon: FGSM's direction is the sign of the gradient at the clean image,
    which does not depend on epsilon, so the attacks differ only in step length. ``epsilon = 0`` gives exactly the
    clean accuracy.
    """
    labels = _check_inputs(images, labels)
    if isinstance(epsilons, (int, float)):
        raise TypeError("epsilons must be a sequence of numbers, e.g. (8 / 255,), not a single number")
    eps = [_check_epsilon(e, "epsilons") for e in epsilons]
    if not eps:
        raise ValueError("epsilons is empty: give at least one attack strength")
    device = model_device(classifier)
    correct = torch.zeros(len(eps), dtype=torch.int64)
    with eval_mode(classifier):
        for s in batches(images.shape[0], batch_size):
            x = to_unit(images[s], device)
            y = labels[s].to(device)
            sign = _input_gradient_sign(classifier, x, labels[s])
            with torch.inference_mode():
                for i, e in enumerate(eps):
                    correct[i] += int((_predict(classifier, (x + e * sign).clamp_(0.0, 1.0)) == y).sum())
    return {e: int(c) / images.shape[0] for e, c in zip(eps, correct.tolist(), strict=True)}


# -- occlusion -----------------------------------------------------------------------------------------------------
def centred_box(size: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The half-open box ``(x0, y0, x1, y1)`` of a square of side ``size`` centred in the image, clipped to it.

    An odd leftover puts the extra pixel after the box: ``y0 = (height - side) // 2``.
    """
    sh, sw = min(size, height), min(size, width)
    y0, x0 = (height - sh) // 2, (width - sw) // 2
    return x0, y0, x0 + sw, y0 + sh


def occlude(x: Tensor, size: int, mode: str = "center") -> Tensor:
    """Images [N, C, H, W] (any dtype) with a centred square of side ``size`` zeroed, or only that square kept.

    ``"center"`` is Cutout with a fixed centred box (``size = 0``: unchanged; ``size >= H, W``: all black);
    ``"boundary"`` is its complement (``size = 0``: all black; ``size >= H, W``: unchanged). Out-of-place.
    """
    if mode not in OCCLUSION_MODES:
        raise ValueError(f"mode must be one of {OCCLUSION_MODES}, got {mode!r}")
    _check_int(size, "size")
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a tensor [N, C, H, W], got {getattr(x, 'shape', type(x).__name__)}")
    x0, y0, x1, y1 = centred_box(size, x.shape[2], x.shape[3])
    if mode == "center":
        if x.shape[0] == 0:
            return x.clone()
        return functional.erase(x, torch.tensor([x0, y0, x1, y1]), value=0.0)
    out = torch.zeros_like(x)
    out[:, :, y0:y1, x0:x1] = x[:, :, y0:y1, x0:x1]
    return out


@torch.inference_mode()
def occlusion_curve(
    classifier: nn.Module,
    images: Tensor,
    labels: Tensor,
    sizes: Sequence[int] | None = None,
    mode: str = "center",
    batch_size: int = 256,
) -> dict[str, list[Any]]:
    """Top-1 accuracy against the occluded square's side: ``{"sizes": [...], "accuracy": [...]}``.

    ``sizes`` default to 0 .. max(H, W) in at most 16 steps. Each batch is loaded once for all sizes.
    """
    if mode not in OCCLUSION_MODES:
        raise ValueError(f"mode must be one of {OCCLUSION_MODES}, got {mode!r}")
    labels = _check_inputs(images, labels)
    sizes = default_sizes(max(images.shape[2:])) if sizes is None else [_check_int(s, "sizes") for s in sizes]
    if not sizes:
        raise ValueError("sizes is empty: give at least one square side")
    device = model_device(classifier)
    correct = torch.zeros(len(sizes), dtype=torch.int64)
    with eval_mode(classifier):
        _check_labels_fit(classifier, images, labels, device)
        for s in batches(images.shape[0], batch_size):
            x = to_unit(images[s], device)
            y = labels[s].to(device)
            for i, size in enumerate(sizes):
                correct[i] += int((_predict(classifier, occlude(x, size, mode)) == y).sum())
    return {"sizes": list(sizes), "accuracy": [c / images.shape[0] for c in correct.tolist()]}


# -- in-between-class samples --------------------------------------------------------------------------------------
def sample_pairs(
    labels: Tensor, num_pairs: int | None = None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Index pairs ``(a, b)`` [num_pairs] with ``labels[a] != labels[b]``, ``b`` uniform over the other classes' images.

    ``a`` runs over a random permutation of the images (with replacement only when ``num_pairs > N``; all of them
    by default). ``b`` is drawn exactly, without rejection: an index into the images of the other classes, which
    are the sorted-by-label order with the block of ``a``'s class skipped. Draw order: ``a``, then ``b``.
    """
    labels = check_eval_labels(labels, labels.shape[0] if isinstance(labels, Tensor) and labels.ndim == 1 else -1)
    n = labels.shape[0]
    num_pairs = n if num_pairs is None else _check_int(num_pairs, "num_pairs", 1)
    classes, counts = torch.unique(labels, sorted=True, return_counts=True)
    if classes.numel() < 2:
        raise ValueError("labels must hold at least two classes to form pairs with different labels")
    if num_pairs <= n:
        a = torch.randperm(n, generator=generator)[:num_pairs]
    else:
        a = torch.randint(n, (num_pairs,), generator=generator)
    cls = torch.searchsorted(classes, labels[a])
    own = counts[cls]
    start = (torch.cumsum(counts, 0) - counts)[cls]
    u = (torch.rand(num_pairs, generator=generator, dtype=torch.float64) * (n - own)).long()
    u = torch.minimum(u, n - own - 1)  # rand * m may round up to m in float64
    b = torch.argsort(labels, stable=True)[torch.where(u < start, u, u + own)]
    return a, b


def _mix(method: str, xa: Tensor, xb: Tensor, value: float) -> Tensor:
    if method == "mixup":
        return value * xa + (1.0 - value) * xb
    x0, y0, x1, y1 = centred_box(int(value), xa.shape[2], xa.shape[3])
    out = xa.clone()
    out[:, :, y0:y1, x0:x1] = xb[:, :, y0:y1, x0:x1]
    return out


def _check_values(method: str, values: Sequence[float] | None, height: int, width: int) -> list[Any]:
    if values is None:
        return [i / 10 for i in range(11)] if method == "mixup" else default_sizes(max(height, width))
    if method == "mixup":
        out = [float(v) for v in values]
        if any(not 0.0 <= v <= 1.0 for v in out):
            raise ValueError(f"mixup values (the weight of image a) must lie in [0, 1], got {out}")
    else:
        out = [_check_int(v, "cutmix values (square sides in pixels)") for v in values]
    if not out:
        raise ValueError("values is empty: give at least one mixing value")
    return out


@torch.inference_mode()
def in_between_curve(
    classifier: nn.Module,
    images: Tensor,
    labels: Tensor,
    method: str = "mixup",
    values: Sequence[float] | None = None,
    num_pairs: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, list[Any]]:
    """How often mixtures of two differently labelled images are classified as neither of their labels.

    ``method="mixup"``: ``values`` are the weights ``lam`` of image a (default 0, 0.1, ..., 1).
    ``method="cutmix"``: ``values`` are the sides in pixels of the centred square pasted from b into a (default
    0 .. max(H, W)). Returns ``values``, ``lam`` (the share of a's pixels: ``values`` for Mixup,
    ``1 - pasted area / (H * W)`` for CutMix, so both curves share an axis), ``neither_rate``, ``rate_a`` and
    ``rate_b``, each a list over ``values``. Pairs come from :func:`sample_pairs` seeded with ``seed``.
    """
    if method not in IN_BETWEEN_METHODS:
        raise ValueError(f"method must be one of {IN_BETWEEN_METHODS}, got {method!r}")
    labels = _check_inputs(images, labels)
    h, w = images.shape[2:]
    values = _check_values(method, values, h, w)
    a, b = sample_pairs(labels, num_pairs, torch.Generator().manual_seed(seed))
    device = model_device(classifier)
    hits_a = torch.zeros(len(values), dtype=torch.int64)
    hits_b = torch.zeros(len(values), dtype=torch.int64)
    with eval_mode(classifier):
        _check_labels_fit(classifier, images, labels, device)
        for s in batches(a.shape[0], batch_size):
            xa, xb = to_unit(images[a[s]], device), to_unit(images[b[s]], device)
            ya, yb = labels[a[s]].to(device), labels[b[s]].to(device)
            for i, v in enumerate(values):
                pred = _predict(classifier, _mix(method, xa, xb, v))
                hits_a[i] += int((pred == ya).sum())
                hits_b[i] += int((pred == yb).sum())
    m = a.shape[0]
    lam = list(values) if method == "mixup" else [1.0 - min(v, h) * min(v, w) / (h * w) for v in values]
    return {
        "values": list(values),
        "lam": lam,
        "neither_rate": [(m - ca - cb) / m for ca, cb in zip(hits_a.tolist(), hits_b.tolist(), strict=True)],
        "rate_a": [c / m for c in hits_a.tolist()],
        "rate_b": [c / m for c in hits_b.tolist()],
    }


# -- all of it -----------------------------------------------------------------------------------------------------
def robustness_summary(
    classifier: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    epsilons: Sequence[float] = DEFAULT_EPSILONS,
    occlusion_sizes: Sequence[int] | None = None,
    mixup_values: Sequence[float] | None = None,
    cutmix_values: Sequence[int] | None = None,
    num_pairs: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Clean accuracy, FGSM, both occlusions and both in-between curves with the defaults above, as one JSON dict."""
    fgsm_acc = fgsm_accuracy(classifier, images, labels, epsilons, batch_size)
    return {
        "num_samples": int(images.shape[0]),
        "clean_accuracy": accuracy(classifier, images, labels, batch_size),
        "fgsm": {"epsilons": list(fgsm_acc), "accuracy": list(fgsm_acc.values())},
        "occlusion": {
            mode: occlusion_curve(classifier, images, labels, occlusion_sizes, mode, batch_size)
            for mode in OCCLUSION_MODES
        },
        "in_between": {
            method: in_between_curve(classifier, images, labels, method, values, num_pairs, seed, batch_size)
            for method, values in (("mixup", mixup_values), ("cutmix", cutmix_values))
        },
    }
