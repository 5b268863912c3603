"""A headless matplotlib, imported on first use."""

from __future__ import annotations


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int = 110, tight: bool = True):
    """Lay out, write ``fig`` as ``path`` (creating its folder) and free it; returns the path as a ``Path``."""
    from pathlib import Path

    if tight:
        fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
