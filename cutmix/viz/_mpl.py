"""A headless matplotlib, imported on first use."""

from __future__ import annotations


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt
