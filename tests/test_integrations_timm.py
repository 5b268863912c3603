"""The timm-compatible Mixup: exact pixel shares in every mode (odd batches too), timm's defaults and λ statistics."""

from __future__ import annotations

import argparse
import inspect

import numpy as np
import pytest
import torch

from cutmix.integrations.timm import (
    FastCollateMixup,
    Mixup,
    add_timm_flags,
    mixup_from_flags,
    sample_timm_boxes,
    timm_flags,
)

CONFIGS = {
    "cutmix": {"mixup_alpha": 0.0, "cutmix_alpha": 1.0},
    "mixup": {"mixup_alpha": 0.8, "cutmix_alpha": 0.0},
    "switch": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0},
    "minmax": {"mixup_alpha": 0.0, "cutmix_minmax": (0.2, 0.8)},
}


def tagged(n: int, h: int = 12, w: int = 10, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Image i has the value 10 * (i + 1) in every pixel, so that each output pixel tells whose share it holds."""
    return (10.0 * torch.arange(1, n + 1, dtype=torch.float64)).view(n, 1, 1, 1).expand(n, 3, h, w).to(dtype)


def own_share(mixed: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per sample, the share of its own image in the output, from the per-pixel weight (x - x_p) / (x_i - x_p)."""
    n = images.shape[0]
    shares = torch.empty(n, dtype=torch.float64)
    for i in range(n):
        j = n - 1 - i
        if i == j:  # the middle of an odd batch is its own partner
            assert torch.equal(mixed[i], images[i])
            shares[i] = 1.0
            continue
        a, b = images[i].double(), images[j].double()
        shares[i] = ((mixed[i].double() - b) / (a - b)).mean()
    return shares


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("n", [7, 8])
def test_targets_are_the_exact_pixel_share(mode, config, n):
    labels = torch.arange(n)
    images = tagged(n)
    mix = Mixup(**CONFIGS[config], prob=0.8, mode=mode, label_smoothing=0.0, num_classes=n,
                generator=torch.Generator().manual_seed(n))
    seen_mixed = 0
    for _ in range(6):
        before = images.clone()
        mixed, targets = mix(images, labels)
        assert torch.equal(images, before)  # out of place
        assert targets.dtype == torch.float32 and targets.shape == (n, n)
        share = own_share(mixed, images)
        partner = labels.flip(0)
        torch.testing.assert_close(targets[labels, labels].double(), share, atol=1e-6, rtol=0)
        off = targets.clone()
        off[labels, labels] = 0
        off[labels, partner] = 0
        assert off.abs().max() == 0  # nothing but the two labels
        torch.testing.assert_close(targets.sum(1), torch.ones(n), atol=1e-6, rtol=0)
        seen_mixed += int((share < 1).sum())
        if mode == "pair":  # the two samples of a pair keep the same share
            torch.testing.assert_close(share[: n // 2], share.flip(0)[: n // 2])
            if n % 2:
                assert share[n // 2] == 1.0
    assert seen_mixed > 0


def test_cutmix_pixels_are_counted_exactly_on_uint8_and_bf16():
    n = 5
    for dtype in (torch.uint8, torch.bfloat16):
        images = tagged(n, 13, 11, dtype)
        mix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", label_smoothing=0.0, num_classes=n,
                    generator=torch.Generator().manual_seed(3))
        mixed, targets = mix(images, torch.arange(n))
        assert mixed.dtype == dtype and targets.dtype == torch.float32
        for i in range(n):
            kept = (mixed[i] == images[i, 0, 0, 0]).double().mean()  # exact pixel count, not a rounded λ
            assert abs(float(targets[i, i]) - float(kept)) < 1e-7 or i == n // 2


def test_label_smoothing_matches_timm_formula():
    n, k, s = 6, 10, 0.1
    labels = torch.tensor([1, 2, 3, 4, 5, 6])
    mix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=s, num_classes=k,
                generator=torch.Generator().manual_seed(0))
    mixed, targets = mix(tagged(n), labels)
    lam = float(own_share(mixed, tagged(n))[0])
    off, on = s / k, 1 - s + s / k
    expected = torch.full((n, k), off, dtype=torch.float64)
    expected[torch.arange(n), labels] = on * lam + off * (1 - lam)
    expected[torch.arange(n), labels.flip(0)] = on * (1 - lam) + off * lam
    torch.testing.assert_close(targets.double(), expected, atol=1e-6, rtol=0)
    mix.eval()
    same, onehot = mix(tagged(n), labels)
    assert torch.equal(same, tagged(n))
    assert torch.allclose(onehot.max(1).values, torch.full((n,), on))


def test_multi_label_targets():
    n, k = 4, 3
    dense = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    mix = Mixup(mixup_alpha=1.0, label_smoothing=0.2, num_classes=k, multi_label=True,
                generator=torch.Generator().manual_seed(1))
    mixed, targets = mix(tagged(n), dense)
    lam = own_share(mixed, tagged(n))
    y = dense.double() * 0.8 + 0.1
    torch.testing.assert_close(targets.double(), lam[:, None] * y + (1 - lam[:, None]) * y.flip(0), atol=1e-6,
                               rtol=0)
    with pytest.raises(ValueError, match=r"target must be dense multi-labels \[4, 3\]"):
        mix(tagged(n), torch.arange(n))


def test_defaults_and_signature_match_timm():
    timm = pytest.importorskip("timm")
    theirs = inspect.signature(timm.data.Mixup.__init__).parameters
    ours = inspect.signature(Mixup.__init__).parameters
    positional = [p for p in ours.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional][: len(theirs)] == list(theirs)  # same names in the same order
    for name, p in theirs.items():
        assert ours[name].default == p.default, name
    assert all(p.kind == p.KEYWORD_ONLY for p in ours.values() if p.name not in theirs)


def own_weights(fn, n: int, calls: int, size: int = 32) -> torch.Tensor:
    labels = torch.arange(n)
    return torch.cat([fn(torch.zeros(n, 1, size, size), labels)[1][labels, labels] for _ in range(calls)]).double()


@pytest.mark.parametrize("mode,n,calls", [("batch", 2, 800), ("pair", 32, 40), ("elem", 32, 40)])
@pytest.mark.parametrize("config", ["cutmix", "switch", "minmax"])
def test_mean_lambda_matches_timm(mode, n, calls, config):
    timm = pytest.importorskip("timm")
    kwargs = {**CONFIGS[config], "mode": mode, "label_smoothing": 0.0, "num_classes": n, "prob": 0.9}
    np.random.seed(0)
    theirs = own_weights(timm.data.Mixup(**kwargs), n, calls)
    ours = own_weights(Mixup(**kwargs, generator=torch.Generator().manual_seed(0)), n, calls)
    se = (theirs.var() / len(theirs) + ours.var() / len(ours)).sqrt()
    assert abs(float(theirs.mean() - ours.mean())) < 4 * float(se), (float(theirs.mean()), float(ours.mean()))
    assert abs(float(theirs.std() / ours.std()) - 1) < 0.15


def test_boxes_follow_timm_geometry():
    g = torch.Generator().manual_seed(0)
    lam = torch.rand(2000, generator=g, dtype=torch.float64)
    boxes = sample_timm_boxes(lam, 20, 30, generator=g)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ratio = (1 - lam).sqrt()
    assert (w <= (30 * ratio).floor()).all() and (h <= (20 * ratio).floor()).all()
    inside = (boxes[:, 0] > 0) & (boxes[:, 1] > 0) & (boxes[:, 2] < 30) & (boxes[:, 3] < 20)
    assert torch.equal(w[inside], (30 * ratio[inside]).floor().long())  # unclipped boxes have timm's int() sides
    mm = sample_timm_boxes(lam, 20, 30, (0.2, 0.8), g)
    w, h = mm[:, 2] - mm[:, 0], mm[:, 3] - mm[:, 1]
    assert int(h.min()) == 4 and int(h.max()) == 15 and int(w.min()) == 6 and int(w.max()) == 23
    assert (mm[:, :2] >= 0).all() and (mm[:, 2] <= 30).all() and (mm[:, 3] <= 20).all()


def test_generator_state_round_trip_and_off_epoch():
    a = Mixup(cutmix_alpha=1.0, mode="elem", num_classes=5, generator=torch.Generator().manual_seed(5), off_epoch=3)
    a(tagged(5), torch.arange(5))
    state = a.state_dict()
    b = Mixup(cutmix_alpha=1.0, mode="elem", num_classes=5, generator=torch.Generator().manual_seed(99))
    b.load_state_dict(state)
    xa, ta = a(tagged(5), torch.arange(5))
    xb, tb = b(tagged(5), torch.arange(5))
    assert torch.equal(xa, xb) and torch.equal(ta, tb)
    a.set_epoch(2)
    assert a.mixup_enabled
    a.set_epoch(3)
    assert not a.mixup_enabled
    same, _ = a(tagged(5), torch.arange(5))
    assert torch.equal(same, tagged(5))


@pytest.mark.parametrize("mode", ["batch", "pair", "elem", "half"])
def test_fast_collate_on_uint8_items(mode):
    n, rng = 7, np.random.default_rng(0)
    items = []
    for i in range(n):
        hwc = np.full((9, 8, 3), 20 * (i + 1), dtype=np.uint8)
        items.append((hwc if i % 2 else torch.from_numpy(hwc).permute(2, 0, 1).contiguous(), i))
    collate = FastCollateMixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode=mode, label_smoothing=0.0, num_classes=n,
                               generator=torch.Generator().manual_seed(int(rng.integers(100))))
    images, targets = collate(items)
    size = n // 2 if mode == "half" else n
    assert images.dtype == torch.uint8 and images.shape == (size, 3, 9, 8) and targets.shape == (size, n)
    for i in range(size):
        kept = (images[i] == 20 * (i + 1)).double().mean()
        assert abs(float(targets[i, i]) - float(kept)) < 1e-7
        assert abs(float(targets[i, n - 1 - i]) - (1 - float(kept))) < 1e-7 or i == n - 1 - i
    chw = FastCollateMixup(cutmix_alpha=1.0, mixup_alpha=0.0, num_classes=n, numpy_layout="CHW")
    images, _ = chw([(np.zeros((3, 9, 8), np.uint8), 0), (np.zeros((3, 9, 8), np.uint8), 1)])
    assert images.shape == (2, 3, 9, 8)
    with pytest.raises(TypeError, match=r"batch\[1\] image must be uint8"):
        collate([items[0], (torch.zeros(3, 9, 8), 1)])


def test_timm_flags_build_the_same_mixup():
    flags = {f.flag: f.default for f in timm_flags()}
    assert flags == {"--mixup": 0.0, "--cutmix": 0.0, "--cutmix-minmax": None, "--mixup-prob": 1.0,
                     "--mixup-switch-prob": 0.5, "--mixup-mode": "batch", "--mixup-off-epoch": 0, "--smoothing": 0.1}
    parser = argparse.ArgumentParser()
    add_timm_flags(parser)
    args = parser.parse_args(["--mixup", "0.8", "--cutmix", "1.0", "--mixup-mode", "elem", "--mixup-switch-prob", "0.3",
                              "--smoothing", "0.05", "--mixup-off-epoch", "4"])
    mix = mixup_from_flags(args, num_classes=10)
    assert (mix.mixup_alpha, mix.cutmix_alpha, mix.mode, mix.switch_prob, mix.label_smoothing, mix.off_epoch,
            mix.num_classes) == (0.8, 1.0, "elem", 0.3, 0.05, 4, 10)
    assert mixup_from_flags(parser.parse_args([]), num_classes=10) is None  # timm's train.py: no mixing by default
    mm = mixup_from_flags({"cutmix_minmax": [0.2, 0.8], "epochs": 90}, num_classes=10)
    assert mm.cutmix_minmax == (0.2, 0.8) and mm.cutmix_alpha == 1.0 and mm.mixup_alpha == 0.0
    with pytest.raises(ValueError, match="cutmix_minmax must be None or a pair"):
        mixup_from_flags({"cutmix_minmax": [0.2, 0.5, 0.8]}, num_classes=10)


@pytest.mark.parametrize("kwargs,match", [
    ({"correct_lam": False}, "correct_lam must be True"),
    ({"mode": "half"}, "mode must be one of 'batch', 'pair', 'elem'"),
    ({"mixup_alpha": 0.0}, "nothing would be mixed"),
    ({"prob": 1.5}, r"prob must be in \[0.0, 1.0\]"),
    ({"num_classes": 0}, "num_classes must be >= 1, got 0"),
    ({"cutmix_minmax": (0.8, 0.2)}, "min < max"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Mixup(**kwargs)


def test_minmax_too_small_for_the_image_is_named():
    mix = Mixup(cutmix_minmax=(0.30, 0.32), mixup_alpha=0.0, num_classes=2)
    with pytest.raises(ValueError, match=r"cutmix_minmax=\(0.3, 0.32\) leaves no box size for a 4x4 image"):
        mix(torch.zeros(2, 3, 4, 4), torch.arange(2))


@pytest.mark.parametrize("mode", ["pair", "elem"])
def test_switch_mode_layouts_and_uint8_rounding(mode):
    n = 9
    base = torch.randint(0, 256, (n, 3, 10, 12), generator=torch.Generator().manual_seed(0))

    def run(images):
        mix = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=n,
                    generator=torch.Generator().manual_seed(4))
        return mix(images, torch.arange(n))

    ref, ref_targets = run(base.double())
    cl, cl_targets = run(base.double().contiguous(memory_format=torch.channels_last))
    assert torch.equal(cl, ref) and torch.equal(cl_targets, ref_targets)
    u8, u8_targets = run(base.to(torch.uint8))
    assert u8.dtype == torch.uint8 and torch.equal(u8_targets, ref_targets)
    assert (u8.double() - ref.round()).abs().max() <= 1  # float32 arithmetic may round a .5 the other way
    assert (u8.double() - ref).abs().max() <= 0.5 + 1e-4
