"""Every bad input raises the documented error type, with a message that names the argument."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cutmix
from cutmix import functional as F

TRANSFORM_CLASSES = [cutmix.CutMix, cutmix.MixUp, cutmix.Cutout]
IMAGES = torch.rand(4, 3, 8, 8)
LABELS = torch.tensor([0, 1, 2, 3])


# -- bad calls of a transform ------------------------------------------------------------------------------------------
CALL_CASES = [
    pytest.param(torch.rand(3, 8, 8), LABELS, ValueError, r"images.*4 dimensions", id="rank-3 images"),
    pytest.param(torch.rand(1, 4, 3, 8, 8), LABELS, ValueError, r"images.*4 dimensions", id="rank-5 images"),
    pytest.param(torch.zeros(4, 3, 8, 8, dtype=torch.int32), LABELS, TypeError, r"images.*uint8", id="int32 images"),
    pytest.param(torch.zeros(4, 3, 8, 8, dtype=torch.bool), LABELS, TypeError, r"images", id="bool images"),
    pytest.param(IMAGES.numpy(), LABELS, TypeError, r"images", id="numpy images"),
    pytest.param(torch.rand(0, 3, 8, 8), torch.zeros(0, dtype=torch.long), ValueError, r"images.*empty",
                 id="empty batch"),
    pytest.param(torch.rand(1, 3, 8, 8), torch.tensor([0]), ValueError, r"images.*batch of 1", id="batch of one"),
    pytest.param(torch.rand(4, 3, 0, 8), LABELS, ValueError, r"images.*empty", id="empty image"),
    pytest.param(IMAGES, LABELS.float(), TypeError, r"labels.*integer", id="float labels [N]"),
    pytest.param(IMAGES, LABELS.bool(), TypeError, r"labels", id="bool labels"),
    pytest.param(IMAGES, LABELS.tolist(), TypeError, r"labels", id="list labels"),
    pytest.param(IMAGES, torch.tensor([0, 1, 2, 10]), ValueError, r"labels.*\[0, 9\]", id="label too large"),
    pytest.param(IMAGES, torch.tensor([0, -1, 2, 3]), ValueError, r"labels.*\[0, 9\]", id="negative label"),
    pytest.param(IMAGES, torch.tensor([0, 1, 2]), ValueError, r"labels.*3 entries.*4 images", id="short labels"),
    pytest.param(IMAGES, torch.zeros(5, 10), ValueError, r"labels.*5 rows.*4 images", id="soft labels, wrong rows"),
    pytest.param(IMAGES, torch.zeros(4, 7), ValueError, r"labels.*num_classes=10", id="soft labels, wrong width"),
    pytest.param(IMAGES, torch.zeros(4, 10, dtype=torch.long), TypeError, r"labels.*floating",
                 id="integer soft labels"),
    pytest.param(IMAGES, torch.zeros(4, 10, 1), ValueError, r"labels", id="rank-3 labels"),
]


@pytest.mark.parametrize("cls", TRANSFORM_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("images", "labels", "error", "match"), CALL_CASES)
def test_bad_call_raises(cls, images, labels, error, match):
    with pytest.raises(error, match=match):
        cls(10)(images, labels)


@pytest.mark.parametrize("cls", TRANSFORM_CLASSES, ids=lambda c: c.__name__)
def test_num_classes_required_for_class_indices(cls):
    with pytest.raises(ValueError, match="num_classes"):
        cls()(IMAGES, LABELS)
    # soft labels carry their own width
    _, targets = cls()(IMAGES, torch.full((4, 6), 1 / 6))
    assert targets.shape == (4, 6)


@pytest.mark.parametrize("cls", TRANSFORM_CLASSES, ids=lambda c: c.__name__)
def test_bad_call_arity(cls):
    with pytest.raises(TypeError, match="mix"):
        cls(10)(IMAGES)
    with pytest.raises(TypeError, match="mix"):
        cls(10)(IMAGES, LABELS, LABELS)


# -- bad constructor arguments ----------------------------------------------------------------------------------------
COMMON_KWARGS = [
    pytest.param({"num_classes": 0}, ValueError, "num_classes", id="num_classes=0"),
    pytest.param({"num_classes": 2.5}, TypeError, "num_classes", id="num_classes float"),
    pytest.param({"num_classes": True}, TypeError, "num_classes", id="num_classes bool"),
    pytest.param({"prob": -0.1}, ValueError, r"prob.*\[0, 1\]", id="prob<0"),
    pytest.param({"prob": 1.5}, ValueError, r"prob.*\[0, 1\]", id="prob>1"),
    pytest.param({"prob": float("nan")}, ValueError, "prob", id="prob nan"),
    pytest.param({"prob": "high"}, TypeError, "prob", id="prob str"),
    pytest.param({"label_smoothing": 1.5}, ValueError, "label_smoothing", id="smoothing>1"),
    pytest.param({"label_smoothing": -0.1}, ValueError, "label_smoothing", id="smoothing<0"),
    pytest.param({"generator": 0}, TypeError, "generator", id="generator int"),
    pytest.param({"target_dtype": torch.int64}, TypeError, "target_dtype", id="target_dtype int"),
    pytest.param({"target_dtype": "float32"}, TypeError, "target_dtype", id="target_dtype str"),
]


@pytest.mark.parametrize("cls", TRANSFORM_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("kwargs", "error", "match"), COMMON_KWARGS)
def test_bad_constructor_argument(cls, kwargs, error, match):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(error, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [cutmix.CutMix, cutmix.MixUp], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("alpha", "error"),
    [(0.0, ValueError), (-1.0, ValueError), (float("inf"), ValueError), (float("nan"), ValueError),
     ("1", TypeError), (None, TypeError)],
)
def test_bad_alpha(cls, alpha, error):
    with pytest.raises(error, match="alpha"):
        cls(10, alpha=alpha)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"box": "square"}, "box"),
        ({"label": "soft"}, "label"),
        ({"placement": "wrap"}, "placement"),
        ({"sigma": -0.5}, "sigma"),
        ({"size": 1.5}, "size"),
        ({"size": -0.1}, "size"),
    ],
)
def test_bad_cutmix_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cutmix.CutMix(10, **kwargs)


def test_bad_mixup_and_cutout_options():
    with pytest.raises(ValueError, match="label"):
        cutmix.MixUp(10, label="hard")
    with pytest.raises(ValueError, match="placement"):
        cutmix.Cutout(10, placement="everywhere")
    with pytest.raises(ValueError, match="size"):
        cutmix.Cutout(10, size=-1)
    with pytest.raises((TypeError, ValueError), match="size"):
        cutmix.Cutout(10, size=2.5)


def test_schedule_out_of_range_at_call_time():
    mix = cutmix.CutMix(10, prob=lambda step: 1.5)
    with pytest.raises(ValueError, match="prob"):
        mix(IMAGES, LABELS)


# -- RandomChoice ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("transforms", "p", "error", "match"),
    [
        ([cutmix.CutMix(10), cutmix.MixUp(10)], [0.5, 0.6], ValueError, "p must sum to 1"),
        ([cutmix.CutMix(10), cutmix.MixUp(10)], [0.2, 0.2], ValueError, "p must sum to 1"),
        ([cutmix.CutMix(10), cutmix.MixUp(10)], [1.0], ValueError, "p must have one probability per transform"),
        ([cutmix.CutMix(10), cutmix.MixUp(10)], [1.5, -0.5], ValueError, r"p\[0\]"),
        ([], None, ValueError, "transforms"),
        ([cutmix.CutMix(10), 3], None, TypeError, r"transforms\[1\]"),
    ],
)
def test_random_choice_errors(transforms, p, error, match):
    with pytest.raises(error, match=match):
        cutmix.RandomChoice(transforms, p=p)


# -- the functional ops --------------------------------------------------------------------------------------------
INDEX = torch.tensor([1, 2, 3, 0])
BOX = torch.tensor([0, 0, 4, 4])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        pytest.param(lambda: F.paste(IMAGES, BOX, INDEX.float()), TypeError, "index", id="float index"),
        pytest.param(lambda: F.paste(IMAGES, BOX, torch.tensor([1, 2, 3, 4])), ValueError, "index",
                     id="index out of range"),
        pytest.param(lambda: F.paste(IMAGES, BOX, torch.tensor([1, 2, 3])), ValueError, "index", id="short index"),
        pytest.param(lambda: F.paste(IMAGES, BOX, [1, 2, 3, 0]), TypeError, "index", id="list index"),
        pytest.param(lambda: F.paste(IMAGES, BOX.float(), INDEX), TypeError, "boxes", id="float boxes"),
        pytest.param(lambda: F.paste(IMAGES, torch.tensor([0, 0, 9, 4]), INDEX), ValueError, "boxes",
                     id="box outside"),
        pytest.param(lambda: F.paste(IMAGES, torch.tensor([[0, 0, 4, 4]] * 3), INDEX), ValueError, "boxes",
                     id="boxes wrong count"),
        pytest.param(lambda: F.paste(IMAGES, torch.tensor([4, 0, 0, 4]), INDEX), ValueError, "boxes",
                     id="box x1<x0"),
        pytest.param(lambda: F.paste(torch.rand(4, 8, 8), BOX, INDEX), ValueError, "images", id="paste rank"),
        pytest.param(lambda: F.erase(IMAGES.int(), BOX), TypeError, "images", id="erase int32"),
        pytest.param(lambda: F.blend(IMAGES, torch.tensor([0.5, 0.5]), INDEX), ValueError, "lam", id="lam shape"),
        pytest.param(lambda: F.blend(IMAGES, 1.5, INDEX), ValueError, "lam", id="lam > 1"),
        pytest.param(lambda: F.mix_targets(LABELS, INDEX, 0.5), ValueError, "num_classes", id="targets no K"),
        pytest.param(lambda: F.mix_targets(LABELS, INDEX, 0.5, num_classes=3), ValueError, "labels",
                     id="targets label range"),
        pytest.param(lambda: F.mix_targets(LABELS, INDEX, 0.5, num_classes=4, label="max"), ValueError, "label",
                     id="targets bad label mode"),
        pytest.param(lambda: F.mix_targets(LABELS, INDEX, 0.5, num_classes=4, label_smoothing=2.0), ValueError,
                     "label_smoothing", id="targets smoothing"),
        pytest.param(lambda: F.cutmix(IMAGES, torch.tensor([0, 1, 2]), boxes=BOX, index=INDEX, num_classes=4),
                     ValueError, "labels", id="cutmix short labels"),
        pytest.param(lambda: F.cutmix(IMAGES, LABELS.float(), boxes=BOX, index=INDEX, num_classes=4), TypeError,
                     "labels", id="cutmix float labels"),
        pytest.param(lambda: F.cutmix(IMAGES, torch.zeros(4, 3), boxes=BOX, index=INDEX, num_classes=4), ValueError,
                     "labels", id="cutmix soft width"),
        pytest.param(lambda: F.mixup(IMAGES, LABELS, lam=0.5, index=INDEX), ValueError, "num_classes",
                     id="mixup no K"),
        pytest.param(lambda: F.cutout(IMAGES, LABELS, boxes=BOX, num_classes=2), ValueError, "labels",
                     id="cutout label range"),
        pytest.param(lambda: F.cutmix(torch.rand(0, 3, 8, 8), torch.zeros(0, dtype=torch.long), boxes=BOX,
                                      index=torch.zeros(0, dtype=torch.long), num_classes=4), ValueError, "images",
                     id="cutmix empty"),
    ],
)
def test_functional_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_feature_mix_bad_layer_name_is_named():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Flatten())
    with pytest.raises(ValueError, match="'conv9'"):
        cutmix.FeatureCutMix(model, "conv9", num_classes=3)
