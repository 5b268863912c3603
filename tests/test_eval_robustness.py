"""Robustness evaluation: FGSM against hand-derived gradients, exact occlusion masks, in-between rates."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from cutmix.evaluate.common import PixelClassifier, predict_logits
from cutmix.evaluate.robustness import (
    accuracy,
    centred_box,
    default_sizes,
    eval_mode,
    fgsm,
    fgsm_accuracy,
    in_between_curve,
    occlude,
    occlusion_curve,
    robustness_summary,
    sample_pairs,
)

C, H, W = 3, 8, 8


def _linear(seed: int = 0, classes: int = 2, c: int = C, h: int = H, w: int = W) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, classes))


def _images(n: int, seed: int = 0, c: int = C, h: int = H, w: int = W) -> Tensor:
    return torch.randint(0, 256, (n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


class ModeRecorder(nn.Module):
    """A small conv net with BN and dropout that remembers the mode of every forward."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(C, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, classes),
        )
        self.modes: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.modes.append(self.training)
        return self.body(x)


class MeanPrototypes(nn.Module):
    """Predicts the class whose prototype intensity is nearest to the image's mean: a known, fixed mapping."""

    def __init__(self, prototypes: list[float]) -> None:
        super().__init__()
        self.register_buffer("prototypes", torch.tensor(prototypes))

    def forward(self, x: Tensor) -> Tensor:
        return -((x.mean(dim=(1, 2, 3))[:, None] - self.prototypes[None]) ** 2)


# -- FGSM ----------------------------------------------------------------------------------------------------------
def test_fgsm_zero_epsilon_is_identity_and_clean_accuracy():
    model, images = ModeRecorder(), _images(10)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    x = images.float() / 255
    assert torch.equal(fgsm(model, x, labels, 0.0), x)
    clean = float((predict_logits(model.eval(), images).argmax(1) == labels).double().mean())
    result = fgsm_accuracy(model, images, labels, epsilons=(0.0, 8 / 255), batch_size=3)
    assert result[0.0] == clean
    assert set(result) == {0.0, 8 / 255}


def test_fgsm_direction_of_a_linear_model_is_the_weight_difference():
    # CE gradient of a 2-class linear model at label y is p_other * (w_other - w_y): its sign is sign(w_other - w_y).
    model = _linear()
    x = torch.full((4, C, H, W), 0.5)
    labels = torch.tensor([0, 1, 1, 0])
    eps = 0.01
    adv = fgsm(model, x, labels, eps)
    w = model[1].weight.detach()
    for i, y in enumerate(labels.tolist()):
        expected = torch.sign(w[1 - y] - w[y]).view(C, H, W)
        assert torch.equal(torch.sign(adv[i] - x[i]), expected)
        torch.testing.assert_close((adv[i] - x[i]).abs(), torch.full((C, H, W), eps))


def test_fgsm_lowers_the_true_class_margin_of_a_linear_model():
    model = _linear(seed=3)
    x, labels = _images(6).float() / 255, torch.tensor([0, 1, 0, 1, 0, 1])
    w = model[1].weight.detach()
    margin = lambda z: (z.flatten(1) @ (w[1] - w[0])) * (2 * labels - 1)  # noqa: E731  (true minus other)
    assert bool((margin(fgsm(model, x, labels, 2 / 255)) < margin(x)).all())


def test_fgsm_clamps_to_unit_interval():
    model = _linear(seed=1)
    x = torch.cat([torch.ones(1, C, H, W), torch.zeros(1, C, H, W)])
    adv = fgsm(model, x, torch.tensor([0, 1]), 0.5)
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert set(adv[0].unique().tolist()) <= {0.5, 1.0} and set(adv[1].unique().tolist()) <= {0.0, 0.5}
    assert bool((adv[0] == 0.5).any()) and bool((adv[1] == 0.5).any())  # some pixels did move inwards


def test_fgsm_leaves_no_parameter_gradients_and_restores_mode():
    model = ModeRecorder().train()
    model.body[1].eval()  # a caller's mixed modes must survive too
    fgsm_accuracy(model, _images(5), torch.tensor([0, 1, 2, 0, 1]), batch_size=2)
    fgsm(model, _images(2).float() / 255, torch.tensor([0, 1]), 0.1)
    assert all(p.grad is None for p in model.parameters())
    assert model.modes and not any(model.modes)  # every forward ran in eval mode
    assert model.training and model.body[0].training and not model.body[1].training


def test_fgsm_works_inside_inference_mode_on_an_inference_tensor():
    model = _linear()
    with torch.inference_mode():
        x = torch.full((2, C, H, W), 0.5)
        adv = fgsm(model, x, torch.tensor([0, 1]), 0.01)
    assert not torch.equal(adv, x)


def test_fgsm_pixel_classifier_attacks_pixel_space():
    # The attack is before the normalisation: the step is epsilon in [0, 1] units, whatever mean and std are.
    clf = PixelClassifier(_linear(), mean=[0.4, 0.5, 0.6], std=[0.2, 0.3, 0.25])
    x = torch.full((2, C, H, W), 0.5)
    adv = fgsm(clf, x, torch.tensor([0, 1]), 0.02)
    torch.testing.assert_close((adv - x).abs(), torch.full_like(x, 0.02))


@pytest.mark.parametrize("eps, match", [(-0.1, "epsilon"), (float("nan"), "epsilon"), (True, "epsilon")])
def test_fgsm_rejects_bad_epsilon(eps, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fgsm(_linear(), torch.zeros(1, C, H, W), torch.tensor([0]), eps)
    with pytest.raises((ValueError, TypeError), match=match):
        fgsm_accuracy(_linear(), _images(2), torch.tensor([0, 1]), epsilons=(0.0, eps))


def test_fgsm_rejects_bad_inputs():
    with pytest.raises(ValueError, match="epsilons is empty"):
        fgsm_accuracy(_linear(), _images(2), torch.tensor([0, 1]), epsilons=())
    with pytest.raises(TypeError, match="sequence"):
        fgsm_accuracy(_linear(), _images(2), torch.tensor([0, 1]), epsilons=0.1)
    with pytest.raises(TypeError, match="floating"):
        fgsm(_linear(), _images(2), torch.tensor([0, 1]), 0.1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        fgsm_accuracy(_linear(), _images(2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="labels must have shape"):
        fgsm_accuracy(_linear(), _images(2), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="empty batch"):
        fgsm_accuracy(_linear(), _images(0), torch.zeros(0, dtype=torch.long))


# -- occlusion -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("h, w", [(8, 8), (7, 10)])
@pytest.mark.parametrize("size", [0, 1, 3, 4, 7, 8, 20])
def test_occlude_exact_pixels(h, w, size):
    x = torch.rand(2, C, h, w) + 0.5  # no zeros of its own
    x0, y0, x1, y1 = centred_box(size, h, w)
    sh, sw = min(size, h), min(size, w)
    assert (y0, x0) == ((h - sh) // 2, (w - sw) // 2) and (y1 - y0, x1 - x0) == (sh, sw)
    inside = torch.zeros(h, w, dtype=torch.bool)
    for y in range(h):
        for xx in range(w):
            inside[y, xx] = y0 <= y < y1 and x0 <= xx < x1
    centre, boundary = occlude(x, size, "center"), occlude(x, size, "boundary")
    assert int((centre == 0).sum()) == 2 * C * sh * sw
    assert torch.equal(centre, torch.where(inside, torch.zeros(()), x))
    assert torch.equal(boundary, torch.where(inside, x, torch.zeros(())))
    assert torch.equal(centre + boundary, x)  # complements


def test_occlude_extremes_and_odd_offsets():
    x = torch.rand(1, 1, 5, 5) + 0.5
    assert torch.equal(occlude(x, 0, "center"), x)
    assert torch.equal(occlude(x, 0, "boundary"), torch.zeros_like(x))
    assert torch.equal(occlude(x, 5, "center"), torch.zeros_like(x))
    assert torch.equal(occlude(x, 5, "boundary"), x)
    # side 2 in 5: leftover 3 puts 1 pixel before the box and 2 after it
    zeroed = (occlude(x, 2, "center")[0, 0] == 0).nonzero().tolist()
    assert zeroed == [[1, 1], [1, 2], [2, 1], [2, 2]]
    u8 = _images(2)
    assert occlude(u8, 4, "center").dtype == torch.uint8 and torch.equal(occlude(u8, 0), u8)


def test_occlude_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        occlude(torch.zeros(1, 1, 4, 4), 2, "corner")
    with pytest.raises(ValueError, match="size must be >= 0"):
        occlude(torch.zeros(1, 1, 4, 4), -1)
    with pytest.raises(TypeError, match="size must be an int"):
        occlude(torch.zeros(1, 1, 4, 4), 2.5)


def test_occlusion_curve_identities():
    model, images = ModeRecorder(), _images(12, seed=2)
    labels = torch.arange(12) % 3
    clean = accuracy(model, images, labels)
    black = int(predict_logits(model.eval(), torch.zeros(1, C, H, W, dtype=torch.uint8)).argmax())
    all_black = float((labels == black).double().mean())
    centre = occlusion_curve(model, images, labels, sizes=[0, 3, H], mode="center", batch_size=5)
    boundary = occlusion_curve(model, images, labels, sizes=[0, H], mode="boundary", batch_size=5)
    assert centre["sizes"] == [0, 3, H]
    assert centre["accuracy"][0] == clean and centre["accuracy"][2] == all_black
    assert boundary["accuracy"] == [all_black, clean]
    assert occlusion_curve(model, images, labels, mode="center")["sizes"] == default_sizes(H)


def test_default_sizes():
    assert default_sizes(8) == list(range(9))
    assert default_sizes(32) == list(range(0, 33, 2))
    sizes = default_sizes(224)
    assert sizes[0] == 0 and sizes[-1] == 224 and len(sizes) == 17


# -- in-between-class samples --------------------------------------------------------------------------------------
def test_sample_pairs_have_different_labels_and_are_seeded():
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2, 2, 3])
    a, b = sample_pairs(labels, 500, torch.Generator().manual_seed(1))
    assert bool((labels[a] != labels[b]).all())
    a2, b2 = sample_pairs(labels, 500, torch.Generator().manual_seed(1))
    assert torch.equal(a, a2) and torch.equal(b, b2)
    a3, _ = sample_pairs(labels, None, torch.Generator().manual_seed(1))
    assert sorted(a3.tolist()) == list(range(10))  # by default every image is an a once
    # b is uniform over the images of the other classes: a class-0 image's partner is each of 4 others w.p. 1/4
    a, b = sample_pairs(labels, 4000, torch.Generator().manual_seed(2))
    counts = torch.bincount(b[labels[a] == 0], minlength=10)[6:].double()
    assert bool(((counts / counts.sum() - 0.25).abs() < 0.05).all())


def test_sample_pairs_rejects_one_class():
    with pytest.raises(ValueError, match="at least two classes"):
        sample_pairs(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="num_pairs must be >= 1"):
        sample_pairs(torch.tensor([0, 1]), 0)


def _two_class_set(n: int = 10) -> tuple[Tensor, Tensor]:
    labels = torch.arange(n) % 2
    return (labels * 255).to(torch.uint8).view(n, 1, 1, 1).expand(n, C, H, W).contiguous(), labels


def test_in_between_mixup_rates_of_a_known_model():
    # Classes 0 and 1 are black and white images; class 2 (prototype grey) is "neither". A pair's mixture has mean
    # lam * v_a + (1 - lam) * v_b, which is a's value for lam > 0.75, grey for 0.25 < lam < 0.75, b's for lam < 0.25.
    images, labels = _two_class_set()
    model = MeanPrototypes([0.0, 1.0, 0.5])
    out = in_between_curve(model, images, labels, "mixup", batch_size=4)
    lam = [i / 10 for i in range(11)]
    assert out["values"] == lam and out["lam"] == lam
    assert out["rate_a"] == [float(v > 0.75) for v in lam]
    assert out["rate_b"] == [float(v < 0.25) for v in lam]
    assert out["neither_rate"] == [float(0.25 < v < 0.75) for v in lam]


def test_in_between_cutmix_rates_of_a_known_model():
    # A centred s x s square of b in an 8x8 a: b's share is s^2 / 64 (2 -> 1/16, 6 -> 36/64, 8 -> all).
    images, labels = _two_class_set()
    model = MeanPrototypes([0.0, 1.0, 0.5])
    out = in_between_curve(model, images, labels, "cutmix", values=[0, 2, 6, 8, 12])
    assert out["lam"] == [1.0, 1 - 4 / 64, 1 - 36 / 64, 0.0, 0.0]
    assert out["rate_a"] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert out["neither_rate"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert out["rate_b"] == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_in_between_endpoints_are_accuracy_on_a_and_b():
    model, images = _linear(seed=5, classes=3), _images(20, seed=4)
    labels = torch.arange(20) % 3
    a, b = sample_pairs(labels, 15, torch.Generator().manual_seed(7))
    pred = predict_logits(model, images).argmax(1)
    for method, values in (("mixup", [1.0, 0.0]), ("cutmix", [0, H])):
        out = in_between_curve(model, images, labels, method, values=values, num_pairs=15, seed=7, batch_size=6)
        assert out["rate_a"][0] == float((pred[a] == labels[a]).double().mean())
        assert out["rate_b"][0] == float((pred[a] == labels[b]).double().mean())
        assert out["rate_b"][1] == float((pred[b] == labels[b]).double().mean())
        for na, nb, nn_ in zip(out["rate_a"], out["rate_b"], out["neither_rate"], strict=True):
            assert abs(na + nb + nn_ - 1.0) < 1e-12
    again = in_between_curve(model, images, labels, "mixup", num_pairs=15, seed=7)
    assert again == in_between_curve(model, images, labels, "mixup", num_pairs=15, seed=7)


def test_in_between_rejects_bad_arguments():
    images, labels = _two_class_set(4)
    model = MeanPrototypes([0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="method must be one of"):
        in_between_curve(model, images, labels, "cutout")
    with pytest.raises(ValueError, match=r"mixup values .* \[0, 1\]"):
        in_between_curve(model, images, labels, "mixup", values=[0.5, 1.5])
    with pytest.raises(TypeError, match="cutmix values"):
        in_between_curve(model, images, labels, "cutmix", values=[0.5])
    with pytest.raises(ValueError, match="values is empty"):
        in_between_curve(model, images, labels, "mixup", values=[])


# -- summary and helpers ---------------------------------------------------------------------------------------------
def test_robustness_summary_is_json_ready_and_consistent():
    import json

    model, images = ModeRecorder(), _images(9, seed=6)
    labels = torch.arange(9) % 3
    out = robustness_summary(
        model,
        images,
        labels,
        epsilons=(0.0, 4 / 255),
        occlusion_sizes=[0, 4],
        cutmix_values=[0, 4],
        num_pairs=6,
        batch_size=4,
    )
    json.dumps(out)
    assert out["fgsm"]["accuracy"][0] == out["clean_accuracy"]
    assert out["occlusion"]["center"]["accuracy"][0] == out["clean_accuracy"]
    assert set(out["in_between"]) == {"mixup", "cutmix"} and out["num_samples"] == 9


def test_eval_mode_restores_mixed_modes_after_an_error():
    model = ModeRecorder().train()
    model.body[3].eval()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        assert not model.training and not model.body[0].training
        raise RuntimeError("boom")
    assert model.training and model.body[0].training and not model.body[3].training
