"""Figures: training curves, mixed-batch grids (and, with the evaluation suite, CAM overlays and robustness curves).

matplotlib is imported lazily with the non-interactive Agg backend, so figures render on headless machines.
"""
