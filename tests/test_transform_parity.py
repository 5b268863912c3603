"""The transforms equal the functional ops on the same draws.

The transforms call the ops of ``cutmix._ops`` and compute lambda themselves (one fewer pass of checks per batch);
this pins them to ``cutmix.functional``: the draws are replayed from a copy of the generator in the order
``BatchMix.draw`` documents (Bernoulli selection, the partner permutation, then the transform's own draws), and
the images and targets must be identical, per batch and per sample, uint8 and float.
"""

from __future__ import annotations

import pytest
import torch

import cutmix
from cutmix import functional as F
from cutmix import sampling
from cutmix.boxes import place_boxes, sample_box, sample_boxes, sample_centres

N, K, H, W = 8, 5, 12, 10
SEED = 1234


def batch(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (N, 3, H, W), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, K, (N,), generator=g)
    return (images if dtype == torch.uint8 else images.to(dtype) / 255), labels


def partners(prob: float, per_sample: bool, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    selected = sampling.bernoulli(prob, N if per_sample else 1, g)
    assert per_sample or bool(selected), "pick a seed where the per-batch draw mixes"
    return sampling.permutation(N, g), selected if per_sample else None


def same(got: tuple[torch.Tensor, torch.Tensor], want: tuple[torch.Tensor, torch.Tensor]) -> None:
    assert got[0].dtype == want[0].dtype and torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])


DTYPES = [torch.uint8, torch.float32]
MODES = [(False, 1.0), (True, 1.0), (True, 0.6)]  # (per_sample, prob): 0.6 leaves some samples unmixed


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("per_sample", "prob"), MODES)
@pytest.mark.parametrize("options", [{}, {"box": "gaussian", "label": "complete"},
                                     {"box": "fixed", "size": 0.5, "placement": "inside", "label": "onehot"}])
def test_cutmix_transform_equals_functional(dtype, per_sample, prob, options):
    images, labels = batch(dtype)
    mix = cutmix.CutMix(K, alpha=1.0, prob=prob, per_sample=per_sample, generator=torch.Generator().manual_seed(SEED),
                        **options)
    rest = dict(options)  # the parameter's dict is shared between the cases: leave it whole
    label = rest.pop("label", "area")
    kwargs = {"alpha": 1.0, "kind": rest.pop("box", "uniform"), **rest}
    g = torch.Generator().manual_seed(SEED)
    index, selected = partners(prob, per_sample, g)
    if selected is None:
        boxes = torch.tensor(sample_box(H, W, generator=g, **kwargs))
    else:
        boxes = sample_boxes(N, H, W, generator=g, **kwargs).masked_fill_(~selected[:, None], 0)
    want = F.cutmix(images, labels, boxes=boxes, index=index, num_classes=K, label=label)
    same(mix(images, labels), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("per_sample", "prob"), MODES)
@pytest.mark.parametrize("label", ["area", "complete"])
def test_mixup_transform_equals_functional(dtype, per_sample, prob, label):
    images, labels = batch(dtype)
    mix = cutmix.MixUp(K, alpha=0.4, prob=prob, per_sample=per_sample, label=label,
                       generator=torch.Generator().manual_seed(SEED))
    g = torch.Generator().manual_seed(SEED)
    index, selected = partners(prob, per_sample, g)
    lam = sampling.beta(0.4, 1 if selected is None else N, g)
    if selected is not None:
        lam = lam.masked_fill(~selected, 1.0)
    want = F.mixup(images, labels, lam=float(lam) if selected is None else lam, index=index, num_classes=K,
                   label=label)
    same(mix(images, labels), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("per_sample", "prob"), MODES)
def test_cutout_transform_equals_functional(dtype, per_sample, prob):
    images, labels = batch(dtype)
    mix = cutmix.Cutout(K, size=5, prob=prob, per_sample=per_sample, value=0.5 if dtype != torch.uint8 else 9,
                        generator=torch.Generator().manual_seed(SEED))
    g = torch.Generator().manual_seed(SEED)
    _, selected = partners(prob, per_sample, g)  # Cutout draws the permutation too (the same stream as CutMix)
    m = 1 if selected is None else N
    boxes = place_boxes(sample_centres(m, H, W, generator=g), torch.tensor([[5, 5]]).expand(m, 2), H, W)
    boxes = boxes[0] if selected is None else boxes.masked_fill_(~selected[:, None], 0)
    want = F.cutout(images, labels, boxes=boxes, num_classes=K, value=mix.value)
    same(mix(images, labels), want)


def test_the_replayed_draws_mix_something():
    """The parity above is not vacuous: the replayed CutMix draws change pixels and soften targets."""
    images, labels = batch(torch.uint8)
    out, targets = cutmix.CutMix(K, generator=torch.Generator().manual_seed(SEED))(images, labels)
    assert not torch.equal(out, images) and bool((targets.max(dim=1).values < 1).any())
