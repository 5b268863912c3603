"""Box sampling and the area -> lambda rule (cutmix.boxes): exact identities, properties and seeded statistics."""

from __future__ import annotations

import math

import pytest
import torch
from _helpers import constant_batch, count_box_pixels
from hypothesis import given
from hypothesis import strategies as st

from cutmix import boxes as B
from cutmix import functional as F


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_valid(boxes: torch.Tensor, h: int, w: int) -> None:
    assert boxes.dtype == torch.int64 and boxes.shape[-1] == 4
    x0, y0, x1, y1 = boxes.unbind(-1)
    assert bool(((x0 >= 0) & (x0 <= x1) & (x1 <= w)).all()), boxes
    assert bool(((y0 >= 0) & (y0 <= y1) & (y1 <= h)).all()), boxes


# -- box_area / box_lambda -----------------------------------------------------------------------------------------
def test_box_lambda_examples():
    boxes = torch.tensor([[0, 0, 16, 16], [0, 0, 32, 32], [5, 5, 5, 20], [0, 0, 0, 0], [3, 4, 10, 6]])
    assert B.box_area(boxes).tolist() == [256, 1024, 0, 0, 14]
    lam = B.box_lambda(boxes, 32, 32)
    assert lam.dtype == torch.float64
    assert lam.tolist() == [0.75, 0.0, 1.0, 1.0, 1 - 14 / 1024]
    assert float(B.box_lambda(torch.tensor([0, 0, 13, 7]), 7, 13)) == 0.0  # a [4] box gives a scalar


@given(h=st.integers(1, 24), w=st.integers(1, 24), n=st.integers(2, 4), data=st.data())
def test_box_lambda_is_the_exact_pixel_share_of_the_paste(h, w, n, data):
    """Paste from a batch whose pixels name their sample, count what arrived: it must equal 1 - box_lambda."""
    rows = []
    for _ in range(n):
        x0, y0 = data.draw(st.integers(0, w)), data.draw(st.integers(0, h))
        rows.append([x0, y0, data.draw(st.integers(x0, w)), data.draw(st.integers(y0, h))])
    boxes = torch.tensor(rows)
    images = constant_batch(n, 2, h, w)
    index = torch.roll(torch.arange(n), 1)
    out = F.paste(images, boxes, index)
    lam = B.box_lambda(boxes, h, w)
    for i in range(n):
        own = int((out[i, 0] == i + 1).sum())  # the partner (i - 1) is always another sample
        pasted = h * w - own
        assert pasted == count_box_pixels(tuple(rows[i]), h, w)
        assert float(lam[i]) == 1.0 - pasted / (h * w)


# -- box_sides / place_boxes ----------------------------------------------------------------------------------------
def test_box_sides_round_and_follow_width_and_height():
    lam = torch.tensor([0.0, 0.75, 1.0, 0.5], dtype=torch.float64)
    sides = B.box_sides(lam, 10, 40)  # (w, h) per sample
    assert sides.dtype == torch.int64
    r = [math.sqrt(1 - v) for v in lam.tolist()]
    assert sides.tolist() == [[round(40 * q), round(10 * q)] for q in r]  # W scales with width, H with height
    # the reference code's int(W * sqrt(1 - lam)) // 2 on both sides made odd boxes one pixel narrower: not here
    odd = B.box_sides(torch.tensor([1 - (7 / 13) ** 2], dtype=torch.float64), 13, 13)
    assert odd.tolist() == [[7, 7]]


def _ref_place(cx, cy, bw, bh, h, w, placement):
    """A box of bw x bh around (cx, cy), written from the documented rule, clipped or shifted inside."""
    x0, y0 = cx - bw // 2, cy - bh // 2
    if placement == "inside":
        x0 = min(max(x0, 0), w - bw)
        y0 = min(max(y0, 0), h - bh)
    # clip: the pixels of the unclipped box that are inside the image
    xs = [x for x in range(x0, x0 + bw) if 0 <= x < w]
    ys = [y for y in range(y0, y0 + bh) if 0 <= y < h]
    if not xs or not ys:
        return None, 0
    return (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1), len(xs) * len(ys)


@given(h=st.integers(1, 20), w=st.integers(1, 20), placement=st.sampled_from(["clip", "inside"]), data=st.data())
def test_place_boxes_matches_pixel_reference(h, w, placement, data):
    n = 5
    cx = [data.draw(st.integers(0, w - 1)) for _ in range(n)]
    cy = [data.draw(st.integers(0, h - 1)) for _ in range(n)]
    bw = [data.draw(st.integers(0, w)) for _ in range(n)]
    bh = [data.draw(st.integers(0, h)) for _ in range(n)]
    boxes = B.place_boxes(torch.tensor([cx, cy]).T, torch.tensor([bw, bh]).T, h, w, placement)
    _assert_valid(boxes, h, w)
    lam = B.box_lambda(boxes, h, w)
    for i in range(n):
        ref_box, ref_area = _ref_place(cx[i], cy[i], bw[i], bh[i], h, w, placement)
        area = int(B.box_area(boxes[i]))
        assert area == ref_area
        if ref_box is not None:
            assert tuple(boxes[i].tolist()) == ref_box
        if placement == "inside":
            assert area == bw[i] * bh[i], "inside placement must never cut the box"
        assert float(lam[i]) == 1.0 - ref_area / (h * w)


def test_place_boxes_clip_at_every_border():
    h, w = 7, 13
    centres = torch.tensor([[0, 0], [12, 6], [0, 6], [12, 0], [6, 3]])  # (cx, cy): the four corners, the middle
    sides = torch.tensor([[5, 5]] * 5)
    boxes = B.place_boxes(centres, sides, h, w, "clip")
    assert boxes.tolist() == [[0, 0, 3, 3], [10, 4, 13, 7], [0, 4, 3, 7], [10, 0, 13, 3], [4, 1, 9, 6]]
    assert B.box_lambda(boxes, h, w).tolist() == [1 - 9 / 91] * 4 + [1 - 25 / 91]
    inside = B.place_boxes(centres, sides, h, w, "inside")
    assert inside.tolist() == [[0, 0, 5, 5], [8, 2, 13, 7], [0, 2, 5, 7], [8, 0, 13, 5], [4, 1, 9, 6]]


# -- sample_boxes ---------------------------------------------------------------------------------------------------
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    alpha=st.floats(0.05, 8.0),
    kind=st.sampled_from(["uniform", "gaussian", "fixed"]),
    placement=st.sampled_from(["clip", "inside"]),
    size=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_sample_boxes_are_valid_and_lambda_exact(h, w, alpha, kind, placement, size, seed):
    n = 16
    boxes = B.sample_boxes(n, h, w, alpha=alpha, kind=kind, placement=placement, size=size, generator=_gen(seed))
    assert boxes.shape == (n, 4)
    _assert_valid(boxes, h, w)
    lam = B.box_lambda(boxes, h, w)
    for i in range(n):
        assert float(lam[i]) == 1.0 - count_box_pixels(tuple(boxes[i].tolist()), h, w) / (h * w)
    if kind == "fixed" and placement == "inside":
        assert (B.box_area(boxes) == round(size * w) * round(size * h)).all()


@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    alpha=st.floats(0.05, 8.0),
    kind=st.sampled_from(["uniform", "gaussian", "fixed"]),
    placement=st.sampled_from(["clip", "inside"]),
    sigma=st.floats(0.0, 2.0),
    size=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_sample_box_is_exactly_sample_boxes_of_one(h, w, alpha, kind, placement, sigma, size, seed):
    """The per-batch sampler is documented to be exactly sample_boxes(1, ...)[0], consuming the same draws."""
    kw = {"alpha": alpha, "kind": kind, "placement": placement, "sigma": sigma, "size": size}
    g1, g2 = _gen(seed), _gen(seed)
    one = B.sample_box(h, w, generator=g1, **kw)
    many = B.sample_boxes(1, h, w, generator=g2, **kw)
    assert tuple(int(v) for v in one) == tuple(many[0].tolist())
    assert torch.equal(g1.get_state(), g2.get_state())


@pytest.mark.parametrize("hw", [(32, 32), (7, 13), (20, 8)])
def test_fixed_half_size_inside_gives_three_quarters(hw):
    h, w = hw
    boxes = B.sample_boxes(200, h, w, kind="fixed", size=0.5, placement="inside", generator=_gen(0))
    assert (boxes[:, 2] - boxes[:, 0] == round(0.5 * w)).all()  # width follows W, height follows H
    assert (boxes[:, 3] - boxes[:, 1] == round(0.5 * h)).all()
    if hw == (32, 32):
        assert (B.box_lambda(boxes, h, w) == 0.75).all()  # the paper's 16x16 on 32x32


def test_fixed_size_clip_never_pastes_more_than_the_box():
    boxes = B.sample_boxes(2000, 32, 32, kind="fixed", size=0.5, placement="clip", generator=_gen(1))
    lam = B.box_lambda(boxes, 32, 32)
    assert bool((lam >= 0.75).all()) and bool((lam < 1.0).all())
    assert float((lam == 0.75).double().mean()) > 0.2  # boxes well inside are not cut


def test_sample_boxes_same_seed_same_boxes_different_seed_different():
    a = B.sample_boxes(64, 32, 32, generator=_gen(5))
    b = B.sample_boxes(64, 32, 32, generator=_gen(5))
    c = B.sample_boxes(64, 32, 32, generator=_gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("kind", ["uniform", "gaussian", "fixed"])
@pytest.mark.parametrize("placement", ["clip", "inside"])
def test_the_shared_size_tensors_stay_unwritten(kind, placement):
    """The samplers share one ``[width, height]`` tensor per size (made once: it costs an op): a draw that wrote
    into it would shift every later draw of that size."""
    first = [B.sample_boxes(16, 20, 30, kind=kind, placement=placement, generator=_gen(s)) for s in range(3)]
    again = [B.sample_boxes(16, 20, 30, kind=kind, placement=placement, generator=_gen(s)) for s in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert B._size(30, 20, torch.device("cpu")).tolist() == [30.0, 20.0]
    assert B._size(30, 20, torch.device("cpu"), torch.int64).tolist() == [30, 20]


def test_sample_boxes_per_sample_are_different():
    boxes = B.sample_boxes(32, 32, 32, generator=_gen(7))
    assert len({tuple(b) for b in boxes.tolist()}) >= 28  # collisions are possible, but rare


# -- seeded statistics ------------------------------------------------------------------------------------------------
def _exact_mean_area(side: int, placement: str) -> float:
    """E[pasted area / image area] for alpha = 1 on a side x side image, computed exactly from the sampler's rules.

    lambda ~ U(0, 1), so r = sqrt(1 - lambda) has r^2 ~ U(0, 1) and the box side s = round(side * r) has
    P(s) = ((s + 1/2) / side)^2 - ((s - 1/2) / side)^2 (clamped to [0, 1]). The centre is uniform over the pixels and
    independent per axis, and the box is square, so E[area | s] = E[clipped length | s]^2 for "clip", s^2 for
    "inside".
    """
    total = 0.0
    for s in range(side + 1):
        lo, hi = max((s - 0.5) / side, 0.0), min((s + 0.5) / side, 1.0)
        p = hi * hi - lo * lo
        if placement == "inside":
            length = float(s)
        else:
            length = sum(max(0, min(c - s // 2 + s, side) - max(c - s // 2, 0)) for c in range(side)) / side
        total += p * (length / side) ** 2
    return total


@pytest.mark.parametrize(("placement", "paper_value"), [("clip", 0.3210), ("inside", 0.5002)])
def test_mean_pasted_area_at_32px(placement, paper_value):
    """"clip" (the paper) pastes 0.3210 of the image on average at 32 px with alpha=1, "inside" 0.5.

    The expectation is computed exactly from the sampler's rules (0.3210 for clip, 0.5002 for inside; the
    continuous limit of clip is 0.3208 = 2 * (1/4 - 1/10 + 1/96)). With n = 50000 boxes the standard error of the
    mean is < 0.0013 (area std < 0.29), so 5 standard errors is a tolerance of 0.0065 that a correct sampler misses
    with probability ~1e-6 -- and with a fixed seed the verdict is deterministic anyway.
    """
    n = 50_000
    boxes = B.sample_boxes(n, 32, 32, alpha=1.0, placement=placement, generator=_gen(2019))
    area = 1.0 - B.box_lambda(boxes, 32, 32)
    se = float(area.std()) / math.sqrt(n)
    expected = _exact_mean_area(32, placement)
    assert abs(float(area.mean()) - expected) < 5 * se
    assert round(expected, 4) == paper_value  # the value the docs state


def test_alpha_one_mean_lambda_inside_is_half():
    boxes = B.sample_boxes(40_000, 64, 64, alpha=1.0, placement="inside", generator=_gen(3))
    lam = B.box_lambda(boxes, 64, 64)
    assert abs(float(lam.mean()) - 0.5) < 5 * math.sqrt(1 / 12 / 40_000)


def _chi_square(counts: torch.Tensor, expected: float) -> float:
    return float(((counts.double() - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("hw", [(7, 13), (32, 32)])
def test_uniform_centres_are_uniform(hw):
    """Chi-square over every pixel: for k cells the statistic has mean k-1 and sd sqrt(2(k-1)); accept < mean + 5 sd."""
    h, w = hw
    n = 200 * h * w
    centres = B.sample_centres(n, h, w, "uniform", generator=_gen(11))
    cx, cy = centres[:, 0], centres[:, 1]
    assert int(cx.min()) == 0 and int(cx.max()) == w - 1 and int(cy.min()) == 0 and int(cy.max()) == h - 1
    counts = torch.bincount(cy * w + cx, minlength=h * w)
    k = h * w
    assert _chi_square(counts, n / k) < (k - 1) + 5 * math.sqrt(2 * (k - 1))
    for axis, size in ((cx, w), (cy, h)):
        c = torch.bincount(axis, minlength=size)
        assert _chi_square(c, n / size) < (size - 1) + 5 * math.sqrt(2 * (size - 1))


def test_uniform_box_centres_through_sample_boxes():
    """Centres of unclipped boxes (odd sides never clip at the middle pixel) cover the image uniformly."""
    h, w, n = 9, 15, 60_000
    boxes = B.sample_boxes(n, h, w, kind="fixed", size=1 / 15, placement="clip", generator=_gen(12))
    # size 1/15 -> box 1x1 on a 15-wide image (round(9/15) = 1): the box is its centre pixel
    assert (B.box_area(boxes) == 1).all()
    counts = torch.bincount(boxes[:, 1] * w + boxes[:, 0], minlength=h * w)
    k = h * w
    assert _chi_square(counts, n / k) < (k - 1) + 5 * math.sqrt(2 * (k - 1))


def test_inside_placement_is_uniform_over_every_valid_position():
    """A 4x6 box on an 8x12 image has 5 x 7 positions that fit; "inside" must reach each equally often."""
    h, w, n = 8, 12, 35_000
    boxes = B.sample_boxes(n, h, w, kind="fixed", size=0.5, placement="inside", generator=_gen(16))
    x0, y0 = boxes[:, 0], boxes[:, 1]
    assert int(x0.min()) == 0 and int(x0.max()) == w - 6 and int(y0.min()) == 0 and int(y0.max()) == h - 4
    k = (w - 6 + 1) * (h - 4 + 1)
    counts = torch.bincount(y0 * (w - 6 + 1) + x0, minlength=k)
    assert counts.numel() == k
    assert _chi_square(counts, n / k) < (k - 1) + 5 * math.sqrt(2 * (k - 1))


def test_gaussian_centres_concentrate_in_the_middle():
    h, w, n = 32, 32, 40_000
    sigma = 0.25
    centres = B.sample_centres(n, h, w, "gaussian", sigma=sigma, generator=_gen(13)).double()
    mid = (w - 1) / 2
    assert abs(float(centres[:, 0].mean()) - mid) < 0.1 and abs(float(centres[:, 1].mean()) - mid) < 0.1
    # P(|z| < 1) = 0.683 for a normal with sd sigma * side = 8 px (rounding to pixels shifts it by < 0.02)
    frac = float(((centres - mid).abs() <= sigma * w).all(1).double().mean())
    assert abs(frac - 0.683**2) < 0.03
    # uniform centres would put only a quarter of the mass in the central half-square
    central = float(((centres - mid).abs() < w / 4).all(1).double().mean())
    assert central > 0.4
    uniform = B.sample_centres(n, h, w, "uniform", generator=_gen(13)).double()
    assert abs(float(((uniform - mid).abs() < w / 4).all(1).double().mean()) - 0.25) < 0.02
    # sigma = 0 puts every centre on the middle pixel
    zero = B.sample_centres(100, h, w, "gaussian", sigma=0.0, generator=_gen(14))
    assert torch.equal(zero, torch.full((100, 2), round(mid)))


def test_gaussian_boxes_paste_more_than_uniform_ones_under_clip():
    """Centred boxes are clipped less, so on average they paste more of the image than uniformly placed ones."""
    n = 20_000
    u = 1 - B.box_lambda(B.sample_boxes(n, 32, 32, kind="uniform", generator=_gen(15)), 32, 32)
    g = 1 - B.box_lambda(B.sample_boxes(n, 32, 32, kind="gaussian", generator=_gen(15)), 32, 32)
    assert float(g.mean()) > float(u.mean()) + 0.02


# -- check_boxes ------------------------------------------------------------------------------------------------------
def test_check_boxes_accepts_and_normalises():
    out = B.check_boxes(torch.tensor([[0, 0, 3, 3], [1, 1, 2, 2]], dtype=torch.int32), 2, 3, 3)
    assert out.dtype == torch.int64


@pytest.mark.parametrize(
    ("boxes", "error", "match"),
    [
        ([0, 0, 3, 3], TypeError, "boxes"),
        (torch.tensor([0.0, 0, 3, 3]), TypeError, "boxes"),
        (torch.tensor([0, 0, 3]), ValueError, "boxes"),
        (torch.tensor([[0, 0, 3, 3]] * 3), ValueError, "boxes"),
        (torch.tensor([0, 0, 4, 3]), ValueError, "boxes"),
        (torch.tensor([-1, 0, 3, 3]), ValueError, "boxes"),
        (torch.tensor([2, 0, 1, 3]), ValueError, "boxes"),
    ],
)
def test_check_boxes_rejects(boxes, error, match):
    with pytest.raises(error, match=match):
        B.check_boxes(boxes, 2, 3, 3)
