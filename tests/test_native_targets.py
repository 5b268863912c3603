"""The C targets of ``fused=True`` (``cutmix/_native/targets.c``): for class-index labels on a CPU they are the torch
ops' targets bit for bit, in every label mode and target dtype, same-class pairs and self-partners included; a fused
CutMix uses them, and the torch ops where they do not apply or the library cannot be built."""

from __future__ import annotations

import itertools

import pytest
import torch
from _helpers import needs_cc

from cutmix import CutMix, _native, _ops
from cutmix.functional import LABEL_MODES

BITS = {torch.float32: torch.int32, torch.float64: torch.int64}


def _assert_bits(got, want, case):
    assert got.dtype == want.dtype and got.shape == want.shape, case
    assert torch.equal(got.view(BITS[got.dtype]), want.view(BITS[want.dtype])), case


@needs_cc
@pytest.mark.parametrize("label, dtype", list(itertools.product(LABEL_MODES, BITS)))
def test_seeded_targets_are_the_torch_targets_bit_for_bit(label, dtype):
    g = torch.Generator().manual_seed(3)
    for n, k in [(2, 1), (7, 2), (64, 10), (33, 1000)]:  # one or two classes: most pairs share a class
        labels = torch.randint(0, k, (n,), generator=g)
        index = torch.randperm(n, generator=g)
        index[0] = 0  # a sample paired with itself
        lam = torch.rand(n, generator=g, dtype=torch.float64)
        ends = torch.tensor([0.0, 1.0, 0.5, 1e-300, 1 - 2 ** -53, 1 / 3], dtype=torch.float64)[: n - 1]
        lam[1 : 1 + len(ends)] = ends  # the weights' ends, a tie, and one that float32 rounds
        want = _ops.mix_targets(labels, index, lam, k, label, 0.0, dtype)
        _assert_bits(_native.mix_targets(labels, index, _ops.label_weights(lam, label), k, dtype), want, (n, k))


@needs_cc
def test_a_fused_cutmix_mixes_its_targets_in_c_as_the_default_does(monkeypatch):
    calls = []
    real = _native.mix_targets
    monkeypatch.setattr(_native, "mix_targets", lambda *a, **k: calls.append(1) or real(*a, **k))
    images = torch.rand(12, 3, 9, 11)
    labels = torch.randint(0, 5, (12,), generator=torch.Generator().manual_seed(0))
    cases = [("area", 0.0, torch.float32), ("complete", 0.1, torch.float64), ("onehot", 0.0, torch.bfloat16)]
    for label, smoothing, dtype in cases:
        fused, default = (CutMix(5, per_sample=True, label=label, label_smoothing=smoothing, target_dtype=dtype,
                                 fused=fused, generator=torch.Generator().manual_seed(4)) for fused in (True, False))
        for labels_in in (labels, labels.int(), torch.eye(5)[labels]):  # int64, int32, soft labels
            (got_images, got), (want_images, want) = fused(images, labels_in), default(images, labels_in)
            assert torch.equal(got_images, want_images)
            assert got.dtype == want.dtype == dtype and torch.equal(got.float().view(torch.int32),
                                                                    want.float().view(torch.int32)), (label, dtype)
    assert len(calls) == 4  # class indices into float32 or float64; soft labels and bfloat16 run the torch ops


def test_without_the_library_fused_targets_run_in_torch(monkeypatch):
    monkeypatch.setattr(_native, "_failed", True)  # as after a failed build (its warning is tested with the boxes)
    assert _native.mix_targets(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.rand(2).double(), 2,
                               torch.float32) is None
    fused, default = (CutMix(3, per_sample=True, fused=fused, generator=torch.Generator().manual_seed(1))
                      for fused in (True, False))
    labels = torch.tensor([0, 2, 1, 1])
    _assert_bits(fused(torch.rand(4, 1, 6, 6), labels)[1], default(torch.rand(4, 1, 6, 6), labels)[1], "fallback")


@needs_cc
def test_labels_and_partners_out_of_range_or_of_the_wrong_shape_are_refused_before_any_write():
    w = torch.full((3,), 0.5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^sample 1: label 4 or partner 0 is out of range for 4 classes and a batch "
                       r"of 3$"):
        _native.mix_targets(torch.tensor([0, 4, 1]), torch.tensor([2, 0, 1]), w, 4, torch.float32)
    with pytest.raises(ValueError, match=r"^sample 2: label 1 or partner 3 is out of range"):
        _native.mix_targets(torch.tensor([0, 3, 1]), torch.tensor([2, 0, 3]), w, 4, torch.float32)
    for bad in ((torch.tensor([0, 1]), torch.tensor([2, 0, 1]), w, torch.float32),
                (torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1]), w.float(), torch.float32),
                (torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1]), w, torch.bfloat16),
                (torch.tensor([[0, 1, 1]]), torch.tensor([2, 0, 1]), w, torch.float32)):
        with pytest.raises(ValueError, match=r"expected CPU labels, partners and float64 weights of shape \[n\]"):
            _native.mix_targets(bad[0], bad[1], bad[2], 4, bad[3])
