"""Grids of mixed batches with their targets written under each image (the paper's Table 1 picture)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from cutmix import functional as F
from cutmix import sampling
from cutmix.boxes import place_boxes, sample_boxes, sample_centres
from cutmix.viz._mpl import pyplot, save


def describe_target(target: Tensor, classes: Sequence[str], top: int = 2) -> str:
    """``"0.62 cat\\n0.38 dog"``: the largest label weights of one target row."""
    values, indices = target.float().topk(min(top, target.numel()))
    pairs = zip(values.tolist(), indices.tolist(), strict=True)
    return "\n".join(f"{v:.2f} {classes[int(i)]}" for v, i in pairs if v > 0.005)


def mix_grid(rows: dict[str, tuple[Tensor, Tensor]], classes: Sequence[str], path: str | Path,
             title: str = "") -> Path:
    """One row per regulariser: its uint8 images [n, 3, H, W] with the target under each one, saved as a PNG."""
    plt = pyplot()
    n = max(images.shape[0] for images, _ in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.55 * n + 1.6, 1.95 * len(rows)), squeeze=False)
    for r, (name, (images, targets)) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= images.shape[0]:
                ax.axis("off")
                continue
            ax.imshow(images[c].permute(1, 2, 0).to(torch.uint8).cpu().numpy(), interpolation="nearest")
            ax.set_xlabel(describe_target(targets[c], classes), fontsize=7, linespacing=1.1)
            if c == 0:
                ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center", labelpad=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, path, dpi=120)


def regulariser_rows(images: Tensor, labels: Tensor, num_classes: int, seed: int) -> dict[str, tuple[Tensor, Tensor]]:
    """Each regulariser applied to the same uint8 batch, every image mixed with the next one (explicit draws).

    The rows of ``cutmix show`` (what :func:`mix_grid` draws), made with the functional ops and seeded draws.
    """

    n, _, h, w = images.shape
    index = torch.arange(n).roll(-1)  # image i gets its partner from image i + 1

    def g():
        return torch.Generator().manual_seed(seed)

    def cutmix_row(**kwargs):
        label = kwargs.pop("label", "area")
        boxes = sample_boxes(n, h, w, generator=g(), **kwargs)
        return F.cutmix(images, labels, boxes=boxes, index=index, num_classes=num_classes, label=label)

    side = max(1, min(h, w) // 2)
    cutout_boxes = place_boxes(sample_centres(n, h, w, generator=g()), torch.tensor([[side, side]]).expand(n, 2), h, w)
    return {
        "none": (images, F.one_hot(labels, num_classes)),
        f"Cutout {side}px": F.cutout(images, labels, boxes=cutout_boxes, num_classes=num_classes),
        "Mixup": F.mixup(images, labels, lam=sampling.beta(1.0, n, g()), index=index, num_classes=num_classes),
        "CutMix": cutmix_row(),
        "CutMix inside": cutmix_row(placement="inside"),
        "CutMix Gaussian": cutmix_row(kind="gaussian"),
        "CutMix fixed": cutmix_row(kind="fixed", placement="inside"),
        "CutMix one-hot": cutmix_row(label="onehot"),
        "CutMix complete": cutmix_row(label="complete"),
    }
