"""The C box arithmetic of ``fused=True`` (``cutmix/_native/boxes.c``): on the same draws it gives the torch ops'
boxes and label weights bit for bit, for every kind, placement and rounding, ties and borders included, and a
fused CutMix draws through it, or through torch where the library cannot be built."""

from __future__ import annotations

import itertools

import pytest
import torch
from _helpers import needs_cc

from cutmix import CutMix, _native
from cutmix._choices import BOX_KINDS, PLACEMENTS, ROUNDINGS
from cutmix.boxes import box_draws, box_lambda, boxes_from_draws

SIZES = [(32, 32), (7, 13), (1, 1), (2, 3), (224, 160), (3000, 4000)]


def _torch(lam, u, selected, h, w, **box):
    boxes = boxes_from_draws(lam, u, h, w, **box).masked_fill_(~selected[:, None], 0)
    return boxes, box_lambda(boxes, h, w)


def _assert_same(native, expected, case):
    (boxes, lam), (want_boxes, want_lam) = native, expected
    assert boxes.dtype == torch.int64 and lam.dtype == torch.float64, case
    assert torch.equal(boxes, want_boxes), case
    assert torch.equal(lam.view(torch.int64), want_lam.view(torch.int64)), case  # the bits, not just the values


@needs_cc
@pytest.mark.parametrize("kind, placement, rounding", list(itertools.product(BOX_KINDS, PLACEMENTS, ROUNDINGS)))
def test_seeded_draws_give_the_torch_boxes_and_weights(kind, placement, rounding):
    box = {"kind": kind, "placement": placement, "sigma": 0.4, "size": 0.37, "rounding": rounding}
    g = torch.Generator().manual_seed(0)
    for (h, w), alpha in itertools.product(SIZES, (0.2, 1.0, 3.0)):
        n = 50
        lam, u = box_draws(n, kind, alpha, g)
        selected = torch.rand(n, generator=g) < 0.8
        _assert_same(_native.boxes_from_draws(lam, u, selected, h, w, **box), _torch(lam, u, selected, h, w, **box),
                     (h, w, alpha))


@needs_cc
@pytest.mark.parametrize("kind, placement, rounding", list(itertools.product(BOX_KINDS, PLACEMENTS, ROUNDINGS)))
def test_ties_and_extreme_draws_give_the_torch_boxes_and_weights(kind, placement, rounding):
    """lam 0.75 makes a side of 5 or 7 pixels land on x.5 and a Gaussian centre on an even side lands on x.5 at
    z = 0: torch rounds ties to even (2.5 -> 2), which C's ``round`` would not. u at 0 and just below 1; z far out."""
    box = {"kind": kind, "placement": placement, "sigma": 0.25, "size": 0.5, "rounding": rounding}
    lams = torch.tensor([0.0, 1.0, 0.75, 0.75, 0.5, 1 - 2 ** -52, 2 ** -53], dtype=torch.float64)
    first = torch.tensor([0.0, 0.5, 1 - 2 ** -53, -40.0, 40.0, 0.0, -0.5], dtype=torch.float64)
    u = torch.stack([first, first.flip(0)], 1)
    if kind != "gaussian":
        u = u.clamp(0.0, 1 - 2 ** -53)  # uniforms lie in [0, 1)
    for h, w in [(5, 7), (4, 6), (7, 5), (1, 2), (6, 4)]:
        lam = None if kind == "fixed" else lams
        selected = torch.tensor([True] * 6 + [False])
        _assert_same(_native.boxes_from_draws(lam, u, selected, h, w, **box), _torch(lam, u, selected, h, w, **box),
                     (h, w))


@needs_cc
def test_a_fused_cutmix_draws_through_the_kernel_as_the_default_draws(monkeypatch):
    calls = []
    real = _native.boxes_from_draws
    monkeypatch.setattr(_native, "boxes_from_draws", lambda *a, **k: calls.append(1) or real(*a, **k))
    for box, placement in [("uniform", "clip"), ("gaussian", "inside"), ("fixed", "clip")]:
        fused, default = (CutMix(10, per_sample=True, box=box, placement=placement, prob=0.6, fused=fused,
                                 generator=torch.Generator().manual_seed(5)) for fused in (True, False))
        for h, w in [(32, 32), (9, 17)]:
            (index, selected), (want_index, want_selected) = fused.draw(16), default.draw(16)
            assert torch.equal(index, want_index) and torch.equal(selected, want_selected)
            _assert_same(fused.sample(16, h, w, selected), default.sample(16, h, w, selected), (box, h, w))
            assert torch.equal(fused.generator.get_state(), default.generator.get_state()), "the same draws"
    assert len(calls) == 6


def test_without_the_library_the_draws_run_in_torch(monkeypatch, tmp_path):
    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path))
    monkeypatch.setattr(_native, "_library", None)
    monkeypatch.setattr(_native, "_failed", False)
    monkeypatch.setattr(_native, "compiler", lambda: "/bin/false")
    fused, default = (CutMix(10, per_sample=True, fused=fused, generator=torch.Generator().manual_seed(6))
                      for fused in (True, False))
    selected = torch.tensor([True, False, True, True])
    with pytest.warns(RuntimeWarning, match=r"the CPU kernel could not be built \(RuntimeError: /bin/false exited "
                      r"with 1\); per-sample CutMix runs the eager op on a CPU, and its draws' box arithmetic in "
                      r"torch ops, from now on \(same result, slower\)"):
        got = fused.sample(4, 12, 10, selected)
    _assert_same(got, default.sample(4, 12, 10, selected), "fallback")
    assert torch.equal(fused.generator.get_state(), default.generator.get_state())


@needs_cc
def test_draws_of_the_wrong_shape_or_type_are_refused_before_the_kernel_reads_them():
    lam, u, selected = torch.rand(4, dtype=torch.float64), torch.rand(4, 2, dtype=torch.float64), torch.ones(4).bool()
    box = {"kind": "uniform", "placement": "clip", "sigma": 0.25, "size": 0.5, "rounding": "exact"}
    for bad in ((lam[:3], u, selected), (lam, u, selected[:3]), (lam, u.float(), selected), (lam, u, selected.int()),
                (lam, u[:, :1], selected), (lam.float(), u, selected)):
        with pytest.raises(ValueError, match=r"expected CPU draws lam \[n\] and u \[n, 2\] float64"):
            _native.boxes_from_draws(*bad, 8, 8, **box)
