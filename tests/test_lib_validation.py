"""What the library's validation lets through: valid inputs near the limits keep working, eval is the identity.

The bad-input side is the catalogue in ``test_lib_bad_inputs.py``; these tests pin that its checks do not reject
what a real pipeline passes (bf16 soft labels, a previous mix's targets, a uint8 fill of 255, an eval batch of 1).
"""

from __future__ import annotations

import pytest
import torch

import cutmix
from cutmix import functional as F

TRANSFORMS = {"CutMix": cutmix.CutMix, "MixUp": cutmix.MixUp, "Cutout": cutmix.Cutout}


def _images(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    x = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(n))
    return (x * 255).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_eval_is_the_identity_for_a_batch_of_one(name):
    mix = TRANSFORMS[name](10, label_smoothing=0.1).eval()
    x = _images(1)
    out, targets = mix(x, torch.tensor([3]))
    expected = torch.full((1, 10), 0.01)
    expected[0, 3] = 0.91
    assert out is x and torch.allclose(targets, expected, atol=1e-7)
    with pytest.raises(ValueError, match="batch of 1"):  # training still needs a partner
        mix.train()(x, torch.tensor([3]))


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_a_previous_mix_feeds_the_next(name):
    x, y = _images(8), torch.arange(8) % 10
    mixed, soft = cutmix.CutMix(10, generator=torch.Generator().manual_seed(0))(x, y)
    _, targets = TRANSFORMS[name](10, generator=torch.Generator().manual_seed(1))(mixed, soft)
    assert torch.allclose(targets.sum(1), torch.ones(8), atol=1e-6) and bool((targets >= 0).all())
    if name == "Cutout":  # Cutout keeps the labels it is given
        assert torch.equal(targets, soft)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
def test_low_precision_soft_labels_pass_the_sum_check(dtype):
    # 1/K rounded to bf16 sums to 1 only within bf16's epsilon: the tolerance follows the dtype.
    soft = torch.full((4, 7), 1 / 7, dtype=dtype)
    _, targets = cutmix.MixUp(7, generator=torch.Generator().manual_seed(0))(_images(4), soft)
    assert torch.allclose(targets.sum(1), soft.double().sum(1).float(), atol=1e-6)


def test_soft_labels_slightly_off_are_accepted_and_far_off_rejected():
    x = _images(4)
    soft = torch.full((4, 10), 0.1)
    soft[0, 0] += 5e-4  # within 1e-3
    cutmix.CutMix(10)(x, soft)
    soft[0, 0] += 1e-3
    with pytest.raises(ValueError, match=r"labels must have rows that sum to 1"):
        cutmix.CutMix(10)(x, soft)


@pytest.mark.parametrize("value", [0, 255, 128.0])
def test_uint8_fill_values_that_fit_are_written_exactly(value):
    out = F.erase(_images(2, torch.uint8), torch.tensor([1, 2, 5, 6]), value=value)
    assert bool((out[:, :, 2:6, 1:5] == int(value)).all())


def test_cutout_checks_its_value_against_each_batch():
    mix = cutmix.Cutout(10, size=4, value=0.5)
    mix(_images(4), torch.arange(4))  # fine for float images
    with pytest.raises(ValueError, match="value must be a whole number in"):
        mix(_images(4, torch.uint8), torch.arange(4))
    with pytest.raises(ValueError, match="overflows"):
        F.erase(_images(2, torch.float16), torch.tensor([0, 0, 2, 2]), value=1e6)


def test_functional_targets_are_floating_and_sum_to_one():
    x, y, idx = _images(4), torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 0])
    _, t = F.cutmix(x, y, boxes=torch.tensor([0, 0, 4, 4]), index=idx, num_classes=4, target_dtype=torch.float64)
    assert t.dtype == torch.float64 and torch.allclose(t[0], torch.tensor([0.75, 0.25, 0, 0], dtype=torch.float64))
    with pytest.raises(TypeError, match="target_dtype must be a floating"):
        F.mixup(x, y, lam=0.5, index=idx, num_classes=4, target_dtype=torch.int64)


def test_sampled_sizes_keep_working_at_one_pixel():
    boxes = cutmix.boxes.sample_boxes(5, 1, 1, generator=torch.Generator().manual_seed(0))
    assert bool((boxes[:, 2:] <= 1).all()) and bool((boxes >= 0).all())
    assert cutmix.boxes.sample_box(1, 1, generator=torch.Generator().manual_seed(0)) in {(0, 0, 0, 0), (0, 0, 1, 1)}


@pytest.mark.parametrize(("value", "none_ok", "error", "match"), [
    (0, False, ValueError, r"^size must be >= 1, got 0$"),
    (-3, True, ValueError, r"^size must be >= 1, got -3$"),
    (2.0, False, TypeError, r"^size must be an int >= 1, got float$"),
    (True, False, TypeError, r"^size must be an int >= 1, got bool$"),
    (None, False, TypeError, r"^size must be an int >= 1, got NoneType$"),
    ("3", True, TypeError, r"^size must be an int >= 1 or None, got str$"),
])
def test_check_positive_int_names_the_argument_and_the_expectation(value, none_ok, error, match):
    from cutmix._checks import check_positive_int

    with pytest.raises(error, match=match):
        check_positive_int(value, "size", none_ok=none_ok)


def test_check_positive_int_passes_counts_and_none_when_allowed():
    from cutmix._checks import check_positive_int

    assert check_positive_int(1, "n") == 1 and check_positive_int(None, "n", none_ok=True) is None
