"""The builtin shapes generator: reproducible, balanced, exact boxes, and colour that says nothing about the class."""

from __future__ import annotations

import pytest
import torch

from cutmix.data import MEAN_STD, SHAPES, ImageSet, load_shapes, open_dataset


@pytest.fixture(scope="module")
def small() -> tuple[ImageSet, torch.Tensor]:
    return load_shapes("train", num_samples=600, seed=3, return_masks=True)


def test_types_and_shapes(small: tuple[ImageSet, torch.Tensor]) -> None:
    data, masks = small
    assert isinstance(data, ImageSet)
    assert len(data) == 600
    assert data.images.shape == (600, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.images.is_contiguous()
    assert data.labels.shape == (600,) and data.labels.dtype == torch.int64
    assert data.boxes is not None and data.boxes.shape == (600, 4) and data.boxes.dtype == torch.int64
    assert masks.shape == (600, 32, 32) and masks.dtype == torch.bool
    assert data.classes == list(SHAPES) and len(set(SHAPES)) == 10
    assert data.name == "shapes" and data.skipped == 0
    assert "600 images" in repr(data)


def test_deterministic() -> None:
    a = load_shapes("train", num_samples=300, seed=7)
    b = load_shapes("train", num_samples=300, seed=7)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and torch.equal(a.boxes, b.boxes)


def test_seeds_and_splits_differ() -> None:
    base = load_shapes("train", num_samples=200, seed=0)
    other_seed = load_shapes("train", num_samples=200, seed=1)
    val = load_shapes("val", num_samples=200, seed=0)
    for other in (other_seed, val):
        assert not torch.equal(base.images, other.images)
        # not merely shifted: no image of one set appears in the other
        flat_a, flat_b = base.images.flatten(1), other.images.flatten(1)
        assert not (flat_a[:, None] == flat_b[None]).all(dim=2).any()
    assert torch.equal(load_shapes("test", num_samples=50).images, load_shapes("val", num_samples=50).images)


def test_default_sizes() -> None:
    assert len(load_shapes("val")) == 2000
    assert len(open_dataset("shapes", "val", num_samples=40)) == 40


@pytest.mark.parametrize(("n", "k"), [(1003, 10), (101, 4), (7, 3)])
def test_classes_are_balanced(n: int, k: int) -> None:
    data = load_shapes(num_samples=n, num_classes=k)
    counts = torch.bincount(data.labels, minlength=k)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert data.classes == list(SHAPES[:k])
    assert len(data.labels.unique()) == min(n, k)
    assert not torch.equal(data.labels, data.labels.sort().values)  # shuffled, not in class blocks


def test_boxes_are_tight_around_the_object_mask(small: tuple[ImageSet, torch.Tensor]) -> None:
    data, masks = small
    size = data.images.shape[-1]
    for i in range(len(data)):
        ys, xs = masks[i].nonzero(as_tuple=True)
        assert len(ys) > 0
        expected = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        assert data.boxes[i].tolist() == expected
    x0, y0, x1, y1 = data.boxes.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= size).all() and (y1 <= size).all()
    assert (x1 > x0).all() and (y1 > y0).all()
    # the object spans roughly 30-70 % of the side (its bounding circle does exactly; the shape fills part of it)
    extent = torch.maximum(x1 - x0, y1 - y0).float() / size
    assert extent.max() <= 0.75 and extent.min() >= 0.15
    assert extent.mean() > 0.35


def test_other_sizes() -> None:
    data, masks = load_shapes(num_samples=60, size=64, num_classes=5, return_masks=True)
    assert data.images.shape == (60, 3, 64, 64) and masks.shape == (60, 64, 64)
    assert data.name == "shapes5"
    assert (data.boxes[:, 2:] <= 64).all()
    assert (data.boxes[:, 2] - data.boxes[:, 0]).float().mean() > 0.3 * 64 * 0.6


def test_colour_carries_no_class_information() -> None:
    """Mean object colour per class agrees across classes: only the shape tells them apart."""
    data, masks = load_shapes(num_samples=4000, seed=11, return_masks=True)
    pixels = data.images.float() / 255
    weight = masks[:, None].float()
    per_image = (pixels * weight).sum((2, 3)) / weight.sum((2, 3))  # [N, 3] mean object colour
    per_class = torch.stack([per_image[data.labels == c].mean(0) for c in range(10)])
    assert (per_class - per_image.mean(0)).abs().max() < 0.07
    background = (pixels * (1 - weight)).sum((2, 3)) / (1 - weight).sum((2, 3))
    per_class_bg = torch.stack([background[data.labels == c].mean(0) for c in range(10)])
    assert (per_class_bg - background.mean(0)).abs().max() < 0.07


def test_objects_contrast_with_the_background() -> None:
    data, masks = load_shapes(num_samples=300, seed=5, return_masks=True)
    luma = (data.images.float() / 255 * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1)
    inside = (luma * masks).sum((1, 2)) / masks.sum((1, 2))
    outside = (luma * ~masks).sum((1, 2)) / (~masks).sum((1, 2))
    assert ((inside - outside).abs() > 0.2).float().mean() > 0.9


def test_mean_std_constant_matches_the_generator() -> None:
    x = load_shapes("train").images.double() / 255
    mean, std = MEAN_STD["shapes"]
    assert torch.allclose(x.mean((0, 2, 3)), torch.tensor(mean, dtype=torch.float64), atol=0.01)
    assert torch.allclose(x.std((0, 2, 3)), torch.tensor(std, dtype=torch.float64), atol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"split": "dev"}, ValueError),
        ({"num_classes": 11}, ValueError),
        ({"num_classes": 0}, ValueError),
        ({"size": 4}, ValueError),
        ({"size": 32.0}, TypeError),
        ({"num_samples": 0}, ValueError),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_shapes(**kwargs)
