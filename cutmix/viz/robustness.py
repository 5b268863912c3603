"""Robustness figures: curves per run (occlusion, in-between-class samples; the paper's Figure 5) and OOD histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cutmix.viz._mpl import pyplot, save

Curve = Mapping[str, Sequence[float]]  # {"x": [...], "y": [...]}


@dataclass(frozen=True)
class CurveFigure:
    """One robustness figure: where its curve sits in an evaluation's ``robust`` section, and how it is labelled.
    ``cutmix eval`` draws it for one run and ``cutmix report`` for several, from this one description."""

    key: str  # file stem
    where: tuple[str, str]  # robust[where[0]][where[1]]
    x: str
    y: str
    xlabel: str
    title: str
    ylabel: str

    def curve(self, robust: Mapping[str, object]) -> Curve | None:
        """``{"x", "y"}`` (y in %) of this figure in one evaluation's ``robust`` section, or None if absent."""
        found: object = robust
        for key in self.where:
            found = found.get(key) if isinstance(found, Mapping) else None
        if not isinstance(found, Mapping):
            return None
        return {"x": found[self.x], "y": [100 * v for v in found[self.y]]}


ROBUST_FIGURES = (
    CurveFigure("occlusion_center", ("occlusion", "center"), "sizes", "accuracy", "occluded centre square side (px)",
                "centre occlusion", "accuracy (%)"),
    CurveFigure("occlusion_boundary", ("occlusion", "boundary"), "sizes", "accuracy", "kept centre square side (px)",
                "boundary occlusion", "accuracy (%)"),
    CurveFigure("in_between_mixup", ("in_between", "mixup"), "values", "neither_rate", "Mixup λ (share of image a)",
                "in-between (Mixup)", "neither class (%)"),
    CurveFigure("in_between_cutmix", ("in_between", "cutmix"), "values", "neither_rate",
                "side of the square pasted from b (px)", "in-between (CutMix)", "neither class (%)"),
)


def _check_curves(curves: Mapping[str, Curve], name: str) -> None:
    if not curves:
        raise ValueError(f"{name} is empty: give at least one run's curve")
    for run, curve in curves.items():
        if "x" not in curve or "y" not in curve or len(curve["x"]) != len(curve["y"]):
            raise ValueError(f"{name}[{run!r}] must be {{'x': [...], 'y': [...]}} of equal lengths")


def plot_curve_panels(
    panels: Mapping[str, Mapping[str, Curve]], path: str | Path, xlabel: str, ylabel: str, title: str = "",
    styles: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """One panel per key of ``panels`` (e.g. center / boundary occlusion), one line per run in each, as a PNG.

    ``styles`` optionally gives matplotlib line keywords per run (see ``cutmix.viz._mpl.group_styles``).
    """
    if not panels:
        raise ValueError("panels is empty: give at least one panel of curves")
    for panel, curves in panels.items():
        _check_curves(curves, f"panels[{panel!r}]")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels.items(), strict=True):
        for run, curve in curves.items():
            ax.plot(curve["x"], curve["y"], label=run, marker=".", **(styles or {}).get(run, {}))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        if panel:
            ax.set_title(panel)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def plot_curves_by_run(
    curves: Mapping[str, Curve], path: str | Path, xlabel: str, ylabel: str, title: str = "",
    styles: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """One line per run (e.g. baseline, Mixup, Cutout, CutMix) of ``y`` against ``x``, saved as a PNG."""
    _check_curves(curves, "curves")
    return plot_curve_panels({title: curves}, path, xlabel, ylabel, styles=styles)


def plot_score_histograms(
    scores_in: Sequence[float],
    scores_out: Mapping[str, Sequence[float]],
    path: str | Path,
    title: str = "",
    bins: int = 40,
) -> Path:
    """Max-softmax histograms (densities on shared bins over [0, 1]): one panel per OOD set, the in-set overlaid."""
    if not scores_out:
        raise ValueError("scores_out is empty: give at least one OOD set's scores")
    plt = pyplot()
    import numpy as np

    edges = np.linspace(0.0, 1.0, bins + 1)
    s_in = np.asarray(scores_in, dtype=np.float64)
    fig, axes = plt.subplots(1, len(scores_out), figsize=(4.2 * len(scores_out), 3.4), squeeze=False)
    for ax, (name, scores) in zip(axes[0], scores_out.items(), strict=True):
        ax.hist(s_in, bins=edges, density=True, alpha=0.55, label="in-distribution")
        ax.hist(np.asarray(scores, dtype=np.float64), bins=edges, density=True, alpha=0.55, label=name)
        ax.set_xlabel("max softmax probability")
        ax.set_ylabel("density")
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(f"in vs {name}")
    if title:
        fig.suptitle(title)
    return save(fig, path)
