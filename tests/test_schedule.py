"""Probability schedules (cutmix.schedule): exact values, clamping, validation."""

from __future__ import annotations

import pytest

from cutmix.schedule import Constant, Linear, as_schedule


def test_linear_values():
    ramp = Linear(0.0, 1.0, 10)
    assert [ramp(s) for s in range(11)] == pytest.approx([s / 10 for s in range(11)], abs=1e-15)
    assert ramp(0) == 0.0 and ramp(10) == 1.0 and ramp(5) == 0.5
    assert ramp(11) == 1.0 and ramp(10_000) == 1.0  # constant after the ramp
    assert ramp(-3) == 0.0  # clamped before it


def test_linear_general_and_decreasing():
    ramp = Linear(0.2, 0.8, 4)
    assert [ramp(s) for s in range(6)] == pytest.approx([0.2, 0.35, 0.5, 0.65, 0.8, 0.8], abs=1e-15)
    down = Linear(1.0, 0.0, 2)
    assert [down(s) for s in range(4)] == [1.0, 0.5, 0.0, 0.0]


def test_constant_and_as_schedule():
    assert all(Constant(0.3)(s) == 0.3 for s in (0, 1, 100))
    sched = as_schedule(0.7)
    assert sched(0) == 0.7 and sched(1000) == 0.7
    ramp = Linear(0.0, 1.0, 3)
    assert as_schedule(ramp) is ramp


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Linear(-0.1, 1.0, 10), ValueError, "start"),
        (lambda: Linear(0.0, 1.5, 10), ValueError, "end"),
        (lambda: Linear(0.0, 1.0, 0), ValueError, "total_steps"),
        (lambda: Linear(0.0, 1.0, 2.5), TypeError, "total_steps"),  # a float is the wrong kind of thing
        (lambda: Constant(2.0), ValueError, "value"),
        (lambda: as_schedule(1.5), ValueError, "prob"),
        (lambda: as_schedule(float("nan")), ValueError, "prob"),
        (lambda: as_schedule("0.5"), TypeError, "prob"),
    ],
)
def test_schedule_validation(build, error, match):
    with pytest.raises(error, match=match):
        build()
