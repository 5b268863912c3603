"""The batch transforms (CutMix, MixUp, Cutout, RandomChoice, MixCollate) through their public contract.

Most checks use a batch whose pixels name the sample they came from (sample i is filled with i + 1) and labels
0..N-1: the output then reveals each sample's partner, pasted box and exact pixel share, and the targets can be
compared with the stated mixture without access to the transform's internals.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from _helpers import (
    LAYOUTS,
    constant_batch,
    count_box_pixels,
    decode_constant_mix,
    is_channels_last,
    label_weight,
    one_hot_ref,
    random_images,
    ref_blend,
    shares_memory,
)
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, Dataset

import cutmix
from cutmix.schedule import Linear

TRANSFORMS = {
    "cutmix": lambda **kw: cutmix.CutMix(**kw),
    "mixup": lambda **kw: cutmix.MixUp(**kw),
    "cutout": lambda **kw: cutmix.Cutout(size=3, **kw),
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _is_one_hot(targets: torch.Tensor, labels: torch.Tensor, k: int) -> bool:
    return torch.equal(targets.double(), one_hot_ref(labels, k))


# -- CutMix: targets equal the stated mixture of the exact pixel shares ------------------------------------------------
@given(
    n=st.integers(2, 8),
    c=st.sampled_from([1, 3]),
    h=st.integers(2, 20),
    w=st.integers(1, 20),
    per_sample=st.booleans(),
    box=st.sampled_from(["uniform", "gaussian", "fixed"]),
    placement=st.sampled_from(["clip", "inside"]),
    label=st.sampled_from(["area", "onehot", "complete"]),
    dtype=st.sampled_from([torch.uint8, torch.float32]),
    seed=st.integers(0, 2**31),
)
def test_cutmix_targets_are_the_stated_mixture_of_exact_pixel_shares(
    n, c, h, w, per_sample, box, placement, label, dtype, seed
):
    images = constant_batch(n, c, h, w, dtype)
    labels = torch.arange(n)
    mix = cutmix.CutMix(n, alpha=1.0, per_sample=per_sample, box=box, placement=placement, label=label,
                        generator=_gen(seed))
    out, targets = mix(images, labels)
    assert out.dtype == dtype and out.shape == images.shape
    assert targets.dtype == torch.float32 and targets.shape == (n, n)
    assert torch.allclose(targets.sum(1), torch.ones(n), atol=1e-6)
    boxes = set()
    partners = []
    for i in range(n):
        partner, share, pasted = decode_constant_mix(out, i)
        if pasted is not None:
            boxes.add(pasted)
            partners.append(partner)
        expected = torch.zeros(n, dtype=torch.float64)
        wgt = label_weight(share, label)
        expected[i] += wgt
        expected[partner] += 1.0 - wgt
        assert torch.allclose(targets[i].double(), expected, atol=1e-6, rtol=0), (i, share, partner)
    assert len(set(partners)) == len(partners), "partners come from a permutation: no sample is used twice"
    if not per_sample:
        assert len(boxes) <= 1, "per-batch mode must paste one box for the whole batch"


@pytest.mark.parametrize(("placement", "expected"), [("clip", 0.3210), ("inside", 0.5002)])
@pytest.mark.parametrize("per_sample", [False, True])
def test_cutmix_mean_pasted_area_at_32px(per_sample, placement, expected):
    """The transform's own sampling (per-batch and per-sample paths) pastes on average the exact expectations of
    test_boxes (alpha = 1, 32 px). Read from the targets of 4000 samples: sd of the mean < 0.0046; tolerance 0.025.
    """
    n, total = 4, 4000
    mix = cutmix.CutMix(n, alpha=1.0, per_sample=per_sample, placement=placement, generator=_gen(2))
    images, labels = random_images(n, 1, 32, 32, torch.uint8, seed=2), torch.arange(n)
    areas: list[float] = []
    while len(areas) < total:
        _, targets = mix(images, labels)
        off_diagonal = targets - torch.diag(torch.diagonal(targets))
        for i in range(n):
            if float(off_diagonal[i].sum()) > 0 or float(targets[i, i]) < 1:  # sample i had another partner
                areas.append(1.0 - float(targets[i, i]))
                if not per_sample:
                    break  # one box for the batch: count it once
    assert abs(sum(areas) / len(areas) - expected) < 0.025


def test_cutmix_per_sample_gives_different_boxes_per_sample():
    n, h, w = 16, 32, 32
    out, _ = cutmix.CutMix(n, per_sample=True, generator=_gen(1))(constant_batch(n, 1, h, w), torch.arange(n))
    boxes = [decode_constant_mix(out, i)[2] for i in range(n)]
    assert len({b for b in boxes if b is not None}) >= 12
    out, _ = cutmix.CutMix(n, per_sample=False, generator=_gen(1))(constant_batch(n, 1, h, w), torch.arange(n))
    assert len({decode_constant_mix(out, i)[2] for i in range(n)} - {None}) == 1


@pytest.mark.parametrize("per_sample", [False, True])
def test_cutmix_pastes_the_partners_pixels_of_a_real_batch(per_sample):
    """On random images: each output pixel is its own or its partner's, and the partner's region is a rectangle."""
    n, c, h, w = 6, 3, 9, 11
    images = random_images(n, c, h, w, torch.float32, seed=3)
    labels = torch.arange(n)
    out, targets = cutmix.CutMix(n, per_sample=per_sample, generator=_gen(3))(images, labels)
    for i in range(n):
        own = (out[i] == images[i]).all(0)
        row = targets[i].clone()
        row[i] = 0
        if bool(own.all()):
            assert targets[i, i] == 1.0
            continue
        j = int(row.argmax())
        assert torch.equal(out[i][:, ~own], images[j][:, ~own]), "pasted pixels must be the partner's"
        ys, xs = torch.nonzero(~own, as_tuple=True)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        assert count_box_pixels(box, h, w) == int((~own).sum())
        lam = 1.0 - int((~own).sum()) / (h * w)
        assert math.isclose(float(targets[i, i]), lam, abs_tol=1e-6)
        assert math.isclose(float(targets[i, j]), 1.0 - lam, abs_tol=1e-6)


def test_cutmix_soft_labels_and_smoothing():
    n, k, eps = 6, 4, 0.1
    soft = torch.softmax(torch.randn(n, k, generator=_gen(4)), 1)
    out, targets = cutmix.CutMix(k, per_sample=True, label_smoothing=eps, generator=_gen(4))(
        constant_batch(n, 3, 8, 8), soft
    )
    for i in range(n):
        j, share, _ = decode_constant_mix(out, i)
        expected = (share * soft[i].double() + (1 - share) * soft[j].double()) * (1 - eps) + eps / k
        assert torch.allclose(targets[i].double(), expected, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16], ids=str)
def test_target_dtype(dtype):
    for make in TRANSFORMS.values():
        _, targets = make(num_classes=5, target_dtype=dtype, generator=_gen(5))(
            random_images(4, 3, 8, 8), torch.tensor([0, 1, 2, 4])
        )
        assert targets.dtype == dtype
        assert torch.allclose(targets.double().sum(1), torch.ones(4, dtype=torch.float64), atol=1e-2)


def test_packed_call_equals_two_argument_call():
    images, labels = random_images(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    a = cutmix.CutMix(4, generator=_gen(6))(images, labels)
    b = cutmix.CutMix(4, generator=_gen(6))((images, labels))
    c = cutmix.CutMix(4, generator=_gen(6))([images, labels])
    assert all(torch.equal(x, y) and torch.equal(x, z) for x, y, z in zip(a, b, c, strict=True))


# -- the shared contract over all transforms ------------------------------------------------------------------------
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_same_seed_same_output_different_seed_different(name, per_sample):
    images, labels = random_images(8, 3, 12, 10, torch.uint8), torch.arange(8) % 5
    outs = [TRANSFORMS[name](num_classes=5, per_sample=per_sample, generator=_gen(s))(images, labels)
            for s in (7, 7, 8)]
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    assert not torch.equal(outs[0][0], outs[2][0])
    # a seeded transform keeps drawing: its second batch differs from its first
    mix = TRANSFORMS[name](num_classes=5, per_sample=per_sample, generator=_gen(7))
    first, second = mix(images, labels), mix(images, labels)
    assert torch.equal(first[0], outs[0][0]) and not torch.equal(first[0], second[0])


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_prob_zero_is_identity_with_one_hot_targets(name, per_sample):
    images, labels = random_images(6, 3, 7, 13, torch.uint8), torch.tensor([0, 4, 2, 2, 1, 3])
    before = images.clone()
    mix = TRANSFORMS[name](num_classes=5, prob=0.0, per_sample=per_sample, label_smoothing=0.1, generator=_gen(8))
    for _ in range(5):
        out, targets = mix(images, labels)
        assert torch.equal(out, before) and torch.equal(images, before)
        assert torch.allclose(targets.double(), one_hot_ref(labels, 5, 0.1), atol=1e-7)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_eval_mode_is_identity(name):
    images, labels = random_images(6, 3, 8, 8, torch.float32), torch.tensor([0, 4, 2, 2, 1, 3])
    mix = TRANSFORMS[name](num_classes=5, prob=1.0, generator=_gen(9)).eval()
    out, targets = mix(images, labels)
    assert torch.equal(out, images) and _is_one_hot(targets, labels, 5)
    out, _ = mix.train()(images, labels)
    assert not torch.equal(out, images)


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("per_sample", [False, True])
def test_uint8_and_channels_last_are_preserved(name, per_sample):
    images = random_images(6, 3, 7, 13, torch.uint8, "channels_last", seed=10)
    out, targets = TRANSFORMS[name](num_classes=6, per_sample=per_sample, generator=_gen(10))(images, torch.arange(6))
    assert out.dtype == torch.uint8 and is_channels_last(out) and not out.is_contiguous()
    assert targets.dtype == torch.float32
    assert not torch.equal(out, images)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=str)
@pytest.mark.parametrize("layout", [lay for lay in LAYOUTS if lay != "nchw"])
@pytest.mark.parametrize("chw", [(3, 7, 13), (1, 8, 8), (3, 1, 1)], ids=["3x7x13", "gray-8x8", "3x1x1"])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_output_does_not_depend_on_memory_layout(name, per_sample, chw, layout, dtype):
    """The same seed on the same values in another memory layout gives the same images and targets.

    Covers grayscale batches decoded as NHWC and permuted (C = 1, channels_last strides) and 1x1 maps (C x 1 x 1, as
    after global pooling), next to strided, cropped and storage-offset inputs.
    """
    c, h, w = chw
    images = random_images(6, c, h, w, dtype, layout, seed=31)
    plain = images.contiguous()
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    expected = TRANSFORMS[name](num_classes=5, per_sample=per_sample, generator=_gen(31))(plain, labels)
    out, targets = TRANSFORMS[name](num_classes=5, per_sample=per_sample, generator=_gen(31))(images, labels)
    assert torch.equal(out, expected[0]) and torch.equal(targets, expected[1])
    assert torch.equal(images, plain), "the input must be untouched"


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
def test_inplace_modifies_input_and_out_of_place_does_not(name, per_sample, layout):
    labels = torch.arange(6)
    images = random_images(6, 3, 8, 8, torch.float32, layout, seed=11)
    before = images.clone()
    out, t1 = TRANSFORMS[name](num_classes=6, per_sample=per_sample, generator=_gen(11))(images, labels)
    assert torch.equal(images, before) and not shares_memory(out, images)
    inplace_out, t2 = TRANSFORMS[name](num_classes=6, per_sample=per_sample, inplace=True, generator=_gen(11))(
        images, labels
    )
    assert inplace_out.data_ptr() == images.data_ptr()
    if name == "mixup":  # lerp from either end: equal up to float32 rounding
        assert torch.allclose(images, out, atol=1e-6, rtol=0), "inplace=True must leave the mixed batch in the input"
    else:
        assert torch.equal(images, out), "inplace=True must leave the mixed batch in the input"
    assert torch.equal(t1, t2)


@pytest.mark.parametrize("name", ["cutmix", "mixup"])
def test_per_sample_prob_mixes_about_p_of_samples(name):
    """With per_sample=True each sample is mixed with probability p.

    A selected sample visibly changes unless its partner is itself (1/n) or, for CutMix, its box is empty
    (P(side rounds to 0) = 1/1024 at 16 px, alpha = 1), so the expected share of changed samples is
    p * (1 - 1/n) * (1 - 1/1024) for CutMix. 3200 samples: sd <= 0.009; tolerance 0.04.
    """
    n, batches, p = 64, 50, 0.3
    mix = TRANSFORMS[name](num_classes=n, prob=p, per_sample=True, generator=_gen(12))
    images = random_images(n, 3, 16, 16, torch.float32, seed=12)
    changed = 0
    for _ in range(batches):
        out, targets = mix(images, torch.arange(n))
        moved = ~(out == images).flatten(1).all(1)
        changed += int(moved.sum())
        unmixed = ~moved
        assert (targets[unmixed].argmax(1) == torch.arange(n)[unmixed]).all()
        assert (targets[unmixed].max(1).values == 1.0).all(), "unmixed samples keep one-hot targets"
    expected = p * (1 - 1 / n) * (1 - 1 / 1024 if name == "cutmix" else 1.0)
    assert abs(changed / (n * batches) - expected) < 0.04


@pytest.mark.parametrize("name", ["cutmix", "mixup"])
def test_per_batch_prob_mixes_about_p_of_batches(name):
    """One draw per batch: about p of the batches are mixed (2000 batches: sd 0.0097, tolerance 5 sd).

    A drawn batch always shows a change unless its permutation is the identity (1/8!) or, for CutMix, its box is
    empty (side round(16 * sqrt(1 - lambda)) = 0: probability 1/1024), both negligible here.
    """
    n, batches, p = 8, 2000, 0.25
    mix = TRANSFORMS[name](num_classes=n, prob=p, generator=_gen(13))
    images = random_images(n, 3, 16, 16, torch.float32, seed=13)
    mixed = 0
    for _ in range(batches):
        out, targets = mix(images, torch.arange(n))
        changed = bool((out != images).any())
        assert changed != _is_one_hot(targets, torch.arange(n), n)
        mixed += changed
    assert abs(mixed / batches - p) < 5 * math.sqrt(p * (1 - p) / batches)


def test_a_sample_paired_with_itself_keeps_its_image_and_label():
    """n = 2: half of the permutations are the identity. Whenever a sample is unchanged its target is one-hot."""
    images, labels = random_images(2, 3, 6, 6, torch.float32, seed=14), torch.tensor([0, 1])
    identity_seen = 0
    for seed in range(40):
        for make in (TRANSFORMS["mixup"], TRANSFORMS["cutmix"]):
            out, targets = make(num_classes=2, generator=_gen(seed))(images, labels)
            for i in range(2):
                if torch.equal(out[i], images[i]):
                    assert targets[i].tolist() == [1.0 - i, float(i)]
            identity_seen += int(torch.equal(out, images))
    assert identity_seen >= 20


# -- MixUp ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8], ids=str)
@pytest.mark.parametrize("per_sample", [False, True])
def test_mixup_output_is_the_convex_combination_in_the_targets(per_sample, dtype):
    n = 8
    images = random_images(n, 3, 5, 7, dtype, seed=15)
    out, targets = cutmix.MixUp(n, alpha=1.0, per_sample=per_sample, generator=_gen(15))(images, torch.arange(n))
    lams, partners = [], []
    for i in range(n):
        row = targets[i].double().clone()
        lam = float(row[i])
        row[i] = 0
        partners.append(int(row.argmax()) if float(row.max()) > 0 else i)
        lams.append(lam)
    moved = [partners[i] for i in range(n) if partners[i] != i]
    assert len(set(moved)) == len(moved), "partners come from a permutation"
    index = torch.tensor(partners)
    exact = ref_blend(images, lams, index)
    tol = 0.5 + 1e-4 if dtype == torch.uint8 else 1e-6
    assert float((out.double() - exact).abs().max()) <= tol
    if per_sample:
        assert len({round(v, 6) for v in lams}) > n // 2
    else:
        assert len({round(lams[i], 6) for i in range(n) if partners[i] != i}) == 1


# -- Cutout -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("placement", ["clip", "inside"])
@pytest.mark.parametrize("per_sample", [False, True])
def test_cutout_fills_a_box_and_keeps_the_rest(per_sample, placement):
    n, h, w, size = 8, 9, 12, 4
    images = random_images(n, 3, h, w, torch.float32, seed=16)  # values in [0, 1): never equal to -1
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    out, targets = cutmix.Cutout(4, size=size, per_sample=per_sample, value=-1.0, placement=placement,
                                 generator=_gen(16))(images, labels)
    assert _is_one_hot(targets, labels, 4)
    boxes = set()
    for i in range(n):
        filled = (out[i] == -1.0).all(0)
        assert torch.equal(out[i][:, ~filled], images[i][:, ~filled]), "outside the box nothing changes"
        assert bool((out[i][:, filled] == -1.0).all())
        ys, xs = torch.nonzero(filled, as_tuple=True)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        assert count_box_pixels(box, h, w) == int(filled.sum())
        assert box[2] - box[0] <= size and box[3] - box[1] <= size
        if placement == "inside":
            assert int(filled.sum()) == size * size
        boxes.add(box)
    assert (len(boxes) == 1) != per_sample


def test_cutout_uint8_value():
    images = random_images(4, 3, 8, 8, torch.uint8, seed=17)
    out, _ = cutmix.Cutout(4, size=8, value=255, placement="inside", generator=_gen(17))(images, torch.arange(4))
    assert out.dtype == torch.uint8 and bool((out == 255).all())


# -- RandomChoice -----------------------------------------------------------------------------------------------------
class Tag(nn.Module):
    """A stand-in transform that records how often it ran and the step it was given."""

    def __init__(self, name: int) -> None:
        super().__init__()
        self.name = name
        self.calls = 0
        self.steps: list[int] = []
        self.step = 0

    def forward(self, images, labels):
        self.calls += 1
        self.steps.append(self.step)
        return images, torch.full((labels.shape[0], 1), float(self.name))


def test_random_choice_frequencies():
    """5000 draws: each count is binomial with sd <= sqrt(5000 / 4) = 35; tolerance 5 sd."""
    p = [0.2, 0.3, 0.5]
    tags = [Tag(i) for i in range(3)]
    choice = cutmix.RandomChoice(tags, p=p, generator=_gen(18))
    images, labels = torch.zeros(2, 1, 1, 1), torch.zeros(2, dtype=torch.long)
    trials = 5000
    for _ in range(trials):
        choice(images, labels)
    for tag, pi in zip(tags, p, strict=True):
        assert abs(tag.calls - trials * pi) < 5 * math.sqrt(trials * pi * (1 - pi))
    assert choice.step == trials
    # the chosen transform sees the global step count, whichever ran before
    assert sorted(s for t in tags for s in t.steps) == list(range(trials))


def test_random_choice_zero_probability_is_never_chosen_and_default_is_uniform():
    tags = [Tag(0), Tag(1)]
    choice = cutmix.RandomChoice(tags, p=[0.0, 1.0], generator=_gen(19))
    for _ in range(200):
        choice(torch.zeros(2, 1, 1, 1), torch.zeros(2, dtype=torch.long))
    assert tags[0].calls == 0 and tags[1].calls == 200
    tags = [Tag(0), Tag(1), Tag(2), Tag(3)]
    choice = cutmix.RandomChoice(tags, generator=_gen(20))
    for _ in range(4000):
        choice(torch.zeros(2, 1, 1, 1), torch.zeros(2, dtype=torch.long))
    assert all(abs(t.calls - 1000) < 5 * math.sqrt(4000 * 0.25 * 0.75) for t in tags)


def test_random_choice_with_real_transforms():
    n = 8
    choice = cutmix.RandomChoice(
        [cutmix.CutMix(n, generator=_gen(21)), cutmix.MixUp(n, generator=_gen(22))], p=[0.5, 0.5],
        generator=_gen(23),
    )
    images = constant_batch(n, 3, 8, 8, torch.float32)
    kinds = set()
    for _ in range(30):
        out, targets = choice(images, torch.arange(n))
        assert torch.allclose(targets.sum(1), torch.ones(n), atol=1e-6)
        values = set(out.flatten().tolist())
        kinds.add("cutmix" if values <= set(range(1, n + 1)) else "mixup")
    assert kinds == {"cutmix", "mixup"}


# -- state_dict -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_state_dict_round_trip_reproduces_the_next_outputs(name):
    images, labels = random_images(8, 3, 9, 9, torch.uint8, seed=24), torch.arange(8)
    make = TRANSFORMS[name]
    mix = make(num_classes=8, per_sample=True, prob=Linear(0.0, 1.0, 6), generator=_gen(24))
    for _ in range(3):
        mix(images, labels)
    state = copy.deepcopy(mix.state_dict())
    expected = [mix(images, labels) for _ in range(4)]
    resumed = make(num_classes=8, per_sample=True, prob=Linear(0.0, 1.0, 6), generator=_gen(999))
    resumed.load_state_dict(state)
    assert resumed.step == 3
    for exp in expected:
        got = resumed(images, labels)
        assert torch.equal(got[0], exp[0]) and torch.equal(got[1], exp[1])


def test_random_choice_state_dict_round_trip():
    def build(seed):
        return cutmix.RandomChoice([cutmix.CutMix(8, generator=_gen(seed)), cutmix.MixUp(8, generator=_gen(seed + 1))],
                                   p=[0.4, 0.6], generator=_gen(seed + 2))

    images, labels = random_images(8, 3, 6, 6, torch.float32, seed=25), torch.arange(8)
    choice = build(25)
    for _ in range(5):
        choice(images, labels)
    state = copy.deepcopy(choice.state_dict())
    expected = [choice(images, labels) for _ in range(6)]
    resumed = build(500)
    resumed.load_state_dict(state)
    for exp in expected:
        got = resumed(images, labels)
        assert torch.equal(got[0], exp[0]) and torch.equal(got[1], exp[1])


# -- schedules on a transform ----------------------------------------------------------------------------------------
def test_schedule_is_called_with_the_step_count_and_eval_does_not_advance_it():
    seen: list[int] = []

    def schedule(step: int) -> float:
        seen.append(step)
        return 0.5

    mix = cutmix.CutMix(4, prob=schedule, generator=_gen(26))
    images, labels = random_images(4, 3, 6, 6), torch.arange(4)
    for _ in range(3):
        mix(images, labels)
    mix.eval()
    mix(images, labels)
    mix.train()
    mix(images, labels)
    assert seen == [0, 1, 2, 3] and mix.step == 4


def test_linear_schedule_makes_mixing_more_frequent():
    """Linear(0, 1, 400): the expected mixing frequency is 0.125 over the first 100 batches and 0.875 over the last."""
    total = 400
    mix = cutmix.CutMix(8, prob=Linear(0.0, 1.0, total), generator=_gen(27))
    images, labels = random_images(8, 3, 8, 8, seed=27), torch.arange(8)
    mixed = []
    for _ in range(total):
        _, targets = mix(images, labels)
        mixed.append(not _is_one_hot(targets, labels, 8))
    quarters = [sum(mixed[i : i + 100]) / 100 for i in range(0, total, 100)]
    assert quarters == sorted(quarters), quarters
    assert quarters[0] < 0.25 and quarters[-1] > 0.75
    assert abs(quarters[0] - 0.125) < 0.1 and abs(quarters[-1] - 0.875) < 0.1
    # afterwards the ramp stays at its end value
    assert mix.step == total and mix.prob(mix.step) == 1.0 and mix.prob(10 * total) == 1.0


# -- MixCollate in a DataLoader --------------------------------------------------------------------------------------
class RepeatingImages(Dataset):
    """32 items; item i depends only on i % 8, so every batch of 8 has identical content."""

    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int):
        k = i % 8
        return torch.full((3, 8, 8), 10 * (k + 1), dtype=torch.uint8), k


def _loader(num_workers: int, loader_seed: int, mix_seed: int = 0):
    mix = cutmix.CutMix(8, per_sample=True, generator=_gen(mix_seed))
    return DataLoader(RepeatingImages(), batch_size=8, collate_fn=cutmix.MixCollate(mix), num_workers=num_workers,
                      generator=_gen(loader_seed))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_mix_collate_in_a_dataloader(num_workers):
    batches = list(_loader(num_workers, 0))
    assert len(batches) == 4
    for images, targets in batches:
        assert images.dtype == torch.uint8 and images.shape == (8, 3, 8, 8)
        assert targets.dtype == torch.float32 and targets.shape == (8, 8)
        assert torch.allclose(targets.sum(1), torch.ones(8), atol=1e-6)
        for i in range(8):  # the pixels name the sample: value 10 * (label + 1)
            own = images[i, 0] == 10 * (i + 1)
            share = float(own.double().mean())
            assert math.isclose(float(targets[i, i]), share, abs_tol=1e-6)
    assert any(not _is_one_hot(t, torch.arange(8), 8) for _, t in batches)


def test_mix_collate_workers_draw_different_boxes_and_seeded_loaders_repeat():
    a = list(_loader(2, 0))
    # batches 0 and 1 have the same content and come from worker 0 and worker 1: each worker re-seeds its own stream
    assert not torch.equal(a[0][0], a[1][0])
    # the same loader seed reproduces every batch, another one changes them
    b = list(_loader(2, 0))
    c = list(_loader(2, 1))
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c, strict=True))
