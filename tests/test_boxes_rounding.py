"""``rounding="reference"``: the released code's box arithmetic, for exact reproduction; the default is unchanged."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

import cutmix
from cutmix import boxes as B
from cutmix import sampling


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _reference_boxes(n: int, height: int, width: int, seed: int) -> list[tuple[int, int, int, int]]:
    """The released ``rand_bbox`` arithmetic written out plainly, on the same draws as the sampler (lambda, then
    centres): ``cut = int(side * sqrt(1 - lam))``, centre a uniform pixel, box ``clip(c -+ cut // 2, 0, side)``."""
    g = _gen(seed)
    lams = sampling.beta(1.0, n, g).tolist()
    centres = (torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([width, height])).long().tolist()
    out = []
    for lam, (cx, cy) in zip(lams, centres, strict=True):
        cut_rat = math.sqrt(1.0 - lam)
        cut_w, cut_h = int(width * cut_rat), int(height * cut_rat)
        x0, x1 = min(max(cx - cut_w // 2, 0), width), min(max(cx + cut_w // 2, 0), width)
        y0, y1 = min(max(cy - cut_h // 2, 0), height), min(max(cy + cut_h // 2, 0), height)
        out.append((x0, y0, x1, y1))
    return out


@pytest.mark.parametrize(("height", "width"), [(32, 32), (17, 23), (224, 160)])
def test_reference_rounding_matches_a_transcription_of_the_released_arithmetic(height, width):
    got = B.sample_boxes(2000, height, width, rounding="reference", generator=_gen(5)).tolist()
    assert [tuple(b) for b in got] == _reference_boxes(2000, height, width, 5)


def test_reference_boxes_have_even_sides_before_clipping():
    lam = torch.linspace(0, 1, 101, dtype=torch.float64)
    sides = B.box_sides(lam, 31, 33, rounding="reference")
    assert (sides % 2 == 0).all()
    assert sides[0].tolist() == [32, 30]  # int(33) -> 32, int(31) -> 30: one pixel lost on each odd side
    exact = B.box_sides(lam, 31, 33)
    assert (exact - sides).ge(-1).all() and (exact - sides).le(2).all()


def test_sample_box_agrees_with_sample_boxes_in_reference_mode():
    for seed in range(200):
        for kind in ("uniform", "gaussian", "fixed"):
            for placement in ("clip", "inside"):
                kw = {"kind": kind, "placement": placement, "rounding": "reference", "size": 0.55}
                one = B.sample_box(29, 37, generator=_gen(seed), **kw)
                assert one == tuple(B.sample_boxes(1, 29, 37, generator=_gen(seed), **kw)[0].tolist()), (seed, kw)


def test_default_rounding_is_bit_identical_to_exact():
    for kind in ("uniform", "gaussian", "fixed"):
        for placement in ("clip", "inside"):
            kw = {"kind": kind, "placement": placement, "size": 0.55}
            default = B.sample_boxes(500, 31, 45, generator=_gen(11), **kw)
            assert torch.equal(default, B.sample_boxes(500, 31, 45, rounding="exact", generator=_gen(11), **kw))
            assert B.sample_box(31, 45, generator=_gen(3), **kw) == B.sample_box(31, 45, rounding="exact",
                                                                                   generator=_gen(3), **kw)
    x = torch.rand(8, 3, 32, 32, generator=_gen(0))
    y = torch.arange(8) % 4
    for per_sample in (False, True):
        a = cutmix.CutMix(4, per_sample=per_sample, generator=_gen(9))(x, y)
        b = cutmix.CutMix(4, per_sample=per_sample, rounding="exact", generator=_gen(9))(x, y)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def _exact_mean_kept(side: int, rounding: str) -> Fraction:
    """E[lambda] (the kept share) at alpha=1, clip placement, as an exact fraction: r^2 = 1 - lambda ~ U(0, 1), so
    P(side * r in [a, b)) = (b^2 - a^2) / side^2; the centre is uniform per axis and the box square."""
    pasted = Fraction(0)
    for k in range(side + 1):
        if rounding == "exact":  # side * r rounds to k
            a, b = Fraction(2 * k - 1, 2), Fraction(2 * k + 1, 2)
        else:  # side * r truncates to k
            a, b = Fraction(k), Fraction(k + 1)
        a, b = max(a, Fraction(0)), min(b, Fraction(side))
        if b <= a:
            continue
        s = k if rounding == "exact" else 2 * (k // 2)
        length = Fraction(sum(min(c - s // 2 + s, side) - max(c - s // 2, 0) for c in range(side)), side)
        pasted += (b * b - a * a) / side**2 * (length / side) ** 2
    return 1 - pasted


def test_mean_kept_share_at_32px_exact_and_reference():
    """The issue's numbers: kept share 0.679 (ours), 0.701 (the released code) at 32x32, alpha=1."""
    assert round(float(_exact_mean_kept(32, "exact")), 4) == 0.6790  # mean pasted area 0.3210
    assert round(float(_exact_mean_kept(32, "reference")), 4) == 0.7007
    n = 200_000
    for rounding, expected in (("exact", 0.679), ("reference", 0.701)):
        lam = B.box_lambda(B.sample_boxes(n, 32, 32, rounding=rounding, generator=_gen(2019)), 32, 32)
        se = float(lam.std()) / math.sqrt(n)  # about 0.0007
        assert abs(float(lam.mean()) - float(_exact_mean_kept(32, rounding))) < 5 * se
        assert abs(float(lam.mean()) - expected) < 0.003


def test_rounding_rejects_unknown_modes():
    with pytest.raises(ValueError, match="rounding"):
        B.sample_boxes(2, 8, 8, rounding="floor")
    with pytest.raises(ValueError, match="rounding"):
        B.sample_box(8, 8, rounding="nearest")
    with pytest.raises(ValueError, match="rounding"):
        cutmix.CutMix(4, rounding="timm")


def test_the_rounding_flag_reaches_the_run_and_its_transform(tmp_path) -> None:
    import json

    from cutmix.cli import main
    from cutmix.run.config import MixConfig
    from cutmix.train.mixing import build_transform

    assert build_transform(MixConfig(rounding="reference"), 10, 100, 0.0).rounding == "reference"
    assert build_transform(MixConfig(), 10, 100, 0.0).rounding == "exact"
    code = main(["train", "--rounding", "reference", "--max-steps", "1", "--train-samples", "64", "--val-samples",
                 "32", "--batch-size", "32", "--threads", "1", "--no-progress", "--out", str(tmp_path)])
    assert code == 0
    (run,) = tmp_path.iterdir()
    assert run.name == "shapes-resnet20-cutmix-reference-s0"
    assert json.loads((run / "config.json").read_text())["mix"]["rounding"] == "reference"
