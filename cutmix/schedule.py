"""Probability schedules for the mixing transforms ("Scheduled CutMix" in the paper's ablation).

A schedule is any callable ``step -> probability``; the transforms call it with the number of training batches
they have mixed so far. Out-of-range steps clamp to the end values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cutmix._checks import check_int, check_probability

Schedule = Callable[[int], float]


@dataclass(frozen=True)
class Constant:
    """The same probability at every step."""

    value: float

    def __post_init__(self) -> None:
        check_probability(self.value, "value")

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class Linear:
    """A linear ramp from ``start`` at step 0 to ``end`` at ``total_steps``, constant afterwards.

    ``Linear(0.0, 1.0, total_steps)`` is the paper's Scheduled CutMix: the chance to mix grows from 0 to 1 over
    training.
    """

    start: float
    end: float
    total_steps: int

    def __post_init__(self) -> None:
        check_probability(self.start, "start")
        check_probability(self.end, "end")
        check_int(self.total_steps, "total_steps")

    def __call__(self, step: int) -> float:
        t = min(max(step, 0), self.total_steps) / self.total_steps
        return self.start + (self.end - self.start) * t


def as_schedule(prob: float | Schedule, name: str = "prob") -> Schedule:
    """A float becomes :class:`Constant`; a callable is kept (its values are checked when used)."""
    if callable(prob):
        return prob
    return Constant(check_probability(prob, name))
