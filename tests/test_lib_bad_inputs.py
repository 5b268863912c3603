"""The bad-input catalogue: every public function and transform argument of the library, given a wrong value.

Each case is a call, the exception type it must raise and the argument name the message must contain, so that a
user's mistake is fixed from the message. ``python tests/test_lib_bad_inputs.py`` prints how the current code
fares (clear error / silent result / obscure crash) without failing, which is how the counts in the issue are
measured. Other devices are stood in for by the ``meta`` device, which every build of torch has.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import cutmix
from cutmix import boxes as B
from cutmix import functional as F
from cutmix import sampling, schedule

K = 10
X = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
XU8 = (X * 255).to(torch.uint8)
Y = torch.tensor([0, 1, 2, 3])
SOFT = torch.full((4, K), 1.0 / K)
IDX = torch.tensor([1, 2, 3, 0])
BOX = torch.tensor([0, 0, 4, 4])
BOXES = torch.tensor([[0, 0, 4, 4], [1, 1, 5, 5], [2, 2, 8, 8], [0, 0, 0, 0]])
META = torch.device("meta")


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[], object]
    error: type[Exception]
    name: str  # the argument the message must name


CASES: list[Case] = []


def case(id: str, call: Callable[[], object], error: type[Exception], name: str) -> None:
    CASES.append(Case(id, call, error, name))


def _soft(fill: float) -> torch.Tensor:
    """Valid soft labels with one entry replaced by ``fill``."""
    t = SOFT.clone()
    t[1, 0] = fill
    return t


# -- transform constructors (the three batch transforms share these arguments) ----------------------------------------
CLASSES = {"CutMix": cutmix.CutMix, "MixUp": cutmix.MixUp, "Cutout": cutmix.Cutout}
COMMON = [
    ("num_classes=0", {"num_classes": 0}, ValueError, "num_classes"),
    ("num_classes=-3", {"num_classes": -3}, ValueError, "num_classes"),
    ("num_classes float", {"num_classes": 2.5}, TypeError, "num_classes"),
    ("num_classes bool", {"num_classes": True}, TypeError, "num_classes"),
    ("num_classes str", {"num_classes": "10"}, TypeError, "num_classes"),
    ("prob<0", {"prob": -0.1}, ValueError, "prob"),
    ("prob>1", {"prob": 1.5}, ValueError, "prob"),
    ("prob nan", {"prob": float("nan")}, ValueError, "prob"),
    ("prob str", {"prob": "high"}, TypeError, "prob"),
    ("per_sample str", {"per_sample": "no"}, TypeError, "per_sample"),
    ("label_smoothing>1", {"label_smoothing": 1.5}, ValueError, "label_smoothing"),
    ("label_smoothing<0", {"label_smoothing": -0.1}, ValueError, "label_smoothing"),
    ("label_smoothing str", {"label_smoothing": "0.1"}, TypeError, "label_smoothing"),
    ("generator int", {"generator": 3}, TypeError, "generator"),
    ("generator str", {"generator": "cpu"}, TypeError, "generator"),
    ("inplace str", {"inplace": "no"}, TypeError, "inplace"),
    ("target_dtype int64", {"target_dtype": torch.int64}, TypeError, "target_dtype"),
    ("target_dtype bool", {"target_dtype": torch.bool}, TypeError, "target_dtype"),
    ("target_dtype str", {"target_dtype": "float32"}, TypeError, "target_dtype"),
]
for cls_name, cls in CLASSES.items():
    for cid, kwargs, error, name in COMMON:
        case(f"{cls_name}({cid})", functools.partial(cls, **{"num_classes": K, **kwargs}), error, name)

for cls_name in ("CutMix", "MixUp"):
    cls = CLASSES[cls_name]
    for cid, alpha, error in [("0", 0.0, ValueError), ("-1", -1.0, ValueError), ("inf", float("inf"), ValueError),
                              ("nan", float("nan"), ValueError), ("str", "1", TypeError), ("None", None, TypeError)]:
        case(f"{cls_name}(alpha={cid})", functools.partial(cls, K, alpha=alpha), error, "alpha")
    case(f"{cls_name}(label='soft')", functools.partial(cls, K, label="soft"), ValueError, "label")

for cid, kwargs, error, name in [
    ("box='square'", {"box": "square"}, ValueError, "box"),
    ("placement='wrap'", {"placement": "wrap"}, ValueError, "placement"),
    ("sigma<0", {"sigma": -0.5}, ValueError, "sigma"),
    ("sigma nan", {"sigma": float("nan")}, ValueError, "sigma"),
    ("sigma inf", {"sigma": float("inf")}, ValueError, "sigma must be a finite number >= 0"),
    ("sigma str", {"sigma": "wide"}, TypeError, "sigma"),
    ("size>1", {"size": 1.5}, ValueError, "size"),
    ("size<0", {"size": -0.1}, ValueError, "size"),
    ("size str", {"size": "half"}, TypeError, "size"),
]:
    case(f"CutMix({cid})", functools.partial(cutmix.CutMix, K, **kwargs), error, name)

for cid, kwargs, error, name in [
    ("size=-1", {"size": -1}, ValueError, "size"),
    ("size float", {"size": 2.5}, TypeError, "size"),
    ("size str", {"size": "16"}, TypeError, "size"),
    ("size bool", {"size": True}, TypeError, "size"),
    ("value str", {"value": "black"}, TypeError, "value"),
    ("value None", {"value": None}, TypeError, "value"),
    ("value inf", {"value": float("inf")}, ValueError, "value"),
    ("placement", {"placement": "everywhere"}, ValueError, "placement"),
]:
    case(f"Cutout({cid})", functools.partial(cutmix.Cutout, K, **kwargs), error, name)


# -- transform calls ---------------------------------------------------------------------------------------------------
CALLS = [
    ("rank-3 images", torch.rand(3, 8, 8), Y, ValueError, "images"),
    ("rank-5 images", torch.rand(1, 4, 3, 8, 8), Y, ValueError, "images"),
    ("int32 images", torch.zeros(4, 3, 8, 8, dtype=torch.int32), Y, TypeError, "images"),
    ("bool images", torch.zeros(4, 3, 8, 8, dtype=torch.bool), Y, TypeError, "images"),
    ("numpy images", X.numpy(), Y, TypeError, "images"),
    ("empty image", torch.rand(4, 3, 0, 8), Y, ValueError, "images"),
    ("batch of one", torch.rand(1, 3, 8, 8), torch.tensor([0]), ValueError, "images"),
    ("float labels [N]", X, Y.float(), TypeError, "labels"),
    ("bool labels", X, Y.bool(), TypeError, "labels"),
    ("list labels", X, Y.tolist(), TypeError, "labels"),
    ("label too large", X, torch.tensor([0, 1, 2, 10]), ValueError, "labels"),
    ("negative label", X, torch.tensor([0, -1, 2, 3]), ValueError, "labels"),
    ("short labels", X, torch.tensor([0, 1, 2]), ValueError, "labels"),
    ("soft labels, wrong rows", X, torch.full((5, K), 0.1), ValueError, "labels"),
    ("soft labels, wrong width", X, torch.full((4, 7), 1 / 7), ValueError, "labels"),
    ("integer soft labels", X, torch.zeros(4, K, dtype=torch.long), TypeError, "labels"),
    ("rank-3 labels", X, torch.zeros(4, K, 1), ValueError, "labels"),
    ("soft labels sum to 2", X, torch.full((4, K), 0.2), ValueError, "labels"),
    ("soft labels nan", X, _soft(float("nan")), ValueError, "labels"),
    ("soft labels negative", X, torch.tensor([[1.5, -0.5] + [0.0] * 8] * 4), ValueError, "labels"),
    ("soft labels inf", X, _soft(float("inf")), ValueError, "labels"),
    ("labels on another device", X, Y.to(META), ValueError, "labels"),
    ("soft labels on another device", X, SOFT.to(META), ValueError, "labels"),
]
for cls_name, cls in CLASSES.items():
    for cid, images, labels, error, name in CALLS:
        case(f"{cls_name}(10)({cid})", lambda c=cls, i=images, lb=labels: c(K)(i, lb), error, name)
    case(f"{cls_name}()(labels without num_classes)", lambda c=cls: c()(X, Y), ValueError, "num_classes")
    case(f"{cls_name}(10)(one argument)", lambda c=cls: c(K)(X), TypeError, "labels")
    case(f"{cls_name}(prob=schedule 1.5)", lambda c=cls: c(K, prob=lambda step: 1.5)(X, Y), ValueError, "prob")

for cid, value, images in [("0.5 on uint8", 0.5, XU8), ("300 on uint8", 300, XU8), ("-1 on uint8", -1, XU8),
                           ("nan on float", float("nan"), X)]:
    case(f"Cutout(value={cid})", lambda v=value, i=images: cutmix.Cutout(K, value=v)(i, Y), ValueError, "value")


# -- RandomChoice and MixCollate ---------------------------------------------------------------------------------------
def _pair() -> list[cutmix.BatchMix]:
    return [cutmix.CutMix(K), cutmix.MixUp(K)]


case("RandomChoice(p sums to 1.1)", lambda: cutmix.RandomChoice(_pair(), p=[0.5, 0.6]), ValueError, "p")
case("RandomChoice(p sums to 0.4)", lambda: cutmix.RandomChoice(_pair(), p=[0.2, 0.2]), ValueError, "p")
case("RandomChoice(p too short)", lambda: cutmix.RandomChoice(_pair(), p=[1.0]), ValueError, "p")
case("RandomChoice(p[0] > 1)", lambda: cutmix.RandomChoice(_pair(), p=[1.5, -0.5]), ValueError, "p[0]")
case("RandomChoice(p str)", lambda: cutmix.RandomChoice(_pair(), p=["a", "b"]), TypeError, "p[0]")
case("RandomChoice(no transforms)", lambda: cutmix.RandomChoice([]), ValueError, "transforms")
case("RandomChoice(transform not callable)", lambda: cutmix.RandomChoice([cutmix.CutMix(K), 3]), TypeError,
     "transforms[1]")
case("RandomChoice(one transform, not a list)", lambda: cutmix.RandomChoice(cutmix.CutMix(K)), TypeError,
     "transforms")
case("RandomChoice(generator=3)", lambda: cutmix.RandomChoice(_pair(), generator=3), TypeError, "generator")
case("RandomChoice(generator str)", lambda: cutmix.RandomChoice(_pair(), generator="cuda"), TypeError, "generator")
case("MixCollate(mix not callable)", lambda: cutmix.MixCollate(3), TypeError, "mix")
case("MixCollate(collate_fn not callable)", lambda: cutmix.MixCollate(cutmix.CutMix(K), collate_fn=3), TypeError,
     "collate_fn")


# -- feature-level mixing ----------------------------------------------------------------------------------------------
def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 64, K))


case("FeatureMix(model not a Module)", lambda: cutmix.FeatureMix(lambda x: x, "0", cutmix.CutMix(K)), TypeError,
     "model")
case("FeatureMix(mix not a transform)", lambda: cutmix.FeatureMix(_model(), "0", lambda x, y: (x, y)), TypeError,
     "mix")
case("FeatureMix(no layers)", lambda: cutmix.FeatureMix(_model(), [], cutmix.CutMix(K)), ValueError, "layers")
case("FeatureMix(layers int)", lambda: cutmix.FeatureMix(_model(), 0, cutmix.CutMix(K)), TypeError, "layers")
case("FeatureMix(unknown layer)", lambda: cutmix.FeatureMix(_model(), "conv9", cutmix.CutMix(K)), ValueError,
     "conv9")
case("FeatureMix(inplace mix)", lambda: cutmix.FeatureMix(_model(), "0", cutmix.CutMix(K, inplace=True)),
     ValueError, "mix")
case("FeatureCutMix(unknown layer)", lambda: cutmix.FeatureCutMix(_model(), "fc9", K), ValueError, "fc9")
case("ManifoldMixup(alpha=0)", lambda: cutmix.ManifoldMixup(_model(), ["0"], K, alpha=0.0), ValueError, "alpha")
case("FeatureMix call(short labels)", lambda: cutmix.FeatureCutMix(_model(), "0", K)(X, Y[:3]), ValueError,
     "labels")
case("FeatureMix call(label too large)", lambda: cutmix.FeatureCutMix(_model(), "0", K)(X, Y + 7), ValueError,
     "labels")
case("FeatureMix call(soft labels sum to 2)",
     lambda: cutmix.FeatureCutMix(_model(), "0", K)(X, torch.full((4, K), 0.2)), ValueError, "labels")
case("FeatureMix call(images list)", lambda: cutmix.FeatureCutMix(_model(), "", K)(X.tolist(), Y), TypeError,
     "images")


# -- the loss ----------------------------------------------------------------------------------------------------------
LOGITS = torch.randn(4, K)
ce = cutmix.soft_target_cross_entropy
case("loss(logits rank 1)", lambda: ce(torch.randn(K), Y), ValueError, "logits")
case("loss(logits list)", lambda: ce(LOGITS.tolist(), Y), TypeError, "logits")
case("loss(logits int)", lambda: ce(LOGITS.long(), Y), TypeError, "logits")
case("loss(targets list)", lambda: ce(LOGITS, Y.tolist()), TypeError, "targets")
case("loss(float targets [N])", lambda: ce(LOGITS, Y.float()), TypeError, "targets")
case("loss(short targets)", lambda: ce(LOGITS, Y[:3]), ValueError, "targets")
case("loss(target index too large)", lambda: ce(LOGITS, torch.tensor([0, 1, 2, K])), ValueError, "targets")
case("loss(negative target index)", lambda: ce(LOGITS, torch.tensor([0, 1, -2, 3])), ValueError, "targets")
case("loss(soft targets wrong width)", lambda: ce(LOGITS, torch.full((4, 3), 1 / 3)), ValueError, "targets")
case("loss(integer soft targets)", lambda: ce(LOGITS, torch.zeros(4, K, dtype=torch.long)), TypeError, "targets")
case("loss(soft targets nan)", lambda: ce(LOGITS, _soft(float("nan"))), ValueError, "targets")
case("loss(soft targets negative)", lambda: ce(LOGITS, torch.tensor([[1.5, -0.5] + [0.0] * 8] * 4)), ValueError,
     "targets")
case("loss(soft targets sum to 2)", lambda: ce(LOGITS, torch.full((4, K), 0.2)), ValueError, "targets")
case("loss(targets on another device)", lambda: ce(LOGITS, Y.to(META)), ValueError, "targets")
case("loss(reduction)", lambda: ce(LOGITS, Y, reduction="avg"), ValueError, "reduction")
case("loss(label_smoothing>1)", lambda: ce(LOGITS, Y, label_smoothing=2.0), ValueError, "label_smoothing")
case("SoftTargetCrossEntropy(label_smoothing<0)", lambda: cutmix.SoftTargetCrossEntropy(-0.1), ValueError,
     "label_smoothing")
case("SoftTargetCrossEntropy(reduction)", lambda: cutmix.SoftTargetCrossEntropy(reduction="avg"), ValueError,
     "reduction")


# -- schedules ---------------------------------------------------------------------------------------------------------
case("Constant(1.5)", lambda: schedule.Constant(1.5), ValueError, "value")
case("Constant(str)", lambda: schedule.Constant("high"), TypeError, "value")
case("Linear(end=2)", lambda: schedule.Linear(0.0, 2.0, 10), ValueError, "end")
case("Linear(start str)", lambda: schedule.Linear("0", 1.0, 10), TypeError, "start")
case("Linear(total_steps=0)", lambda: schedule.Linear(0.0, 1.0, 0), ValueError, "total_steps")
case("Linear(total_steps float)", lambda: schedule.Linear(0.0, 1.0, 2.5), TypeError, "total_steps")
case("Linear(total_steps bool)", lambda: schedule.Linear(0.0, 1.0, True), TypeError, "total_steps")
case("as_schedule(str)", lambda: schedule.as_schedule("linear"), TypeError, "prob")
case("as_schedule(1.5)", lambda: schedule.as_schedule(1.5), ValueError, "prob")


# -- box samplers ------------------------------------------------------------------------------------------------------
def _g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


for fname, fn, args in [("sample_boxes", B.sample_boxes, (4,)), ("sample_box", B.sample_box, ())]:
    case(f"{fname}(height=0)", functools.partial(fn, *args, 0, 8), ValueError, "height")
    case(f"{fname}(height=-5)", functools.partial(fn, *args, -5, 8), ValueError, "height")
    case(f"{fname}(width=0)", functools.partial(fn, *args, 8, 0), ValueError, "width")
    case(f"{fname}(height float)", functools.partial(fn, *args, 8.5, 8), TypeError, "height")
    case(f"{fname}(width bool)", functools.partial(fn, *args, 8, True), TypeError, "width")
    case(f"{fname}(alpha=0)", functools.partial(fn, *args, 8, 8, alpha=0.0), ValueError, "alpha")
    case(f"{fname}(kind)", functools.partial(fn, *args, 8, 8, kind="square"), ValueError, "box")
    case(f"{fname}(placement)", functools.partial(fn, *args, 8, 8, placement="wrap"), ValueError, "placement")
    case(f"{fname}(sigma<0)", functools.partial(fn, *args, 8, 8, kind="gaussian", sigma=-1.0), ValueError, "sigma")
    case(f"{fname}(sigma inf)", functools.partial(fn, *args, 8, 8, kind="gaussian", sigma=float("inf")), ValueError,
         "sigma must be a finite number >= 0")
    case(f"{fname}(size>1)", functools.partial(fn, *args, 8, 8, kind="fixed", size=2.0), ValueError, "size")
    case(f"{fname}(generator=3)", functools.partial(fn, *args, 8, 8, generator=3), TypeError, "generator")
    case(f"{fname}(generator str)", functools.partial(fn, *args, 8, 8, generator="cpu"), TypeError, "generator")
case("sample_boxes(n=-1)", lambda: B.sample_boxes(-1, 8, 8), ValueError, "n")
case("sample_centres(sigma inf)", lambda: B.sample_centres(4, 8, 8, "gaussian", float("inf")), ValueError,
     "sigma must be a finite number >= 0")
case("sample_boxes(n float)", lambda: B.sample_boxes(2.5, 8, 8), TypeError, "n")
case("box_lambda(height=0)", lambda: B.box_lambda(BOXES, 0, 8), ValueError, "height")
case("box_lambda(width=-8)", lambda: B.box_lambda(BOXES, 8, -8), ValueError, "width")
case("box_lambda(boxes list)", lambda: B.box_lambda(BOXES.tolist(), 8, 8), TypeError, "boxes")
case("box_lambda(float boxes)", lambda: B.box_lambda(BOXES.float(), 8, 8), TypeError, "boxes")
case("box_lambda(boxes [N, 3])", lambda: B.box_lambda(BOXES[:, :3], 8, 8), ValueError, "boxes")
case("box_area(boxes list)", lambda: B.box_area(BOXES.tolist()), TypeError, "boxes")
case("box_sides(lam list)", lambda: B.box_sides([0.5, 0.2], 8, 8), TypeError, "lam")
case("box_sides(height=0)", lambda: B.box_sides(torch.tensor([0.5]), 0, 8), ValueError, "height")
case("box_sides(lam > 1)", lambda: B.box_sides(torch.tensor([1.5]), 8, 8), ValueError, "lam")
case("sample_centres(height=0)", lambda: B.sample_centres(4, 0, 8), ValueError, "height")
case("sample_centres(kind)", lambda: B.sample_centres(4, 8, 8, kind="square"), ValueError, "kind")
case("sample_centres(generator=3)", lambda: B.sample_centres(4, 8, 8, generator=3), TypeError, "generator")
case("place_boxes(placement)", lambda: B.place_boxes(torch.zeros(4, 2, dtype=torch.long),
                                                     torch.ones(4, 2, dtype=torch.long), 8, 8, "wrap"),
     ValueError, "placement")
case("place_boxes(centres [N, 3])", lambda: B.place_boxes(torch.zeros(4, 3, dtype=torch.long),
                                                          torch.ones(4, 2, dtype=torch.long), 8, 8),
     ValueError, "centres")


# -- random draws ------------------------------------------------------------------------------------------------------
case("uniform(n=-1)", lambda: sampling.uniform(-1), ValueError, "n")
case("uniform(n float)", lambda: sampling.uniform(2.5), TypeError, "n")
case("uniform(generator=3)", lambda: sampling.uniform(4, 3), TypeError, "generator")
case("randint(high=0)", lambda: sampling.randint(0, 4), ValueError, "high")
case("permutation(n=-1)", lambda: sampling.permutation(-1), ValueError, "n")
case("permutation(generator=3)", lambda: sampling.permutation(4, 3), TypeError, "generator")
case("gamma(shape=0)", lambda: sampling.gamma(0.0, 4), ValueError, "shape")
case("gamma(shape nan)", lambda: sampling.gamma(float("nan"), 4), ValueError, "shape")
case("beta(alpha=0)", lambda: sampling.beta(0.0, 4), ValueError, "alpha")
case("beta(beta=-1)", lambda: sampling.beta(1.0, 4, beta=-1.0), ValueError, "beta")
case("beta(alpha str)", lambda: sampling.beta("1", 4), TypeError, "alpha")
case("beta(generator=3)", lambda: sampling.beta(2.0, 4, 3), TypeError, "generator")
case("bernoulli(p=1.5)", lambda: sampling.bernoulli(1.5, 4), ValueError, "p")
case("bernoulli(p str)", lambda: sampling.bernoulli("a", 4), TypeError, "p")


# -- the functional ops ------------------------------------------------------------------------------------------------
case("paste(float index)", lambda: F.paste(X, BOX, IDX.float()), TypeError, "index")
case("paste(index out of range)", lambda: F.paste(X, BOX, torch.tensor([1, 2, 3, 4])), ValueError, "index")
case("paste(negative index)", lambda: F.paste(X, BOX, torch.tensor([1, -2, 3, 0])), ValueError, "index")
case("paste(short index)", lambda: F.paste(X, BOX, IDX[:3]), ValueError, "index")
case("paste(list index)", lambda: F.paste(X, BOX, IDX.tolist()), TypeError, "index")
case("paste(index on another device)", lambda: F.paste(X, BOX, IDX.to(META)), ValueError, "index")
case("paste(float boxes)", lambda: F.paste(X, BOX.float(), IDX), TypeError, "boxes")
case("paste(box outside)", lambda: F.paste(X, torch.tensor([0, 0, 9, 4]), IDX), ValueError, "boxes")
case("paste(negative box)", lambda: F.paste(X, torch.tensor([-1, 0, 4, 4]), IDX), ValueError, "boxes")
case("paste(boxes wrong count)", lambda: F.paste(X, BOXES[:3], IDX), ValueError, "boxes")
case("paste(box x1<x0)", lambda: F.paste(X, torch.tensor([4, 0, 0, 4]), IDX), ValueError, "boxes")
case("paste(boxes list)", lambda: F.paste(X, BOX.tolist(), IDX), TypeError, "boxes")
case("paste(boxes on another device)", lambda: F.paste(X, BOXES.to(META), IDX), ValueError, "boxes")
case("paste(rank-3 images)", lambda: F.paste(torch.rand(4, 8, 8), BOX, IDX), ValueError, "images")
case("paste(images list)", lambda: F.paste(X.tolist(), BOX, IDX), TypeError, "images")
case("paste(inplace str)", lambda: F.paste(X.clone(), BOX, IDX, inplace="no"), TypeError, "inplace")
case("erase(int32 images)", lambda: F.erase(X.int(), BOX), TypeError, "images")
case("erase(value str)", lambda: F.erase(X, BOX, value="black"), TypeError, "value")
case("erase(value nan)", lambda: F.erase(X, BOX, value=float("nan")), ValueError, "value")
case("erase(value 0.5 on uint8)", lambda: F.erase(XU8, BOX, value=0.5), ValueError, "value")
case("erase(value 300 on uint8)", lambda: F.erase(XU8, BOXES, value=300), ValueError, "value")
case("erase(value -1 on uint8)", lambda: F.erase(XU8, BOX, value=-1), ValueError, "value")
case("erase(box outside)", lambda: F.erase(X, torch.tensor([0, 0, 4, 9])), ValueError, "boxes")
case("erase(boxes on another device)", lambda: F.erase(X, BOX.to(META)), ValueError, "boxes")
case("blend(lam shape)", lambda: F.blend(X, torch.tensor([0.5, 0.5]), IDX), ValueError, "lam")
case("blend(lam > 1)", lambda: F.blend(X, 1.5, IDX), ValueError, "lam")
case("blend(lam < 0)", lambda: F.blend(X, torch.tensor([0.5, -0.1, 0.5, 0.5]), IDX), ValueError, "lam")
case("blend(lam nan)", lambda: F.blend(X, float("nan"), IDX), ValueError, "lam")
case("blend(lam str)", lambda: F.blend(X, "half", IDX), TypeError, "lam")
case("blend(lam on another device)", lambda: F.blend(X, torch.full((4,), 0.5, device=META), IDX), ValueError, "lam")
case("blend(index out of range)", lambda: F.blend(X, 0.5, IDX + 1), ValueError, "index")
case("mix_targets(no num_classes)", lambda: F.mix_targets(Y, IDX, 0.5), ValueError, "num_classes")
case("mix_targets(label out of range)", lambda: F.mix_targets(Y, IDX, 0.5, num_classes=3), ValueError, "labels")
case("mix_targets(label mode)", lambda: F.mix_targets(Y, IDX, 0.5, num_classes=4, label="max"), ValueError,
     "label")
case("mix_targets(label_smoothing)", lambda: F.mix_targets(Y, IDX, 0.5, num_classes=4, label_smoothing=2.0),
     ValueError, "label_smoothing")
case("mix_targets(dtype int64)", lambda: F.mix_targets(Y, IDX, 0.5, num_classes=4, dtype=torch.int64), TypeError,
     "dtype")
case("mix_targets(soft labels sum to 2)", lambda: F.mix_targets(torch.full((4, K), 0.2), IDX, 0.5), ValueError,
     "labels")
case("mix_targets(short index)", lambda: F.mix_targets(Y, IDX[:2], 0.5, num_classes=4), ValueError, "index")
case("mix_targets(lam shape)", lambda: F.mix_targets(Y, IDX, torch.full((3,), 0.5), num_classes=4), ValueError,
     "lam")
case("mix_targets(lam > 1)", lambda: F.mix_targets(Y, IDX, 2.0, num_classes=4), ValueError, "lam")
case("mix_targets(labels list)", lambda: F.mix_targets(Y.tolist(), IDX, 0.5, num_classes=4), TypeError, "labels")
case("mix_targets(index on another device)", lambda: F.mix_targets(Y, IDX.to(META), 0.5, num_classes=4),
     ValueError, "index")
case("one_hot(num_classes=0)", lambda: F.one_hot(Y, 0), ValueError, "num_classes")
case("one_hot(num_classes str)", lambda: F.one_hot(Y, "4"), TypeError, "num_classes")
case("one_hot(label out of range)", lambda: F.one_hot(Y, 3), ValueError, "labels")
case("one_hot(float labels)", lambda: F.one_hot(Y.float(), 4), TypeError, "labels")
case("one_hot(dtype int64)", lambda: F.one_hot(Y, 4, dtype=torch.int64), TypeError, "dtype")
case("one_hot(label_smoothing)", lambda: F.one_hot(Y, 4, label_smoothing=-1.0), ValueError, "label_smoothing")
case("label_weights(label mode)", lambda: F.label_weights(torch.tensor([0.5]), "max"), ValueError, "label")
case("label_weights(lam list)", lambda: F.label_weights([0.5, 0.2]), TypeError, "lam")

FUNC_KW = {
    "cutmix": lambda **kw: F.cutmix(kw.pop("images", X), kw.pop("labels", Y), **{"boxes": BOXES, "index": IDX,
                                                                                   "num_classes": K, **kw}),
    "mixup": lambda **kw: F.mixup(kw.pop("images", X), kw.pop("labels", Y), **{"lam": 0.3, "index": IDX,
                                                                                 "num_classes": K, **kw}),
    "cutout": lambda **kw: F.cutout(kw.pop("images", X), kw.pop("labels", Y), **{"boxes": BOXES, "num_classes": K,
                                                                                  **kw}),
}
for fname, fn in FUNC_KW.items():
    for cid, kwargs, error, name in [
        ("target_dtype int64", {"target_dtype": torch.int64}, TypeError, "target_dtype"),
        ("target_dtype str", {"target_dtype": "float32"}, TypeError, "target_dtype"),
        ("short labels", {"labels": Y[:3]}, ValueError, "labels"),
        ("float labels", {"labels": Y.float()}, TypeError, "labels"),
        ("soft labels wrong width", {"labels": torch.full((4, 3), 1 / 3)}, ValueError, "labels"),
        ("soft labels sum to 2", {"labels": torch.full((4, K), 0.2)}, ValueError, "labels"),
        ("labels on another device", {"labels": Y.to(META)}, ValueError, "labels"),
        ("label out of range", {"num_classes": 2}, ValueError, "labels"),
        ("num_classes=0", {"num_classes": 0}, ValueError, "num_classes"),
        ("label_smoothing", {"label_smoothing": 1.5}, ValueError, "label_smoothing"),
        ("empty batch", {"images": torch.rand(0, 3, 8, 8), "labels": Y[:0]}, ValueError, "images"),
    ]:
        case(f"{fname}({cid})", functools.partial(fn, **kwargs), error, name)
for fname in ("cutmix", "mixup"):
    case(f"{fname}(index on another device)", functools.partial(FUNC_KW[fname], index=IDX.to(META)), ValueError,
         "index")
    case(f"{fname}(float index)", functools.partial(FUNC_KW[fname], index=IDX.float()), TypeError, "index")
    case(f"{fname}(label mode)", functools.partial(FUNC_KW[fname], label="max"), ValueError, "label")
case("cutmix(boxes on another device)", lambda: FUNC_KW["cutmix"](boxes=BOXES.to(META)), ValueError, "boxes")
case("cutmix(box outside)", lambda: FUNC_KW["cutmix"](boxes=torch.tensor([0, 0, 9, 9])), ValueError, "boxes")
case("mixup(lam on another device)", lambda: FUNC_KW["mixup"](lam=torch.full((4,), 0.5, device=META)), ValueError,
     "lam")
case("mixup(lam > 1)", lambda: FUNC_KW["mixup"](lam=1.5), ValueError, "lam")
case("cutout(value nan)", lambda: FUNC_KW["cutout"](value=float("nan")), ValueError, "value")
case("cutout(value 0.5 on uint8)", lambda: FUNC_KW["cutout"](images=XU8, value=0.5), ValueError, "value")
case("cutout(boxes on another device)", lambda: FUNC_KW["cutout"](boxes=BOXES.to(META)), ValueError, "boxes")


# -- the test and the report ---------------------------------------------------------------------------------------
def _ids() -> list[str]:
    seen: dict[str, int] = {}
    for c in CASES:
        seen[c.id] = seen.get(c.id, 0) + 1
    assert all(v == 1 for v in seen.values()), [k for k, v in seen.items() if v > 1]
    return [c.id for c in CASES]


@pytest.mark.parametrize("c", CASES, ids=_ids())
def test_bad_input_gives_a_clear_error(c: Case):
    with pytest.raises(c.error) as info:
        c.call()
    assert c.name in str(info.value), f"the message must name {c.name!r}: {info.value}"


def classify(c: Case) -> tuple[str, str]:
    """("clear" | "silent" | "obscure", detail) for one case on the current code."""
    try:
        c.call()
    except (ValueError, TypeError) as err:
        if c.name in str(err):
            return "clear", ""
        return "obscure", f"{type(err).__name__}: {str(err).splitlines()[0][:110] if str(err) else ''}"
    except Exception as err:  # the catalogue reports every kind of failure
        return "obscure", f"{type(err).__name__}: {str(err).splitlines()[0][:110] if str(err) else ''}"
    return "silent", "no error"


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    verdicts = {c.id: classify(c) for c in CASES}
    counts = {k: sum(v[0] == k for v in verdicts.values()) for k in ("clear", "silent", "obscure")}
    for cid, (verdict, detail) in verdicts.items():
        if verdict != "clear":
            print(f"{verdict:8s} {cid}: {detail}")
    print(f"tried {len(CASES)}: clear {counts['clear']}, silent {counts['silent']}, obscure {counts['obscure']}")
