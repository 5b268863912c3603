"""Figures of the classification and calibration metrics: the confusion matrix and the reliability diagram.

Both take the JSON-ready outputs of :mod:`cutmix.evaluate.classify` and :mod:`cutmix.evaluate.calibration`, so a
report can redraw them from saved results without the model. Figure sizes are fixed (no tight bounding box) so that
pages of figures line up: the confusion matrix is 1.2 wide per unit of height, the reliability diagram 5.5 x 6.5.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cutmix.viz._mpl import pyplot, save

CONFUSION_ASPECT = 1.2  # width / height of the confusion figure (room for the colour bar)
RELIABILITY_SIZE = (5.5, 6.5)
MAX_ANNOTATED_CLASSES = 20  # above this, cells carry no count text and only some classes are named


def plot_confusion(
    confusion: Tensor | Sequence[Sequence[int]], classes: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Row-normalised confusion heat map (rows: true class, columns: predicted), with the counts in the cells.

    Colour is the fraction of the true class predicted as each class, so classes of different sizes compare; a row
    without samples stays blank. Counts and every class name are written for up to 20 classes.
    """
    counts = torch.as_tensor(confusion).cpu()
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"confusion must be a non-empty square matrix [K, K], got shape {tuple(counts.shape)}")
    k = counts.shape[0]
    if len(classes) != k:
        raise ValueError(f"classes names {len(classes)} classes but confusion is {k} x {k}")
    counts = counts.double()
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)

    plt = pyplot()
    side = min(max(4.0, 0.45 * k + 2.5), 14.0)
    fig, ax = plt.subplots(figsize=(CONFUSION_ASPECT * side, side))
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    step = 1 if k <= MAX_ANNOTATED_CLASSES else math.ceil(k / MAX_ANNOTATED_CLASSES)
    ticks = list(range(0, k, step))
    fontsize = 8 if k <= 10 else 6
    ax.set_xticks(
        ticks, [classes[i] for i in ticks], rotation=45, ha="right", rotation_mode="anchor", fontsize=fontsize
    )
    ax.set_yticks(ticks, [classes[i] for i in ticks], fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= MAX_ANNOTATED_CLASSES:
        for t, (row, rate_row) in enumerate(zip(counts.long().tolist(), rates.tolist(), strict=True)):
            for p, (n, rate) in enumerate(zip(row, rate_row, strict=True)):
                colour = "white" if rate > 0.5 else "black"
                ax.text(p, t, str(n), ha="center", va="center", fontsize=fontsize, color=colour)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, path, tight=False)


def _bins_of(name: str, run: dict[str, Any]) -> dict[str, Any]:
    """A run's reliability bins: the dict itself, or the ``bins`` of a calibration summary."""
    bins = run.get("bins", run)
    missing = [key for key in ("edges", "count", "confidence", "accuracy") if key not in bins]
    if missing:
        raise ValueError(f"run {name!r} is not a reliability_bins dict (missing {', '.join(missing)})")
    b = len(bins["count"])
    if len(bins["edges"]) != b + 1 or len(bins["confidence"]) != b or len(bins["accuracy"]) != b:
        raise ValueError(f"run {name!r}: edges must have one entry more than count, confidence and accuracy")
    return bins


def _legend(name: str, run: dict[str, Any]) -> str:
    """``name``, with the ECE (in %) when ``run`` is a calibration summary that carries one."""
    ece = run.get("ece")
    return name if ece is None else f"{name} (ECE {100 * ece:.2f}%)"


def _steps(values: Sequence[float | None]) -> list[float]:
    """Per-bin values as y-coordinates of a 'steps-post' line over the edges (empty bins become gaps)."""
    ys = [math.nan if v is None else float(v) for v in values]
    return [*ys, ys[-1]]


def plot_reliability(bins_by_run: dict[str, dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Reliability diagram of one or several runs, with the share of samples per confidence bin underneath.

    ``bins_by_run`` maps a run name to its :func:`cutmix.evaluate.calibration.reliability_bins` dict or to a
    calibration summary holding one under ``bins``; a summary's ``ece`` goes into the legend (this module draws the
    numbers it is given and computes no metric). Accuracy per bin is drawn as bars for a single run and as steps
    when several are overlaid, the bin's mean confidence as a dot; a perfectly calibrated model follows the diagonal.
    """
    if not bins_by_run:
        raise ValueError("bins_by_run is empty: give at least one run")
    runs = {_legend(name, run): _bins_of(name, run) for name, run in bins_by_run.items()}
    single = len(runs) == 1

    plt = pyplot()
    fig, (ax, ax_hist) = plt.subplots(
        2, 1, sharex=True, figsize=RELIABILITY_SIZE, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    for i, (label, bins) in enumerate(runs.items()):
        colour = f"C{i}"
        edges = bins["edges"]
        share = [n / max(sum(bins["count"]), 1) for n in bins["count"]]
        if single:
            widths = [hi - lo for lo, hi in itertools.pairwise(edges)]
            accuracy = [math.nan if v is None else v for v in bins["accuracy"]]
            style = {"width": widths, "align": "edge", "color": colour, "alpha": 0.55, "edgecolor": "black",
                     "linewidth": 0.5}
            ax.bar(edges[:-1], accuracy, label=label, **style)
            ax_hist.bar(edges[:-1], share, **style)
        else:
            ax.plot(edges, _steps(bins["accuracy"]), drawstyle="steps-post", color=colour, linewidth=1.5, label=label)
            ax_hist.plot(edges, _steps(share), drawstyle="steps-post", color=colour, linewidth=1.2)
        filled = [(c, a) for c, a in zip(bins["confidence"], bins["accuracy"], strict=True) if c is not None]
        if filled:
            ax.plot(*zip(*filled, strict=True), linestyle="none", marker="o", markersize=3, color=colour, clip_on=False)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax_hist.set_xlabel("confidence (top-1 softmax probability)")
    ax_hist.set_ylabel("share of samples")
    ax_hist.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, path, tight=False)
