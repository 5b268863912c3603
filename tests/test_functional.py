"""The pure ops in cutmix.functional against explicit-loop references, over dtypes, memory layouts and in-place."""

from __future__ import annotations

import pytest
import torch
from _helpers import (
    DTYPES,
    LAYOUTS,
    as_box,
    count_box_pixels,
    in_box,
    is_channels_last,
    one_hot_ref,
    random_images,
    ref_blend,
    ref_erase,
    ref_paste,
    ref_targets,
    shares_memory,
)
from hypothesis import given
from hypothesis import strategies as st

from cutmix import _ops
from cutmix import functional as F
from cutmix.boxes import box_lambda, sample_boxes

N, C, H, W = 4, 3, 7, 13  # odd, non-square
INDEX = torch.tensor([2, 0, 3, 2])  # a non-permutation on purpose: sample 2 is used twice, sample 1 never

# One box per sample, incl. an empty one, the full image, a single pixel in a corner and a generic one.
BOXES = torch.tensor([[1, 2, 6, 5], [0, 0, W, H], [3, 3, 3, 6], [W - 1, H - 1, W, H]])
BATCH_BOX = torch.tensor([2, 1, 11, 6])


def always(threshold: int) -> dict[str, int]:
    """The slice loop's sample-size thresholds, both views alike (to force one per-sample path)."""
    return {"numpy": threshold, "torch": threshold}


@pytest.fixture(params=["select", "loop", "loop-torch"])
def path(request, monkeypatch):
    """Run a test on every per-sample path: the per-pixel selection (small samples) and the slice loop (large),
    the loop on NumPy views as it runs where NumPy is installed and on torch views as it runs without."""
    monkeypatch.setattr(_ops, "_LOOP_MIN_SAMPLE_BYTES", always(1 << 62 if request.param == "select" else 0))
    if request.param == "loop-torch":
        monkeypatch.setattr(_ops, "_as_array", lambda t: None)
    return request.param


def _check_inplace_semantics(images, before, out, expected, inplace):
    assert torch.equal(out, expected)
    assert out.dtype == before.dtype
    if inplace:
        assert out is images or (shares_memory(out, images) and out.data_ptr() == images.data_ptr())
        assert torch.equal(images, expected), "inplace=True must write the result into the input"
    else:
        assert torch.equal(images, before), "inplace=False must leave the input untouched"
        assert not shares_memory(out, images)


# -- paste (CutMix image op) ------------------------------------------------------------------------------------
@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_paste_matches_loop_reference(mode, dtype, layout, inplace, path):
    images = random_images(N, C, H, W, dtype, layout, seed=1)
    before = images.clone()
    boxes = BATCH_BOX if mode == "batch" else BOXES
    expected = ref_paste(before, boxes, INDEX)
    out = F.paste(images, boxes, INDEX, inplace=inplace)
    _check_inplace_semantics(images, before, out, expected, inplace)
    if is_channels_last(before) and not before.is_contiguous():
        assert is_channels_last(out), "channels_last must be preserved"
    # the pasted region is exactly the partner's pixels and everything else is the image's own
    for i in range(N):
        box = as_box(boxes, i)
        j = int(INDEX[i])
        for y in range(H):
            for x in range(W):
                src = before[j] if in_box(box, y, x) else before[i]
                assert torch.equal(out[i, :, y, x], src[:, y, x])


@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("hw", [(8, 8), (4, 16), (7, 13)])
def test_paste_per_sample_nhwc_permuted_batches(hw, c, dtype, inplace, path):
    """A batch decoded as NHWC and permuted to NCHW (the usual path from image decoders), incl. grayscale C=1."""
    h, w = hw
    images = random_images(N, c, h, w, dtype, "nhwc_permuted", seed=2)
    boxes = torch.tensor([[1, 1, 3, 4], [0, 0, w, h], [2, 0, 2, 0], [w - 1, h - 1, w, h]])
    before = images.clone()
    out = F.paste(images, boxes, INDEX, inplace=inplace)
    _check_inplace_semantics(images, before, out, ref_paste(before, boxes, INDEX), inplace)


@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "nhwc_permuted"])
@pytest.mark.parametrize("op", ["paste", "erase"])
def test_per_sample_ops_on_1x1_maps(op, layout, dtype, inplace, path):
    """[N, C, 1, 1] batches (feature maps after global pooling): a box is either the whole map or empty."""
    images = random_images(N, 3, 1, 1, dtype, layout, seed=3)
    boxes = torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]])
    before = images.clone()
    if op == "paste":
        out = F.paste(images, boxes, INDEX, inplace=inplace)
        _check_inplace_semantics(images, before, out, ref_paste(before, boxes, INDEX), inplace)
    else:
        out = F.erase(images, boxes, value=0.0, inplace=inplace)
        _check_inplace_semantics(images, before, out, ref_erase(before, boxes, 0.0), inplace)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_per_sample_paste_width_one_with_transposed_strides(dtype, path):
    """A [N, C, H, 1] view whose last dimension has stride H (a transposed [N, C, 1, H] batch) is contiguous."""
    images = random_images(N, 3, 1, 6, dtype, seed=4).transpose(2, 3)
    assert images.shape == (N, 3, 6, 1) and images.is_contiguous() and images.stride(-1) != 1
    boxes = torch.tensor([[0, 1, 1, 4], [0, 0, 1, 6], [0, 0, 0, 0], [0, 5, 1, 6]])
    assert torch.equal(F.paste(images, boxes, INDEX), ref_paste(images, boxes, INDEX))


@given(
    h=st.integers(1, 17),
    w=st.integers(1, 17),
    n=st.integers(1, 5),
    c=st.sampled_from([1, 2, 3]),
    dtype=st.sampled_from(DTYPES),
    channels_last=st.booleans(),
    inplace=st.booleans(),
    data=st.data(),
)
def test_paste_property_random_boxes(h, w, n, c, dtype, channels_last, inplace, data):
    def box():
        x0 = data.draw(st.integers(0, w))
        y0 = data.draw(st.integers(0, h))
        return [x0, y0, data.draw(st.integers(x0, w)), data.draw(st.integers(y0, h))]

    per_sample = data.draw(st.booleans())
    boxes = torch.tensor([box() for _ in range(n)] if per_sample else box())
    index = torch.tensor(data.draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n)))
    images = random_images(n, c, h, w, dtype, "channels_last" if channels_last else "nchw", seed=h * 31 + w)
    before = images.clone()
    with pytest.MonkeyPatch.context() as patch:  # either per-sample path
        patch.setattr(_ops, "_LOOP_MIN_SAMPLE_BYTES", always(data.draw(st.sampled_from([0, 1 << 62]))))
        out = F.paste(images, boxes, index, inplace=inplace)
    _check_inplace_semantics(images, before, out, ref_paste(before, boxes, index), inplace)


def test_paste_batch_box_copies_before_writing():
    """With one box for the batch, a partner that was already overwritten must not leak its new pixels."""
    images = random_images(3, 2, 5, 6, torch.float32, seed=3)
    before = images.clone()
    index = torch.tensor([1, 2, 0])  # a cycle: every sample is both a source and a destination
    box = torch.tensor([0, 0, 4, 3])
    out = F.paste(images, box, index, inplace=True)
    assert torch.equal(out, ref_paste(before, box, index))


def test_paste_self_partner_is_identity(path):
    images = random_images(4, 3, 7, 13, torch.uint8, seed=4)
    before = images.clone()
    out = F.paste(images, BOXES, torch.arange(4))
    assert torch.equal(out, before)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_paste_gradients_reach_both_partners(mode, layout):
    """With autograd on: same values, same memory format, and d(sum w * out)/d(images) routes w to the source."""
    images = random_images(N, C, H, W, torch.float64, layout, seed=5).requires_grad_()
    boxes = BATCH_BOX if mode == "batch" else BOXES
    out = F.paste(images, boxes, INDEX)
    assert out.requires_grad and torch.equal(out.detach(), ref_paste(images, boxes, INDEX))
    if layout == "channels_last":
        assert is_channels_last(out)
    weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (out * weights).sum().backward()
    expected = torch.zeros(N, C, H, W, dtype=torch.float64)
    for i in range(N):
        box = as_box(boxes, i)
        for y in range(H):
            for x in range(W):
                src = int(INDEX[i]) if in_box(box, y, x) else i
                expected[src, :, y, x] += weights[i, :, y, x]
    assert torch.equal(images.grad, expected)


# -- erase (Cutout image op) -------------------------------------------------------------------------------------
@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided", "offset"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_erase_fills_box_and_keeps_the_rest(mode, dtype, layout, inplace, path):
    images = random_images(N, C, H, W, dtype, layout, seed=6)
    before = images.clone()
    boxes = BATCH_BOX if mode == "batch" else BOXES
    value = 7.0 if dtype == torch.uint8 else -1.5
    out = F.erase(images, boxes, value=value, inplace=inplace)
    _check_inplace_semantics(images, before, out, ref_erase(before, boxes, value), inplace)
    if layout == "channels_last":
        assert is_channels_last(out)


# -- blend (Mixup image op) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided", "offset"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_blend_is_the_convex_combination(mode, dtype, layout, inplace):
    images = random_images(N, C, H, W, dtype, layout, seed=7)
    before = images.clone()
    lam: float | list[float] = 0.3 if mode == "batch" else [0.0, 0.25, 0.7, 1.0]
    lam_arg = lam if mode == "batch" else torch.tensor(lam, dtype=torch.float64)
    out = F.blend(images, lam_arg, INDEX, inplace=inplace)
    exact = ref_blend(before, lam, INDEX)
    assert out.dtype == dtype and out.shape == before.shape
    if dtype == torch.uint8:
        # blended in float32 then rounded: within half a grey level of the exact value (plus float32 slack)
        assert float((out.double() - exact).abs().max()) <= 0.5 + 1e-4
    elif dtype == torch.bfloat16:
        assert float((out.double() - exact).abs().max()) <= 1e-2
    else:
        assert float((out.double() - exact).abs().max()) <= 1e-6
    if inplace:
        assert shares_memory(out, images) and torch.equal(images, out)
    else:
        assert torch.equal(images, before)
        if layout == "channels_last":
            assert is_channels_last(out)
    # lam = 1 keeps the image, lam = 0 takes the partner, bit for bit
    if mode == "sample":
        assert torch.equal(out[3], before[3])
        assert torch.equal(out[0], before[int(INDEX[0])])


def test_blend_uint8_rounds_to_nearest():
    images = torch.tensor([0, 255, 10, 11], dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 1, 2, 3).contiguous()
    out = F.blend(images, 0.25, torch.tensor([1, 0, 3, 2]))
    # 0.25 * 0 + 0.75 * 255 = 191.25, 0.25 * 255 = 63.75, 2.5 + 8.25 = 10.75, 2.75 + 7.5 = 10.25: nearest, not floor
    assert out[:, 0, 0, 0].tolist() == [191, 64, 11, 10]


def test_blend_self_partner_is_identity():
    images = random_images(4, 3, 5, 5, torch.float32, seed=8)
    out = F.blend(images, torch.tensor([0.1, 0.5, 0.9, 0.3]), torch.arange(4))
    assert torch.equal(out, images)


def test_blend_gradients():
    images = random_images(N, C, H, W, torch.float64, seed=9).requires_grad_()
    F.blend(images, 0.3, INDEX).sum().backward()
    # sample i gets 0.3 from its own output plus 0.7 for every output that takes it as partner
    uses = torch.bincount(INDEX, minlength=N).double()
    expected = (0.3 + 0.7 * uses).view(N, 1, 1, 1).expand(N, C, H, W)
    assert torch.allclose(images.grad, expected, atol=1e-12)


# -- targets ------------------------------------------------------------------------------------------------------
LAMS = [1.0, 0.5, 0.25, 0.0, 0.8, 0.5]
LABELS = torch.tensor([0, 1, 2, 3, 4, 1])
PAIRS = torch.tensor([1, 2, 3, 4, 4, 5])  # sample 4 with itself, sample 5 with itself; sample 1 label = sample 5


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("mode", ["area", "onehot", "complete"])
def test_mix_targets_index_labels(mode, smoothing):
    out = F.mix_targets(LABELS, PAIRS, torch.tensor(LAMS, dtype=torch.float64), num_classes=5, label=mode,
                        label_smoothing=smoothing)
    assert out.dtype == torch.float32 and out.shape == (6, 5)
    expected = ref_targets(LABELS, PAIRS, LAMS, 5, mode, smoothing)
    assert torch.allclose(out.double(), expected, atol=1e-7, rtol=0)
    assert torch.allclose(out.sum(1), torch.ones(6), atol=1e-6)


def test_mix_targets_mode_semantics_written_out():
    lam = torch.tensor(LAMS, dtype=torch.float64)
    area = F.mix_targets(LABELS, PAIRS, lam, num_classes=5, label="area")
    onehot = F.mix_targets(LABELS, PAIRS, lam, num_classes=5, label="onehot")
    complete = F.mix_targets(LABELS, PAIRS, lam, num_classes=5, label="complete")
    # sample 1 (lam = 0.5, a tie) keeps its own label in "onehot"; sample 2 (lam = 0.25) takes its partner's
    assert onehot[1].tolist() == [0, 1, 0, 0, 0]
    assert onehot[2].tolist() == [0, 0, 0, 1, 0]
    assert area[2].tolist() == [0, 0, 0.25, 0.75, 0]
    # "complete": 0.5 / 0.5 whenever 0 < lam < 1; unmixed (lam = 1) stays one-hot; fully replaced goes to partner
    assert complete[2].tolist() == [0, 0, 0.5, 0.5, 0]
    assert complete[4].tolist() == [0, 0, 0, 0, 1.0]
    assert complete[0].tolist() == [1.0, 0, 0, 0, 0]
    assert complete[3].tolist() == [0, 0, 0, 0, 1.0]


@pytest.mark.parametrize("mode", ["area", "onehot", "complete"])
def test_mix_targets_soft_labels(mode):
    g = torch.Generator().manual_seed(10)
    soft = torch.softmax(torch.randn(6, 5, generator=g), dim=1)
    out = F.mix_targets(soft, PAIRS, torch.tensor(LAMS, dtype=torch.float64), label=mode, label_smoothing=0.2)
    expected = ref_targets(soft, PAIRS, LAMS, 5, mode, 0.2)
    assert torch.allclose(out.double(), expected, atol=1e-6, rtol=0)
    assert torch.allclose(out.sum(1), torch.ones(6), atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
def test_mix_targets_dtype(dtype):
    out = F.mix_targets(LABELS, PAIRS, 0.3, num_classes=5, dtype=dtype)
    assert out.dtype == dtype
    expected = ref_targets(LABELS, PAIRS, [0.3] * 6, 5)
    tol = 1e-12 if dtype == torch.float64 else 1e-2
    assert torch.allclose(out.double(), expected, atol=tol, rtol=0)


def test_mix_targets_large_class_ids_survive():
    """Class ids above 256 must not be corrupted (they would be in bf16)."""
    labels = torch.tensor([999, 257, 513, 1])
    out = F.mix_targets(labels, torch.tensor([1, 0, 3, 2]), 0.75, num_classes=1000)
    assert out[0, 999] == 0.75 and out[0, 257] == 0.25
    assert out[2, 513] == 0.75 and out[2, 1] == 0.25


def test_one_hot_and_smoothing():
    out = F.one_hot(LABELS, 5, label_smoothing=0.1)
    assert torch.allclose(out.double(), one_hot_ref(LABELS, 5, 0.1), atol=1e-7)
    soft = torch.full((2, 4), 0.25)
    assert torch.equal(F.one_hot(soft), soft)


# -- the composite ops ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["area", "onehot", "complete"])
@pytest.mark.parametrize("per_sample", [False, True])
def test_cutmix_op_targets_use_exact_box_share(per_sample, mode):
    images = random_images(N, C, H, W, torch.uint8, seed=11)
    labels = torch.tensor([0, 1, 2, 3])
    boxes = BOXES if per_sample else BATCH_BOX
    out, targets = F.cutmix(images, labels, boxes=boxes, index=INDEX, num_classes=4, label=mode)
    assert out.dtype == torch.uint8 and targets.dtype == torch.float32
    assert torch.equal(out, ref_paste(images, boxes, INDEX))
    lams = [1.0 - count_box_pixels(as_box(boxes, i), H, W) / (H * W) for i in range(N)]
    assert torch.allclose(targets.double(), ref_targets(labels, INDEX, lams, 4, mode), atol=1e-7, rtol=0)
    assert torch.allclose(targets.sum(1), torch.ones(N), atol=1e-6)


def test_cutmix_op_onehot_tie_keeps_own_label():
    images = random_images(2, 1, 8, 8, torch.float32, seed=12)
    box = torch.tensor([0, 0, 8, 4])  # exactly half the image: lam = 0.5
    _, targets = F.cutmix(images, torch.tensor([0, 1]), boxes=box, index=torch.tensor([1, 0]), num_classes=2,
                          label="onehot")
    assert targets.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    box = torch.tensor([0, 0, 8, 5])  # more than half pasted: the partner's label wins
    _, targets = F.cutmix(images, torch.tensor([0, 1]), boxes=box, index=torch.tensor([1, 0]), num_classes=2,
                          label="onehot")
    assert targets.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_cutmix_op_soft_labels_smoothing_dtype():
    images = random_images(N, C, H, W, torch.float32, seed=13)
    soft = torch.softmax(torch.randn(N, 6, generator=torch.Generator().manual_seed(1)), 1)
    _, targets = F.cutmix(images, soft, boxes=BOXES, index=INDEX, label_smoothing=0.1, target_dtype=torch.float64)
    lams = box_lambda(BOXES, H, W).tolist()
    assert targets.dtype == torch.float64
    assert torch.allclose(targets, ref_targets(soft, INDEX, lams, 6, "area", 0.1), atol=1e-7)


def test_cutmix_op_self_pairing_keeps_image_and_label():
    images = random_images(N, C, H, W, torch.bfloat16, seed=14)
    labels = torch.tensor([3, 1, 0, 2])
    out, targets = F.cutmix(images, labels, boxes=BOXES, index=torch.arange(N), num_classes=4)
    assert torch.equal(out, images)
    assert torch.equal(targets.double(), one_hot_ref(labels, 4))


@pytest.mark.parametrize("per_sample", [False, True])
def test_mixup_op(per_sample):
    images = random_images(N, C, H, W, torch.float32, seed=15)
    labels = torch.tensor([0, 1, 2, 3])
    lams = [0.1, 0.6, 0.5, 0.9] if per_sample else [0.35] * N
    lam = torch.tensor(lams, dtype=torch.float64) if per_sample else 0.35
    out, targets = F.mixup(images, labels, lam=lam, index=INDEX, num_classes=4)
    assert float((out.double() - ref_blend(images, lams if per_sample else 0.35, INDEX)).abs().max()) <= 1e-6
    assert torch.allclose(targets.double(), ref_targets(labels, INDEX, lams, 4), atol=1e-7)


@pytest.mark.parametrize("per_sample", [False, True])
def test_cutout_op(per_sample):
    images = random_images(N, C, H, W, torch.uint8, seed=16)
    labels = torch.tensor([0, 1, 2, 1])
    boxes = BOXES if per_sample else BATCH_BOX
    out, targets = F.cutout(images, labels, boxes=boxes, num_classes=3, value=255, label_smoothing=0.3)
    assert torch.equal(out, ref_erase(images, boxes, 255))
    assert torch.allclose(targets.double(), one_hot_ref(labels, 3, 0.3), atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("inplace", [False, True])
def test_paste_per_sample_large_batches(dtype, channels_last, inplace, path):
    # 4.1 MB as float32: above the cache-sized threshold the selection is torch.where for 4- and 8-byte dtypes.
    g = torch.Generator().manual_seed(5)
    n, c, h, w = 12, 3, 150, 190
    images = (torch.rand(n, c, h, w, generator=g) * 255).to(dtype)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    boxes = sample_boxes(n, h, w, generator=g)
    index = torch.cat([torch.randperm(n - 2, generator=g), torch.tensor([n - 1, 0])])  # a self-pair, a repeat
    expected = images.clone()
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):  # slice reference, one sample at a time
        expected[i, :, y0:y1, x0:x1] = images[int(index[i]), :, y0:y1, x0:x1]
    source = images.clone()
    out = F.paste(source, boxes, index, inplace=inplace)
    assert torch.equal(out, expected)
    assert (out.data_ptr() == source.data_ptr()) == inplace
    assert is_channels_last(out) == channels_last
    erased = F.erase(images.clone(), boxes, value=3.0, inplace=inplace)
    assert torch.equal(erased, ref_erase(images, boxes, 3.0))
    assert is_channels_last(erased) == channels_last


def test_in_place_loop_writes_each_cycle_before_its_partners(monkeypatch):
    """In place, a permutation is written cycle by cycle, so that full-image boxes (every pair overlaps) still
    receive their partners' original pixels, and only the last sample of each cycle reads a saved patch."""
    monkeypatch.setattr(_ops, "_LOOP_MIN_SAMPLE_BYTES", always(0))
    partners = [3, 0, 2, 5, 1, 4, 7, 6]  # cycles (0 3 5 4 1), (2), (6 7)
    order = _ops._write_order(partners)
    assert order == [0, 3, 5, 4, 1, 2, 6, 7]
    assert _ops._write_order([1, 1, 0]) == [0, 1, 2]  # not a permutation: index order
    written_before = {i: set(order[:r]) for r, i in enumerate(order)}
    assert [i for i in order if partners[i] in written_before[i]] == [1, 7]  # one per cycle of length > 1
    n, h, w = len(partners), 9, 7
    images = torch.arange(n * 3 * h * w, dtype=torch.float32).view(n, 3, h, w)
    index = torch.tensor(partners)
    patches: list[tuple[int, ...]] = []
    real_set_aside = _ops._set_aside
    monkeypatch.setattr(_ops, "_set_aside", lambda v: patches.append(tuple(v.shape)) or real_set_aside(v))
    out = F.paste(images.clone(), torch.tensor([[0, 0, w, h]] * n), index, inplace=True)
    assert torch.equal(out, images[index])
    assert patches == [(3, h, w)] * 2  # one patch for each of the two cycles of length > 1


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int8, torch.float16, torch.bfloat16,
                                   torch.float32, torch.int32, torch.float64, torch.complex64], ids=str)
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_slice_loop_sees_the_batch_as_same_size_integers_in_numpy(dtype, layout):
    """The loop's NumPy view shares the batch's memory, element for element, for dtypes NumPy lacks too
    (bfloat16): writing through it writes the batch, and the erase value keeps its bits in the batch's dtype."""
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    images = torch.zeros(3, 2, 5, 4, dtype=dtype).contiguous(memory_format=fmt)
    view = _ops._box_viewer(images)(1, [1, 2, 3, 5])
    assert not isinstance(view, torch.Tensor) and view.shape == (2, 3, 2)
    assert view.itemsize == images.element_size()
    view[...] = 1
    expected = torch.zeros(3, 2, 5, 4, dtype=torch.int64)
    expected[1, :, 2:5, 1:3] = 1
    assert torch.equal(images.view(_ops._INT_VIEWS[images.element_size()]).long(), expected)
    value = 1.0 if dtype == torch.bool else 3.0 if dtype in (torch.uint8, torch.int8, torch.int32) else -0.1
    erased = _ops._erase_loop(torch.zeros_like(images), torch.tensor([[1, 2, 3, 5]] * 3), value, inplace=False)
    assert torch.equal(erased, ref_erase(torch.zeros_like(images), torch.tensor([[1, 2, 3, 5]] * 3), value))
    assert erased[0, 0, 2, 1].item() == torch.tensor(value, dtype=torch.float64).to(dtype).item()


def test_slice_loop_keeps_torch_views_for_16_byte_elements():
    """complex128 has no same-size NumPy integer: the loop runs on torch views, with the same result."""
    images = torch.randn(2, 1, 4, 4, dtype=torch.complex128)
    assert isinstance(_ops._box_viewer(images)(0, [0, 0, 2, 2]), torch.Tensor)
    out = _ops._paste_loop(images, torch.tensor([[0, 0, 2, 2], [1, 1, 4, 3]]), torch.tensor([1, 0]), inplace=False)
    assert torch.equal(out, ref_paste(images, torch.tensor([[0, 0, 2, 2], [1, 1, 4, 3]]), torch.tensor([1, 0])))


@pytest.mark.parametrize("views", ["numpy", "torch"])
@pytest.mark.parametrize("op", ["paste", "erase"])
def test_samples_from_4_kib_take_the_slice_loop_on_a_cpu_64_kib_without_numpy(op, views, monkeypatch):
    """The per-sample path follows the bytes of one sample: the selection below the threshold, one copy per sample
    from it; 4 KiB with NumPy views, 64 KiB with torch's (each box costs more there)."""
    calls: list[str] = []

    def spy(name: str) -> None:
        real = getattr(_ops, name)

        def counted(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(_ops, name, counted)

    for name in ("select_boxes", "_paste_loop", "_erase_loop"):
        spy(name)
    if views == "torch":
        monkeypatch.setattr(_ops, "_as_array", lambda t: None)
        cases = [((128, 170), torch.uint8, False, "select_boxes"), ((128, 171), torch.uint8, False, "loop"),
                 ((64, 86), torch.float32, False, "loop"), ((64, 85), torch.float32, False, "select_boxes"),
                 ((64, 86), torch.float32, True, "select_boxes")]  # autograd keeps the selection
    else:  # 3 x 32 x 42 bytes is 4 032, 3 x 32 x 43 is 4 128
        cases = [((32, 42), torch.uint8, False, "select_boxes"), ((32, 43), torch.uint8, False, "loop"),
                 ((16, 22), torch.float32, False, "loop"), ((16, 21), torch.float32, False, "select_boxes"),
                 ((16, 22), torch.float32, True, "select_boxes")]
    for hw, dtype, grad, expected in cases:
        images = torch.zeros(2, 3, *hw, dtype=dtype, requires_grad=grad)
        boxes = torch.tensor([[0, 0, 5, 5], [1, 1, 4, 4]])
        calls.clear()
        if op == "paste":
            F.paste(images, boxes, torch.tensor([1, 0]))
        else:
            F.erase(images, boxes, value=1.0)
        assert calls == [expected if expected == "select_boxes" else f"_{op}_loop"], (hw, dtype, grad)
