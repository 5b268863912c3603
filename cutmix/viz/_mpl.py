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


LINE_STYLES = ("-", "--", ":", "-.")


def group_styles(groups: dict[str, str]) -> dict[str, dict[str, str]]:
    """Plot styles for runs grouped by method: one colour per group, a line style per run within it.

    ``groups`` maps a run name to its group (e.g. the regulariser), so the seeds of one method read as one family
    of lines instead of eight unrelated colours.
    """
    colours: dict[str, int] = {}  # group -> colour index, in order of first appearance
    members: dict[str, int] = {}  # group -> runs styled so far
    styles = {}
    for run, group in groups.items():
        colour = colours.setdefault(group, len(colours))
        k = members[group] = members.get(group, 0) + 1
        styles[run] = {"color": f"C{colour % 10}", "linestyle": LINE_STYLES[(k - 1) % len(LINE_STYLES)]}
    return styles
