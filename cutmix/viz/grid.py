"""Grids of mixed batches with their targets written under each image (the paper's Table 1 picture)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

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
