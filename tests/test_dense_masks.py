"""Masks and maps follow the pixels: every mask pixel comes from the image whose pixel is at that place.

The images are tagged (image i is filled with i + 1), so after ``functional.paste`` each pixel says which image it
came from; the mixed mask must hold exactly that image's mask value there, whatever the dtype, rank or pattern.
"""

from __future__ import annotations

import pytest
import torch

from cutmix import dense, functional
from cutmix.boxes import sample_box, sample_boxes

SIZES = [(13, 21), (9, 9), (16, 7)]
N = 5


def tagged(n: int, h: int, w: int) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.uint8) + 1).view(n, 1, 1, 1).expand(n, 3, h, w).contiguous()


def source_map(boxes: torch.Tensor, index: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[N, H, W]: the image each pixel of the mixed batch comes from, read off the tagged images."""
    return functional.paste(tagged(index.shape[0], h, w), boxes, index)[:, 0].long() - 1


def expected(masks: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """masks [N, ..., H, W] with pixel (y, x) of sample n taken from sample src[n, y, x]: a plain gather."""
    n, h, w = src.shape
    flat = masks.reshape(n, -1, h, w)
    ys, xs = torch.arange(h)[:, None], torch.arange(w)[None, :]
    out = torch.stack([flat[src[i], :, ys, xs].permute(2, 0, 1) for i in range(n)])
    return out.reshape(masks.shape)


def pattern(n: int, h: int, w: int, dtype: torch.dtype, ignore: int = 255) -> torch.Tensor:
    """Masks whose value says the sample (i + 1), with an ignore value on a diagonal pattern that differs by sample."""
    i = torch.arange(n)[:, None, None]
    y, x = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    if dtype == torch.bool:
        return (x * y + i) % 2 == 0
    values = (i + 1).expand(n, h, w).clone() if dtype == torch.uint8 else 1000 * (i + 1) + y * w + x
    return torch.where((x + y + i) % 3 == 0, torch.tensor(ignore), values).to(dtype)


def draw(kind: str, n: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "batch":
        return torch.tensor(sample_box(h, w, alpha=1.0, generator=g))
    boxes = sample_boxes(n, h, w, alpha=1.0, generator=g)
    boxes[0] = torch.tensor([0, 0, w, h])  # the whole image
    boxes[1] = 0  # an unselected sample: nothing pasted
    return boxes


@pytest.mark.parametrize(("h", "w"), SIZES)
@pytest.mark.parametrize("kind", ["batch", "sample"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
@pytest.mark.parametrize("channel", [False, True])
def test_mask_pixels_come_from_the_image_at_that_place(h, w, kind, dtype, channel) -> None:
    for seed in range(4):
        boxes = draw(kind, N, h, w, seed)
        index = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
        masks = pattern(N, h, w, dtype, ignore=255 if dtype == torch.uint8 else -1 if dtype == torch.int64 else 0)
        masks = masks[:, None] if channel else masks
        out = dense.paste_masks(masks, boxes, index)
        assert out.dtype == dtype and out.shape == masks.shape
        assert torch.equal(out, expected(masks, source_map(boxes, index, h, w)))


def test_ignore_value_is_copied_like_any_pixel() -> None:
    h, w = 11, 17
    masks = torch.full((2, h, w), 3, dtype=torch.uint8)
    masks[1] = 255  # the partner is all ignore
    boxes = torch.tensor([2, 3, 9, 8])
    out = dense.paste_masks(masks, boxes, torch.tensor([1, 0]))
    assert (out[0, 3:8, 2:9] == 255).all() and int((out[0] == 255).sum()) == 5 * 7
    assert (out[1, 3:8, 2:9] == 3).all() and int((out[1] == 3).sum()) == 5 * 7


@pytest.mark.parametrize("kind", ["batch", "sample"])
def test_soft_maps_and_higher_rank_follow_the_same_rule(kind: str) -> None:
    h, w = 10, 13
    g = torch.Generator().manual_seed(0)
    boxes, index = draw(kind, N, h, w, 1), torch.randperm(N, generator=g)
    src = source_map(boxes, index, h, w)
    maps = torch.rand(N, 4, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    out = dense.paste_masks(maps, boxes, index)
    assert torch.equal(out, expected(maps, src))
    assert out.is_contiguous(memory_format=torch.channels_last)
    five = torch.rand(N, 2, 3, h, w, generator=g)
    assert torch.equal(dense.paste_masks(five, boxes, index), expected(five, src))


def test_the_same_boxes_move_images_and_masks_together() -> None:
    """A mask that is a function of its image stays that function of the mixed image."""
    h, w = 15, 19
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (N, 3, h, w), generator=g, dtype=torch.uint8)
    masks = images[:, 0] // 64  # four "classes" read off the red channel
    for kind in ("batch", "sample"):
        boxes, index = draw(kind, N, h, w, 7), torch.randperm(N, generator=g)
        assert torch.equal(dense.paste_masks(masks, boxes, index), functional.paste(images, boxes, index)[:, 0] // 64)


def test_inplace_writes_into_the_masks() -> None:
    h, w = 9, 14
    boxes, index = draw("sample", N, h, w, 2), torch.randperm(N, generator=torch.Generator().manual_seed(2))
    for masks in (pattern(N, h, w, torch.uint8), pattern(N, h, w, torch.int64)[:, None],
                  torch.rand(N, 2, 2, h, w)):
        want = dense.paste_masks(masks, boxes, index)
        out = dense.paste_masks(masks, boxes, index, inplace=True)
        assert out is masks and torch.equal(masks, want)


@pytest.mark.parametrize("kind", ["batch", "sample"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_cutout_writes_the_ignore_index_inside_the_boxes_only(kind, dtype) -> None:
    h, w = 12, 17
    boxes = draw(kind, N, h, w, 4)
    masks = pattern(N, h, w, dtype, ignore=7)
    for m in (masks, masks[:, None]):
        out = dense.erase_masks(m, boxes, value=255)
        region = dense.pasted_region(boxes, N, h, w).view(out.shape)
        assert torch.equal(out, torch.where(region, torch.tensor(255, dtype=dtype), m))
    conf = torch.rand(N, h, w)
    out = dense.erase_masks(conf, boxes, value=0.0)
    assert torch.equal(out, conf.masked_fill(dense.pasted_region(boxes, N, h, w), 0.0))


def test_pasted_region_is_where_the_partner_shows() -> None:
    h, w = 13, 21
    for kind in ("batch", "sample"):
        boxes, index = draw(kind, N, h, w, 5), torch.tensor([1, 2, 3, 4, 0])
        src = source_map(boxes, index, h, w)
        assert torch.equal(dense.pasted_region(boxes, N, h, w), src != torch.arange(N)[:, None, None])


def test_cutout_value_must_fit_the_dtype() -> None:
    boxes = torch.tensor([0, 0, 2, 2])
    with pytest.raises(ValueError, match=r"does not fit a torch\.uint8 mask"):
        dense.erase_masks(torch.zeros(2, 4, 4, dtype=torch.uint8), boxes, value=256)
    with pytest.raises(ValueError, match=r"does not fit a torch\.uint8 mask"):
        dense.erase_masks(torch.zeros(2, 4, 4, dtype=torch.uint8), boxes, value=-1)
    with pytest.raises(TypeError, match="must be an int"):
        dense.erase_masks(torch.zeros(2, 4, 4, dtype=torch.int64), boxes, value=2.5)
    assert int(dense.erase_masks(torch.zeros(2, 4, 4, dtype=torch.int64), boxes, value=-100)[0, 0, 0]) == -100


def test_mixup_blends_soft_maps_like_images() -> None:
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(N, 3, 6, 7, generator=g)
    index = torch.randperm(N, generator=g)
    lam = torch.rand(N, generator=g, dtype=torch.float64)
    out = dense.blend_masks(maps, lam, index)
    ref = lam.float().view(N, 1, 1, 1) * maps + (1 - lam.float().view(N, 1, 1, 1)) * maps[index]
    torch.testing.assert_close(out, ref)
    assert torch.equal(dense.blend_masks(maps, 1.0, index), maps)
    assert torch.equal(dense.blend_masks(maps, 0.0, index), maps[index])
    assert torch.equal(functional.blend(maps, lam, index), out)  # exactly the image op


def test_mixup_on_hard_masks_raises_or_keeps_the_larger_weight() -> None:
    masks = pattern(N, 6, 7, torch.uint8)
    index = torch.tensor([1, 2, 3, 4, 0])
    with pytest.raises(ValueError, match=r"cannot blend hard masks.*hard='larger'"):
        dense.blend_masks(masks, 0.7, index)
    lam = torch.tensor([0.5, 0.49, 0.9, 0.1, 1.0], dtype=torch.float64)
    out = dense.blend_masks(masks, lam, index, hard="larger")
    for i, own in enumerate([True, False, True, False, True]):  # a tie keeps the image's own mask
        assert torch.equal(out[i], masks[i] if own else masks[index[i]])
    assert torch.equal(dense.blend_masks(masks[:, None], 0.3, index, hard="larger"), masks[index][:, None])
    with pytest.raises(ValueError, match="hard must be one of"):
        dense.blend_masks(masks, 0.3, index, hard="nearest")


def test_one_hot_masks_blend_exactly_and_drop_ignored_pixels() -> None:
    masks = torch.tensor([[[0, 1, 255], [2, 2, 0]], [[1, 1, 1], [255, 0, 2]]], dtype=torch.uint8)
    soft = dense.one_hot_masks(masks, 3, ignore_index=255)
    assert soft.shape == (2, 3, 2, 3)
    assert torch.equal(soft.sum(1), (masks != 255).float())
    assert torch.equal(soft.argmax(1)[masks != 255], masks[masks != 255].long())
    assert torch.equal(dense.one_hot_masks(masks[:, None], 3, ignore_index=255), soft)
    mixed = dense.blend_masks(soft, 0.25, torch.tensor([1, 0]))
    assert torch.equal(mixed[0, :, 0, 0], torch.tensor([0.25, 0.75, 0.0]))  # class 0 at weight 0.25, class 1 at 0.75
    assert torch.equal(mixed[0, :, 1, 0], torch.tensor([0.0, 0.0, 0.25]))  # own class 2; the partner's is ignored
    assert torch.equal(mixed[0, :, 0, 2], torch.tensor([0.0, 0.75, 0.0]))  # own ignored; the partner's class 1
    with pytest.raises(ValueError, match=r"classes in \[0, 2\] or ignore_index=255"):
        dense.one_hot_masks(masks + 1, 3, ignore_index=255)


@pytest.mark.parametrize(
    ("masks", "error", "match"),
    [
        (torch.zeros(4, 4), ValueError, r"\[N, \.\.\., H, W\]"),
        ([[0]], TypeError, "must be a torch.Tensor"),
        (torch.zeros(2, 4, 4, dtype=torch.complex64), TypeError, "integer, bool or floating"),
        (torch.zeros(0, 4, 4), ValueError, "is empty"),
    ],
)
def test_bad_masks(masks, error, match) -> None:
    with pytest.raises(error, match=match):
        dense.paste_masks(masks, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1]))


def test_bad_boxes_and_index_name_the_argument() -> None:
    masks = torch.zeros(2, 4, 5, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"boxes must lie inside the 4x5 image"):
        dense.paste_masks(masks, torch.tensor([0, 0, 6, 4]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"boxes must have shape \[4\] or \[2, 4\]"):
        dense.paste_masks(masks, torch.zeros(3, 4, dtype=torch.int64), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"index must hold indices in \[0, 1\]"):
        dense.paste_masks(masks, (0, 0, 2, 2), torch.tensor([1, 2]))
