"""Training curves: the paper's validation-error figure, for one run or several overlaid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cutmix.viz._mpl import pyplot, save


def plot_curves(metrics: Sequence[dict[str, Any]], path: str | Path, title: str = "", error: str = "top1_err",
                label: str = "top-1 error (%)") -> Path:
    """An error (``train_ERROR`` against the unmixed labels, ``val_ERROR``; top-1 error by default, pixel error for
    segmentation) and the loss per epoch, saved as a PNG."""
    plt = pyplot()
    epochs = [m["epoch"] for m in metrics]
    evaluated = [m for m in metrics if f"val_{error}" in m]  # with eval_every > 1 only some epochs are
    clean = [m for m in evaluated if f"train_eval_{error}" in m]
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_err.plot(epochs, [100 * m[f"train_{error}"] for m in metrics], label="train batches (unmixed labels)",
                marker=".")
    if clean:
        ax_err.plot([m["epoch"] for m in clean], [100 * m[f"train_eval_{error}"] for m in clean],
                    label="train images (clean)", marker=".")
    ax_err.plot([m["epoch"] for m in evaluated], [100 * m[f"val_{error}"] for m in evaluated], label="validation",
                marker=".")
    ax_err.set_xlabel("epoch")
    ax_err.set_ylabel(label)
    ax_err.grid(alpha=0.3)
    ax_err.legend()
    ax_loss.plot(epochs, [m["train_loss"] for m in metrics], label="train (mixed targets)", marker=".")
    ax_loss.plot([m["epoch"] for m in evaluated], [m["val_loss"] for m in evaluated], label="validation",
                 marker=".")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    if title:
        fig.suptitle(title)
    return save(fig, path)


def plot_runs(runs: dict[str, Sequence[dict[str, Any]]], path: str | Path, metric: str = "val_top1_err",
              title: str = "", styles: dict[str, dict[str, str]] | None = None) -> Path:
    """One curve per run (e.g. baseline, Mixup, Cutout, CutMix) of ``metric`` in % against the epoch."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, metrics in runs.items():
        points = [m for m in metrics if metric in m]
        ax.plot([m["epoch"] for m in points], [100 * m[metric] for m in points], label=name, marker=".",
                **(styles or {}).get(name, {}))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " ") + " (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return save(fig, path)
