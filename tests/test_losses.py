"""SoftTargetCrossEntropy against torch's cross-entropy and the written-out soft-target formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as torch_f

import cutmix
from cutmix import functional as F


def _logits(n=6, k=5, seed=0, dtype=torch.float32):
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed)).to(dtype)


LABELS = torch.tensor([0, 4, 2, 2, 1, 3])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_one_hot_targets_equal_cross_entropy_of_hard_labels(reduction):
    logits = _logits()
    loss = cutmix.SoftTargetCrossEntropy(reduction=reduction)
    expected = torch_f.cross_entropy(logits, LABELS, reduction=reduction)
    assert torch.allclose(loss(logits, F.one_hot(LABELS, 5)), expected, atol=1e-6)
    assert torch.allclose(loss(logits, LABELS), expected, atol=1e-6)  # class indices are accepted as such


def test_soft_targets_formula():
    logits = _logits(dtype=torch.float64)
    targets = torch.softmax(_logits(seed=1, dtype=torch.float64), 1)
    expected = -(targets * torch.log_softmax(logits, 1)).sum(1)
    assert torch.allclose(cutmix.SoftTargetCrossEntropy(reduction="none")(logits, targets), expected, atol=1e-12)
    assert torch.allclose(cutmix.soft_target_cross_entropy(logits, targets), expected.mean(), atol=1e-12)


def test_mixed_targets_loss_is_the_mixture_of_losses():
    """For lam * y_a + (1 - lam) * y_b the loss is lam * CE(y_a) + (1 - lam) * CE(y_b) (the paper's mixed loss)."""
    logits = _logits(dtype=torch.float64)
    index = torch.tensor([1, 2, 3, 4, 5, 0])
    targets = F.mix_targets(LABELS, index, 0.3, num_classes=5, dtype=torch.float64)
    expected = 0.3 * torch_f.cross_entropy(logits, LABELS) + 0.7 * torch_f.cross_entropy(logits, LABELS[index])
    assert torch.allclose(cutmix.SoftTargetCrossEntropy()(logits, targets), expected, atol=1e-12)


def test_label_smoothing_matches_torch():
    logits = _logits()
    loss = cutmix.SoftTargetCrossEntropy(label_smoothing=0.1)(logits, LABELS)
    assert torch.allclose(loss, torch_f.cross_entropy(logits, LABELS, label_smoothing=0.1), atol=1e-6)
    smoothed = F.one_hot(LABELS, 5, label_smoothing=0.1)
    assert torch.allclose(cutmix.SoftTargetCrossEntropy()(logits, smoothed), loss, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_low_precision_logits_are_handled_in_float32(dtype):
    logits = _logits(n=4, k=1000, seed=2, dtype=dtype).requires_grad_()
    targets = F.mix_targets(torch.tensor([3, 999, 500, 0]), torch.tensor([1, 0, 3, 2]), 0.97, num_classes=1000)
    loss = cutmix.SoftTargetCrossEntropy()(logits, targets)
    assert loss.dtype == torch.float32
    expected = -(targets * torch.log_softmax(logits.detach().float(), 1)).sum(1).mean()
    assert torch.allclose(loss, expected, atol=1e-5, rtol=1e-5)
    loss.backward()
    assert logits.grad.dtype == dtype and bool(logits.grad.abs().sum() > 0)


def test_loss_gradient():
    logits = _logits(dtype=torch.float64).requires_grad_()
    targets = torch.softmax(_logits(seed=3, dtype=torch.float64), 1)
    cutmix.SoftTargetCrossEntropy(reduction="sum")(logits, targets).backward()
    assert torch.allclose(logits.grad, torch.softmax(logits.detach(), 1) - targets, atol=1e-12)


@pytest.mark.parametrize(
    ("logits", "targets", "error", "match"),
    [
        (torch.zeros(6), LABELS, ValueError, "logits"),
        (torch.zeros(6, 5), torch.zeros(6, 4), ValueError, "targets"),
        (torch.zeros(6, 5), torch.zeros(6, 5, dtype=torch.long), TypeError, "targets"),  # wrong kind: integer
        (torch.zeros(6, 5), torch.zeros(6), TypeError, "targets"),  # wrong kind: float class indices
        (torch.zeros(6, 5), torch.zeros(5, dtype=torch.long), ValueError, "targets"),
    ],
)
def test_bad_inputs(logits, targets, error, match):
    with pytest.raises(error, match=match):
        cutmix.SoftTargetCrossEntropy()(logits, targets)


def test_bad_options():
    with pytest.raises(ValueError, match="reduction"):
        cutmix.SoftTargetCrossEntropy(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        cutmix.SoftTargetCrossEntropy(label_smoothing=1.5)
    with pytest.raises(TypeError, match="targets"):
        cutmix.SoftTargetCrossEntropy()(torch.zeros(2, 3), [0, 1])
