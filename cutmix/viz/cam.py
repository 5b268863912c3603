"""Class activation maps over their images, with the ground-truth and the estimated boxes (the paper's Figure 4)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from cutmix.viz._mpl import pyplot, save

GT_COLOUR = "#00e000"  # ground-truth boxes
PRED_COLOUR = "#ff2020"  # the box estimated from the map


def _rectangle(box: Sequence[int], colour: str, style: str = "-"):
    """A half-open pixel box as a matplotlib patch: imshow puts pixel centres on integers, edges at -0.5."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = (int(v) for v in box)
    return Rectangle(
        (x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.6, linestyle=style
    )


def plot_cam_overlays(
    images: Tensor,
    cams: Tensor,
    gt_boxes: Tensor,
    gt_valid: Tensor | None,
    pred_boxes: Tensor,
    titles: Sequence[str],
    path: str | Path,
    cols: int = 8,
    alpha: float = 0.5,
    title: str = "",
) -> Path:
    """Each uint8 image [n, 3, H, W] under its map [n, H, W] (turbo colours, ``alpha`` opaque), its ground-truth
    boxes [n, M, 4] (or [n, 4]; ``gt_valid`` [n, M] masks padding) in green and the estimated box [n, 4] in red,
    with one title per image (e.g. ``"disc ✓ IoU .71"``); saved as a PNG."""
    n = images.shape[0]
    if images.ndim != 4 or cams.shape != (n, *images.shape[2:]):
        raise ValueError(
            f"images [n, C, H, W] and cams [n, H, W] must match, got {tuple(images.shape)} and {tuple(cams.shape)}"
        )
    if gt_boxes.ndim == 2:
        gt_boxes = gt_boxes[:, None]
    if gt_valid is None:
        gt_valid = torch.ones(gt_boxes.shape[:2], dtype=torch.bool)
    if gt_boxes.shape[0] != n or pred_boxes.shape != (n, 4) or len(titles) != n or gt_valid.shape != gt_boxes.shape[:2]:
        raise ValueError(
            f"need one entry per image ({n}): gt_boxes {tuple(gt_boxes.shape)}, gt_valid "
            f"{tuple(gt_valid.shape)}, pred_boxes {tuple(pred_boxes.shape)}, {len(titles)} titles"
        )
    if n == 0 or cols < 1:
        raise ValueError(f"need at least one image and cols >= 1, got {n} images and cols={cols}")
    plt = pyplot()
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 2.15 * rows + (0.3 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        picture = images[i].detach().cpu()
        picture = picture.expand(3, -1, -1) if picture.shape[0] == 1 else picture
        ax.imshow(picture.permute(1, 2, 0).to(torch.uint8).numpy(), interpolation="nearest")
        ax.imshow(
            cams[i].detach().float().cpu().numpy(), cmap="turbo", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear"
        )
        for box, valid in zip(gt_boxes[i].tolist(), gt_valid[i].tolist(), strict=True):
            if valid:
                ax.add_patch(_rectangle(box, GT_COLOUR))
        ax.add_patch(_rectangle(pred_boxes[i].tolist(), PRED_COLOUR, "--"))
        ax.set_title(titles[i], fontsize=7)
    fig.suptitle((title + "\n" if title else "") + "green: ground truth, red dashed: from the map", fontsize=8)
    return save(fig, path, dpi=120)


def overlay_titles(classes: Sequence[str], labels: Tensor, predictions: Tensor, ious: Tensor) -> list[str]:
    """``"disc ✓ IoU .71"``: the true class, whether it was predicted (else ``✗ → predicted``), the box's IoU."""
    out = []
    for y, p, iou in zip(labels.tolist(), predictions.tolist(), ious.tolist(), strict=True):
        verdict = "✓" if y == p else f"✗ → {classes[p]}"
        out.append(f"{classes[y]} {verdict} IoU {iou:.2f}".replace(" 0.", " ."))
    return out
