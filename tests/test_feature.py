"""Feature-level mixing (cutmix.FeatureCutMix, cutmix.ManifoldMixup) on a small CNN defined here."""

from __future__ import annotations

import math

import pytest
import torch
from _helpers import count_box_pixels, one_hot_ref
from torch import nn

import cutmix

N, K = 5, 5


class SmallCNN(nn.Module):
    """16x16 input -> conv -> relu -> `layer` (stride 2: 8x8 map) -> `act` -> pool -> head. No batch norm, so
    samples only interact through the mix."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.layer = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(6, K)

    def forward(self, x):
        x = self.act(self.layer(self.relu(self.conv1(x))))
        return self.head(self.pool(x).flatten(1))


def _model(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN().double()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(seed: int = 0) -> torch.Tensor:
    return torch.rand(N, 3, 16, 16, generator=_gen(seed), dtype=torch.float64)


class Capture:
    """Records `layer`'s own output (a hook registered before the mixer's) and what `act` receives (the mix)."""

    def __init__(self, model: SmallCNN) -> None:
        self.before: torch.Tensor | None = None
        self.after: torch.Tensor | None = None
        model.layer.register_forward_hook(self._before)
        model.act.register_forward_pre_hook(self._after)

    def _before(self, _m, _i, out):
        self.before = out.detach().clone()

    def _after(self, _m, inputs):
        self.after = inputs[0].detach().clone()


def _partner(targets: torch.Tensor, i: int) -> int:
    row = targets[i].clone()
    row[i] = 0
    return int(row.argmax()) if float(row.max()) > 0 else i


@pytest.mark.parametrize("per_sample", [False, True])
def test_feature_cutmix_targets_use_the_feature_map_share(per_sample):
    model = _model()
    capture = Capture(model)
    mixer = cutmix.FeatureCutMix(model, "layer", num_classes=K, per_sample=per_sample, generator=_gen(1))
    labels = torch.arange(N)
    seen_fractional = False
    for _ in range(6):
        logits, targets = mixer(_images(), labels)
        assert logits.shape == (N, K) and targets.shape == (N, K)
        assert torch.allclose(targets.sum(1), torch.ones(N), atol=1e-6)
        before, after = capture.before, capture.after
        assert before.shape == (N, 6, 8, 8)
        for i in range(N):
            j = _partner(targets, i)
            pasted = (after[i] != before[i]).any(0)
            if j == i:
                assert not bool(pasted.any())
                continue
            # the pasted region is exactly the partner's feature map, in a rectangle
            assert torch.equal(after[i][:, pasted], before[j][:, pasted])
            assert torch.equal(after[i][:, ~pasted], before[i][:, ~pasted])
            ys, xs = torch.nonzero(pasted, as_tuple=True)
            if len(ys):
                box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
                assert count_box_pixels(box, 8, 8) == int(pasted.sum())
            lam = 1.0 - int(pasted.sum()) / 64  # the share on the 8x8 feature map, not on the 16x16 input
            assert math.isclose(float(targets[i, i]), lam, abs_tol=1e-6)
            assert math.isclose(float(targets[i, j]), 1.0 - lam, abs_tol=1e-6)
            seen_fractional |= 0.0 < lam < 1.0
    assert seen_fractional


def test_feature_cutmix_gradients_reach_a_sample_and_its_partner():
    """A loss on one sample's output only: gradients reach that sample and its partner, and no other sample."""
    labels = torch.arange(N)
    for seed in range(50):
        model = _model()
        mixer = cutmix.FeatureCutMix(model, "layer", num_classes=K, generator=_gen(seed))
        images = _images().requires_grad_()
        logits, targets = mixer(images, labels)
        j = _partner(targets, 0)
        if j == 0 or not 0.0 < float(targets[0, 0]) < 1.0:
            continue  # sample 0 was not mixed with a partner in this draw
        loss = cutmix.SoftTargetCrossEntropy()(logits[:1], targets[:1])
        loss.backward()
        grad = images.grad.flatten(1).abs().sum(1)
        assert float(grad[0]) > 0 and float(grad[j]) > 0
        others = [k for k in range(N) if k not in (0, j)]
        assert bool((grad[others] == 0).all())
        assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())
        return
    pytest.fail("no seed in 0..49 mixed sample 0 with a partner")


def test_feature_mix_leaves_no_hook_behind_and_eval_is_the_plain_model():
    model = _model()
    images, labels = _images(), torch.arange(N)
    plain = model(images)
    mixer = cutmix.FeatureCutMix(model, "layer", num_classes=K, generator=_gen(2))
    mixed, _ = mixer(images, labels)
    assert not torch.equal(mixed, plain)
    assert len(model.layer._forward_hooks) == 0
    assert torch.equal(model(images), plain), "the model must be unchanged after mixing"
    model.eval()
    logits, targets = mixer(images, labels)
    assert torch.equal(logits, plain) and torch.equal(targets.double(), one_hot_ref(labels, K))


def test_manifold_mixup_at_the_input_and_at_a_layer():
    model = _model()
    capture = Capture(model)
    inputs: list[torch.Tensor] = []
    model.conv1.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach().clone()))
    mixer = cutmix.ManifoldMixup(model, ["", "layer"], num_classes=K, generator=_gen(3))
    images, labels = _images(), torch.arange(N)
    where = set()
    for _ in range(20):
        inputs.clear()
        logits, targets = mixer(images, labels)
        assert logits.shape == (N, K) and torch.allclose(targets.sum(1), torch.ones(N), atol=1e-6)
        lam = None
        for i in range(N):
            if _partner(targets, i) != i:
                lam = float(targets[i, i])
        if lam is None:  # the permutation was the identity: nothing may change
            assert torch.equal(targets.double(), one_hot_ref(labels, K))
            continue
        index = torch.tensor([_partner(targets, i) for i in range(N)])
        if not torch.equal(inputs[0], images):  # mixed at the input
            where.add("")
            expected = lam * images + (1 - lam) * images[index]
            assert torch.allclose(inputs[0], expected, atol=1e-6)
        else:  # mixed at `layer`
            where.add("layer")
            expected = lam * capture.before + (1 - lam) * capture.before[index]
            assert torch.allclose(capture.after, expected, atol=1e-6)
    assert where == {"", "layer"}


@pytest.mark.parametrize(("layers", "bad"), [("nope", "nope"), (["", "layer", "head.missing"], "head.missing")])
def test_unknown_layer_raises_value_error_naming_it(layers, bad):
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        cutmix.FeatureCutMix(_model(), layers, num_classes=K)
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        cutmix.ManifoldMixup(_model(), layers if isinstance(layers, list) else [layers], num_classes=K)


def test_layer_without_a_feature_map_is_rejected():
    mixer = cutmix.FeatureCutMix(_model(), "head", num_classes=K, generator=_gen(4))
    with pytest.raises(ValueError, match="head"):
        mixer(_images(), torch.arange(N))


def test_feature_mix_argument_errors():
    with pytest.raises(TypeError, match="model"):
        cutmix.FeatureMix(lambda x: x, "layer", cutmix.CutMix(K))
    with pytest.raises(TypeError, match="mix"):
        cutmix.FeatureMix(_model(), "layer", lambda x, y: (x, y))
    with pytest.raises(ValueError, match="layers"):
        cutmix.FeatureMix(_model(), [], cutmix.CutMix(K))
    with pytest.raises(ValueError, match="inplace"):
        cutmix.FeatureMix(_model(), "layer", cutmix.CutMix(K, inplace=True))


@pytest.mark.parametrize("per_sample", [False, True])
def test_feature_cutmix_on_a_pooled_1x1_feature_map(per_sample):
    """Mixing after global pooling: a [N, C, 1, 1] map. Each sample keeps or swaps its whole vector."""
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, K))
    mixer = cutmix.FeatureCutMix(model, "1", num_classes=K, per_sample=per_sample, generator=_gen(5))
    logits, targets = mixer(torch.rand(N, 3, 8, 8, generator=_gen(5)), torch.arange(N))
    assert logits.shape == (N, K)
    assert set(targets.flatten().tolist()) <= {0.0, 1.0}  # lambda is 0 or 1 on a single cell
