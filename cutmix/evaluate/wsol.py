"""Weakly-supervised object localisation (the paper's Table 5): boxes from class activation maps, and their scores.

The protocol of the CAM paper (Zhou et al. 2016), which CutMix follows: threshold each map at a fraction of its
maximum (0.15 in the paper), keep the largest connected region, take its bounding box, and count an image as
localised when that box overlaps a ground-truth box with IoU >= 0.5.

* GT-known localisation: the box from the map of the ground-truth class is right.
* Top-1 localisation: the class is predicted correctly *and* the box is right. Where the prediction is correct the
  predicted class's map is the ground-truth class's map, so one map per image (the ground truth's) serves both.

Boxes are half-open ``(x0, y0, x1, y1)`` int64, as everywhere in the library: area ``(x1 - x0) * (y1 - y0)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from cutmix.evaluate.cam import activation_maps
from cutmix.evaluate.common import batches, check_eval_images, check_eval_labels, eval_mode, model_device, to_unit

SWEEP_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05, 0.10, ..., 0.95
CONNECTIVITY = 8  # neighbours that join two foreground pixels: 8 (OpenCV's contours, the CAM code's) or 4


# -- connected components, vectorised over the batch


def _runs(fg: Tensor) -> Tensor:
    """Ids int64 [N, H, W] of the horizontal runs of foreground, unique across the batch (0 on background): the
    running count of run starts in raster order."""
    start = fg.clone()
    start[..., 1:] &= ~fg[..., :-1]
    return torch.where(fg, torch.cumsum(start.flatten(), 0).view_as(fg), 0)


def _run_max(labels: Tensor, runs: Tensor) -> Tensor:
    """Every pixel takes the largest label of its run: one scatter and one gather for the whole batch. Background
    (run 0) stays 0, its labels being all 0."""
    flat = runs.flatten()
    best = labels.new_zeros(runs.numel() + 1).scatter_reduce_(0, flat, labels.flatten(), "amax")
    return best.index_select(0, flat).view_as(runs)  # (advanced indexing is far slower on CPU)


def _diagonal_max(labels: Tensor, fg: Tensor) -> Tensor:
    """Every foreground pixel takes the largest label among itself and its four diagonal neighbours."""
    h, w = labels.shape[-2:]
    padded = F.pad(labels, (1, 1, 1, 1))
    sideways = torch.maximum(padded[..., :w], padded[..., 2:])  # left and right neighbours, rows -1 .. h
    out = torch.maximum(torch.maximum(labels, sideways[..., :h, :]), sideways[..., 2:, :])
    return torch.where(fg, out, 0)


def connected_components(fg: Tensor, connectivity: int = CONNECTIVITY) -> Tensor:
    """Labels int64 [N, H, W] of the foreground components of ``fg`` bool [N, H, W]: 0 on background, and one id
    per component, unique across the batch (the largest flat index + 1 among its pixels).

    Label propagation: each pixel starts with its own id and repeatedly takes the maximum along its horizontal run,
    its vertical run and (8-connectivity) its diagonal neighbours, until nothing changes. Labels only grow, and the
    fixed point is constant on each component; whole runs move in one step, so a few rounds suffice for compact
    regions. Labels are int32 while they fit, which halves the memory traffic.
    """
    if not isinstance(fg, Tensor) or fg.dtype != torch.bool or fg.ndim != 3:
        raise ValueError(
            f"fg must be a bool tensor [N, H, W], got {getattr(fg, 'dtype', type(fg).__name__)} "
            f"{tuple(getattr(fg, 'shape', ()))}"
        )
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    dtype = torch.int32 if fg.numel() < torch.iinfo(torch.int32).max else torch.int64
    ids = torch.arange(1, fg.numel() + 1, dtype=dtype, device=fg.device).view_as(fg)
    labels = torch.where(fg, ids, 0)
    # column runs are numbered on the transposed mask, but the ids are stored in the image's own layout
    rows, cols = _runs(fg), _runs(fg.transpose(1, 2).contiguous()).transpose(1, 2).contiguous()
    while True:
        new = _run_max(_run_max(labels, rows), cols)
        if connectivity == 8:
            new = _diagonal_max(new, fg)
        if torch.equal(new, labels):
            return labels.long()
        labels = new


def mask_boxes(masks: Tensor) -> Tensor:
    """Tight half-open boxes int64 [N, 4] of the true pixels of ``masks`` [N, H, W]; an empty mask gets the image."""
    h, w = masks.shape[-2:]
    rows, cols = masks.any(dim=2), masks.any(dim=1)

    def span(hit: Tensor, length: int) -> tuple[Tensor, Tensor]:
        first = hit.int().argmax(dim=1)
        last = length - hit.flip(1).int().argmax(dim=1)
        empty = ~hit.any(dim=1)
        return torch.where(empty, 0, first), torch.where(empty, length, last)

    y0, y1 = span(rows, h)
    x0, x1 = span(cols, w)
    return torch.stack([x0, y0, x1, y1], dim=1).long()


def _thresholds(threshold: float | Tensor, n: int, device: torch.device) -> Tensor:
    t = torch.as_tensor(threshold, dtype=torch.float32, device=device)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != n):
        raise ValueError(f"threshold must be a number or a tensor of shape ({n},), got shape {tuple(t.shape)}")
    if not bool(((t > 0) & (t <= 1)).all()):
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    return t.expand(n)


def cam_boxes(cams: Tensor, threshold: float | Tensor = 0.15, connectivity: int = CONNECTIVITY) -> Tensor:
    """Boxes int64 [N, 4] around the largest connected region of pixels >= ``threshold`` * max of each map.

    ``threshold`` is one number or one per map [N]. Regions join through ``connectivity`` neighbours (8 by default,
    as OpenCV's contours in the reference CAM code; diagonal touching joins). Equal-sized regions: the one whose
    first pixel comes first in raster order wins. A map with no pixel over the threshold (only possible for maps
    that are not normalised, e.g. all negative) gets the whole image.
    """
    if not isinstance(cams, Tensor) or cams.ndim != 3 or not cams.is_floating_point() or cams.shape[0] == 0:
        got = tuple(cams.shape) if isinstance(cams, Tensor) else type(cams).__name__
        raise ValueError(f"cams must be a non-empty float tensor [N, H, W], got {got}")
    if not bool(torch.isfinite(cams).all()):
        raise ValueError("cams hold NaN or infinite values")
    n = cams.shape[0]
    t = _thresholds(threshold, n, cams.device)
    fg = cams >= (t * cams.amax(dim=(1, 2)))[:, None, None]
    labels = connected_components(fg, connectivity)
    sizes = torch.bincount(labels.flatten(), minlength=fg.numel() + 1)
    sizes[0] = 0  # background
    largest = sizes.index_select(0, labels.flatten()).view(n, -1).argmax(dim=1)  # a pixel of the largest region
    chosen = labels.flatten(1).gather(1, largest[:, None]).view(n, 1, 1)
    return mask_boxes(fg & (labels == chosen))


# -- overlap and scores


def _check_boxes(boxes: Tensor, name: str, shape: tuple[int | None, ...]) -> Tensor:
    ok = isinstance(boxes, Tensor) and boxes.ndim == len(shape)
    ok = ok and all(s is None or s == d for s, d in zip(shape, boxes.shape, strict=True))
    if not ok:
        want = ", ".join("*" if s is None else str(s) for s in shape)
        got = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"{name} must be a tensor of shape [{want}] (x0, y0, x1, y1), got {got}")
    return boxes


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU [N] float32 of half-open boxes ``a`` [N, 4] and ``b`` [N, 4], pairwise by row (0 where both are empty)."""
    _check_boxes(a, "a", (None, 4))
    _check_boxes(b, "b", (a.shape[0], 4))
    a, b = a.double(), b.double()
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih

    def area(t: Tensor) -> Tensor:
        return (t[..., 2] - t[..., 0]).clamp(min=0) * (t[..., 3] - t[..., 1]).clamp(min=0)

    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), 0.0).float()


def _gt(gt_boxes: Tensor, gt_valid: Tensor | None, n: int) -> tuple[Tensor, Tensor]:
    """Ground truth as [N, M, 4] boxes and [N, M] validity, each image with at least one valid box."""
    if isinstance(gt_boxes, Tensor) and gt_boxes.ndim == 2:
        gt_boxes = gt_boxes[:, None]
        gt_valid = None if gt_valid is None else gt_valid.reshape(-1, 1)
    _check_boxes(gt_boxes, "gt_boxes", (n, None, 4))
    if gt_valid is None:
        gt_valid = torch.ones(gt_boxes.shape[:2], dtype=torch.bool, device=gt_boxes.device)
    if not isinstance(gt_valid, Tensor) or gt_valid.dtype != torch.bool or gt_valid.shape != gt_boxes.shape[:2]:
        got = f"{gt_valid.dtype} {tuple(gt_valid.shape)}" if isinstance(gt_valid, Tensor) else type(gt_valid).__name__
        raise ValueError(f"gt_valid must be a bool tensor of shape {tuple(gt_boxes.shape[:2])}, got {got}")
    if not bool(gt_valid.any(dim=1).all()):
        bad = (~gt_valid.any(dim=1)).nonzero()[:5, 0].tolist()
        raise ValueError(f"every image needs at least one valid ground-truth box; images {bad} have none")
    return gt_boxes, gt_valid


def box_iou_any(pred: Tensor, gt: Tensor, valid: Tensor | None = None) -> Tensor:
    """Best IoU [N] of each predicted box [N, 4] with any of its image's valid ground-truth boxes [N, M, 4]."""
    _check_boxes(pred, "pred", (None, 4))
    gt, valid = _gt(gt, valid, pred.shape[0])
    m = gt.shape[1]
    ious = box_iou(pred[:, None].expand(-1, m, -1).reshape(-1, 4), gt.reshape(-1, 4)).view(-1, m)
    return torch.where(valid.to(ious.device), ious, -1.0).amax(dim=1)


def localization_scores(
    pred_boxes: Tensor,
    gt_boxes: Tensor,
    gt_valid: Tensor | None,
    predictions: Tensor,
    labels: Tensor,
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """Top-1 and GT-known localisation accuracy, mean IoU and top-1 classification accuracy, all in [0, 1].

    ``pred_boxes`` [N, 4] come from the map of each image's ground-truth class (see the module docstring for why
    that serves top-1 localisation too). A box is right at IoU >= ``iou_threshold``: the paper says "> 0.5", the
    reference evaluation code (and ours) counts equality as a hit.
    """
    n = _check_boxes(pred_boxes, "pred_boxes", (None, 4)).shape[0]
    if n == 0:
        raise ValueError("pred_boxes is empty")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
    predictions = check_eval_labels(predictions, n, name="predictions")
    labels = check_eval_labels(labels, n)
    iou = box_iou_any(pred_boxes, gt_boxes, gt_valid)
    hit = iou >= iou_threshold
    correct = predictions.to(hit.device) == labels.to(hit.device)
    return {
        "top1_loc_acc": float((hit & correct).float().mean()),
        "gt_known_loc_acc": float(hit.float().mean()),
        "mean_iou": float(iou.mean()),
        "top1_cls_acc": float(correct.float().mean()),
    }


# -- the whole evaluation


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    values = [float(t) for t in thresholds]
    if not values or any(not 0.0 < t <= 1.0 for t in values):
        raise ValueError(f"thresholds must be a non-empty sequence of numbers in (0, 1], got {list(thresholds)}")
    return values


def evaluate_localization(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    gt_boxes: Tensor,
    gt_valid: Tensor | None,
    mean: Sequence[float],
    std: Sequence[float],
    thresholds: Sequence[float] = (0.15,),
    batch_size: int = 128,
    method: str = "cam",
    *,
    layer: nn.Module | str | None = None,
    iou_threshold: float = 0.5,
    sweep: bool = True,
    examples: int = 0,
) -> dict[str, Any]:
    """Localisation scores of ``model`` on uint8 ``images`` [N, C, H, W] with boxes in their pixel coordinates.

    Maps of each image's ground-truth class (``method`` "cam" or "gradcam" at ``layer``) are computed once per
    batch on the model's device and boxed at every threshold of ``thresholds`` and (``sweep=True``; on a CPU it
    costs about 20x the boxing time) of the sweep 0.05, 0.10, ..., 0.95.

    Returns ``{"method", "num_images", "iou_threshold", "top1_cls_acc", "results": [scores per threshold],
    "sweep": [scores per sweep threshold], "best": the scores of the threshold with the highest GT-known accuracy
    (ties: the lowest threshold)}``, each scores dict holding ``threshold``, ``top1_loc_acc``,
    ``gt_known_loc_acc`` and ``mean_iou``. ``examples=n`` adds ``"examples"``: the first n images' ``cams``,
    ``boxes`` (at the first threshold), ``predictions`` and ``ious`` on the CPU, for
    :func:`cutmix.viz.cam.plot_cam_overlays`.
    """
    n, c = check_eval_images(images).shape[:2]
    labels = check_eval_labels(labels, n)
    gt_boxes, gt_valid = _gt(gt_boxes, gt_valid, n)
    given = _check_thresholds(thresholds)
    every = list(dict.fromkeys([*given, *(SWEEP_THRESHOLDS if sweep else ())]))
    if len(mean) != c or len(std) != c:
        raise ValueError(f"mean and std need {c} values (one per channel), got {len(mean)} and {len(std)}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise ValueError(f"examples must be an int >= 0, got {examples!r}")
    device = model_device(model)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    totals = torch.zeros(3, len(every), dtype=torch.float64, device=device)  # top-1 hits, GT-known hits, IoU sum
    correct_sum = torch.zeros((), dtype=torch.float64, device=device)
    kept: dict[str, list[Tensor]] = {"cams": [], "boxes": [], "predictions": [], "ious": []}
    with eval_mode(model):
        for s in batches(n, batch_size):
            x = (to_unit(images[s], device) - mean_t) / std_t
            y = labels[s].to(device)
            cams, logits = activation_maps(model, x, y, method, layer)
            with torch.inference_mode():
                correct = logits.argmax(dim=1) == y
                correct_sum += correct.sum()
                gt, valid = gt_boxes[s].to(device), gt_valid[s].to(device)
                for i, t in enumerate(every):
                    boxes = cam_boxes(cams, t)
                    iou = box_iou_any(boxes, gt, valid)
                    hit = iou >= iou_threshold
                    totals[:, i] += torch.stack([(hit & correct).sum(), hit.sum(), iou.sum()]).double()
                    take = examples - sum(len(v) for v in kept["cams"])
                    if i == 0 and take > 0:
                        for key, value in zip(kept, (cams, boxes, logits.argmax(dim=1), iou), strict=True):
                            kept[key].append(value[:take].cpu())

    results = [
        {"threshold": t, "top1_loc_acc": top1 / n, "gt_known_loc_acc": known / n, "mean_iou": iou / n}
        for t, (top1, known, iou) in zip(every, totals.T.tolist(), strict=True)
    ]
    by_threshold = dict(zip(every, results, strict=True))
    out = {
        "method": method,
        "num_images": n,
        "iou_threshold": iou_threshold,
        "top1_cls_acc": float(correct_sum) / n,
        "results": [by_threshold[t] for t in given],
        "sweep": [by_threshold[t] for t in SWEEP_THRESHOLDS] if sweep else [],
        "best": max(results, key=lambda r: (r["gt_known_loc_acc"], -r["threshold"])),
    }
    if examples > 0:
        out["examples"] = {key: torch.cat(value) for key, value in kept.items()}
    return out

