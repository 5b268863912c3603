"""DenseMix: the transform's own draws applied to images, labels, masks and detection targets, and tv_tensors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import cutmix
from cutmix import dense, functional
from cutmix.dense import DenseMix

N, H, W = 6, 13, 18


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tagged(n: int = N, h: int = H, w: int = W) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.uint8) + 1).view(n, 1, 1, 1).expand(n, 3, h, w).contiguous()


def masks_of(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A mask that says which image each pixel shows, with a 255 / -1 ignore pattern that varies by image."""
    m = images[:, 0].to(dtype) * 3
    y, x = torch.arange(images.shape[2])[:, None], torch.arange(images.shape[3])
    ignore = ((x + y)[None] + torch.arange(images.shape[0])[:, None, None]) % 4 == 0
    return m.masked_fill(ignore, 255 if dtype == torch.uint8 else -1)


def labels() -> torch.Tensor:
    return torch.tensor([0, 1, 2, 3, 0, 1])


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
@pytest.mark.parametrize("channel", [False, True])
def test_cutmix_moves_masks_with_the_pixels(per_sample, dtype, channel) -> None:
    for seed in range(3):
        images = tagged()
        masks = masks_of(images, dtype)
        masks = masks[:, None] if channel else masks
        mix = DenseMix(cutmix.CutMix(4, per_sample=per_sample, prob=0.7, generator=gen(seed)), return_params=True)
        out, targets, mixed, params = mix(images, labels(), masks)
        plain_out, plain_targets = cutmix.CutMix(4, per_sample=per_sample, prob=0.7, generator=gen(seed))(
            images, labels())
        assert torch.equal(out, plain_out) and torch.equal(targets, plain_targets)  # the very same draws
        assert mixed.dtype == dtype and mixed.shape == masks.shape
        src = out[:, 0].long() - 1  # the image each pixel came from
        want = torch.stack([masks.reshape(N, H, W)[src[i], torch.arange(H)[:, None], torch.arange(W)]
                            for i in range(N)])
        assert torch.equal(mixed.reshape(N, H, W), want)
        if params.op == "cutmix":
            assert torch.equal(functional.paste(images, params.boxes, params.index), out)
            assert torch.equal(params.lam, cutmix.boxes.box_lambda(params.boxes, H, W))
            torch.testing.assert_close(targets, functional.mix_targets(labels(), params.index, params.lam,
                                                                       num_classes=4))


def test_the_plain_transforms_take_dense_targets_too() -> None:
    images, masks = tagged(), masks_of(tagged(), torch.uint8)
    dets = [{"boxes": torch.tensor([[0.0, 0, W, H]]), "labels": torch.tensor([i + 1])} for i in range(N)]
    for make in (lambda: cutmix.CutMix(4, generator=gen(4)), lambda: cutmix.Cutout(4, size=5, generator=gen(4))):
        got = make()(images, labels(), masks, dets)
        want = DenseMix(make())(images, labels(), masks, dets)
        for a, b in zip(got[:3], want[:3], strict=True):
            assert torch.equal(a, b)
        assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(got[3], want[3], strict=True))
    out, targets = cutmix.CutMix(4, generator=gen(4))((images, labels()))  # the classification path, same draws
    dense_out, dense_targets, _ = cutmix.CutMix(4, generator=gen(4))(images, labels(), masks)
    assert torch.equal(out, dense_out) and torch.equal(targets, dense_targets)


def test_masks_in_any_order_and_soft_maps() -> None:
    images = tagged()
    hard, conf = masks_of(images, torch.uint8), torch.rand(N, H, W, generator=gen(1))
    mix = DenseMix(cutmix.CutMix(generator=gen(3)), return_params=True)
    out, m1, m2, params = mix(images, hard, conf)  # no labels: no targets
    assert torch.equal(out, functional.paste(images, params.boxes, params.index))
    assert torch.equal(m1, dense.paste_masks(hard, params.boxes, params.index))
    assert torch.equal(m2, dense.paste_masks(conf, params.boxes, params.index))


def test_cutout_writes_ignore_index_into_masks_and_fill_into_maps() -> None:
    images, conf = tagged(), torch.rand(N, 1, H, W, generator=gen(1))
    hard = masks_of(images, torch.uint8)
    mix = DenseMix(cutmix.Cutout(4, size=6, generator=gen(2)), ignore_index=250, map_fill=-1.0, return_params=True)
    out, targets, m, c, params = mix(images, labels(), hard, conf)
    assert torch.equal(out, cutmix.Cutout(4, size=6, generator=gen(2))(images, labels())[0])
    region = params.region(H, W)
    assert region.any() and params.op == "cutout" and torch.equal(params.index, torch.arange(N))
    assert torch.equal(m, hard.masked_fill(region, 250)) and torch.equal(c, conf.masked_fill(region[:, None], -1.0))
    assert torch.equal(targets, functional.one_hot(labels(), 4))
    assert torch.equal(params.lam, 1 - region.flatten(1).sum(1).double() / (H * W))


def test_mixup_blends_maps_and_refuses_hard_masks_and_boxes() -> None:
    images = torch.rand(N, 3, H, W, generator=gen(0))
    maps = torch.rand(N, 2, H, W, generator=gen(1))
    out, targets, mixed, params = DenseMix(cutmix.MixUp(4, generator=gen(5)), return_params=True)(
        images, labels(), maps)
    assert params.op == "mixup" and not params.boxes.any()
    torch.testing.assert_close(targets, functional.mix_targets(labels(), params.index, params.lam, num_classes=4))
    torch.testing.assert_close(mixed, functional.blend(maps, params.lam, params.index))
    torch.testing.assert_close(out, functional.blend(images, params.lam, params.index))
    hard = masks_of(tagged(), torch.uint8)
    with pytest.raises(ValueError, match="cannot blend hard masks"):
        DenseMix(cutmix.MixUp(4, generator=gen(5)))(images, labels(), hard)
    _, _, kept, params = DenseMix(cutmix.MixUp(4, per_sample=True, generator=gen(5)), hard="larger",
                                  return_params=True)(images, labels(), hard)
    for i in range(N):
        assert torch.equal(kept[i], hard[i] if params.lam[i] >= 0.5 else hard[params.index[i]])
    dets = [{"boxes": torch.tensor([[0.0, 0, 2, 2]]), "labels": torch.tensor([1])}] * N
    with pytest.raises(ValueError, match="MixUp has no rule for detection boxes"):
        DenseMix(cutmix.MixUp(4))(images, dets)


def test_detections_follow_the_same_box() -> None:
    images = tagged()
    dets = [{"boxes": torch.tensor([[0.0, 0, W, H], [1, 1, 4, 4]]), "labels": torch.tensor([i + 1, 50 + i])}
            for i in range(N)]
    for per_sample in (False, True):
        mix = DenseMix(cutmix.CutMix(4, per_sample=per_sample, generator=gen(7)), min_visibility=0.3,
                       return_params=True)
        out, targets, new, params = mix(images, labels(), dets)
        assert torch.equal(out, functional.paste(images, params.boxes, params.index))
        ref = dense.paste_detections(dets, params.boxes, params.index, canvas_size=(H, W), min_visibility=0.3)
        for a, b in zip(new, ref, strict=True):
            assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])
            assert a["labels"].dtype == torch.int64  # box labels stay hard
        assert targets.shape == (N, 4)


def test_identity_when_not_applied() -> None:
    images, masks = tagged(), masks_of(tagged(), torch.uint8)
    for mix in (DenseMix(cutmix.CutMix(4, prob=0.0), return_params=True),
                DenseMix(cutmix.CutMix(4), return_params=True).eval()):
        out, targets, m, params = mix(images, labels(), masks)
        assert out is images and m is masks and params.op == "none"
        assert torch.equal(params.lam, torch.ones(N, dtype=torch.float64))
        assert torch.equal(targets, functional.one_hot(labels(), 4))


def test_bad_arguments_name_what_was_expected() -> None:
    images = tagged()
    mix = DenseMix(cutmix.CutMix(4))
    with pytest.raises(TypeError, match="argument 1 is a str"):
        mix(images, "labels")
    with pytest.raises(TypeError, match=r"argument 2 is a Tensor of shape \(6,\)"):
        mix(images, labels(), labels())
    with pytest.raises(ValueError, match=r"masks\[0\] must be \[6, \.\.\., 13, 18\]"):
        mix(images, labels(), torch.zeros(N, H, W + 1, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"targets must hold one dict per image \(6\)"):
        mix(images, [{"boxes": torch.zeros(0, 4)}])
    with pytest.raises(TypeError, match=r"transform must be a cutmix\.CutMix, MixUp or Cutout"):
        DenseMix(torch.nn.Identity())
    with pytest.raises(ValueError, match="min_visibility"):
        DenseMix(cutmix.CutMix(4), min_visibility=2.0)


# -- tv_tensors ---------------------------------------------------------------------------------------------------
@pytest.fixture
def tv_tensors():
    return pytest.importorskip("torchvision.tv_tensors")


def test_a_dict_of_tv_tensors_comes_back_with_its_keys_and_types(tv_tensors) -> None:
    images = tagged()
    batch = {"image": tv_tensors.Image(images), "mask": tv_tensors.Mask(masks_of(images, torch.uint8)),
             "labels": labels(), "name": "batch-0"}
    out, params = DenseMix(cutmix.CutMix(4, generator=gen(1)), return_params=True)(batch)
    assert list(out) == ["image", "mask", "labels", "name"] and out["name"] == "batch-0"
    assert type(out["image"]) is tv_tensors.Image and type(out["mask"]) is tv_tensors.Mask
    assert type(out["labels"]) is torch.Tensor and out["labels"].shape == (N, 4)
    ref = dense.paste_masks(masks_of(images, torch.uint8), params.boxes, params.index)
    assert torch.equal(out["mask"].as_subclass(torch.Tensor), ref)
    src = out["image"].as_subclass(torch.Tensor)[:, 0]
    assert torch.equal(out["mask"].as_subclass(torch.Tensor) == 255, ref == 255) and (src >= 1).all()


def test_a_tuple_and_detection_targets_of_tv_tensors(tv_tensors) -> None:
    images = tagged()
    boxes = [tv_tensors.BoundingBoxes([[0, 0, W, H]], format="XYXY", canvas_size=(H, W)) for _ in range(N)]
    dets = [{"boxes": b, "labels": torch.tensor([i + 1])} for i, b in enumerate(boxes)]
    out = DenseMix(cutmix.CutMix(4, generator=gen(2)))((tv_tensors.Image(images), dets))
    assert isinstance(out, tuple) and len(out) == 2 and type(out[0]) is tv_tensors.Image
    for t in out[1]:
        assert type(t["boxes"]) is tv_tensors.BoundingBoxes and t["boxes"].canvas_size == (H, W)
    masks = tv_tensors.Mask(masks_of(images, torch.int64)[:, None])
    img, m, y = DenseMix(cutmix.CutMix(4, generator=gen(2)))(tv_tensors.Image(images), masks, labels())
    assert type(img) is tv_tensors.Image and type(m) is tv_tensors.Mask and m.dtype == torch.int64
    assert y.shape == (N, 4)


def test_unsupported_types_are_named(tv_tensors) -> None:
    images = tv_tensors.Image(tagged())
    with pytest.raises(TypeError, match=r"inputs\['video'\] is an unsupported Video"):
        DenseMix(cutmix.CutMix(4))({"image": images, "video": tv_tensors.Video(torch.zeros(N, 2, 3, H, W))})
    with pytest.raises(TypeError, match=r"inputs\['extra'\] is a plain torch.Tensor with no role"):
        DenseMix(cutmix.CutMix(4))({"image": images, "extra": torch.zeros(N, H, W)})
    with pytest.raises(TypeError, match="BoundingBoxes outside detection targets"):
        DenseMix(cutmix.CutMix(4))({"image": images, "boxes": tv_tensors.BoundingBoxes(
            torch.zeros(N, 4), format="XYXY", canvas_size=(H, W))})


def test_import_cutmix_does_not_import_torchvision() -> None:
    code = "import sys, cutmix, cutmix.dense, cutmix.tv; print('torchvision' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("per_sample", [False, True])
def test_cuda_gives_the_cpu_result(per_sample) -> None:
    images, masks, conf = tagged(), masks_of(tagged(), torch.int64), torch.rand(N, H, W, generator=gen(2))
    dets = [{"boxes": torch.tensor([[0.0, 0, W, H], [2, 3, 9, 8]]), "labels": torch.tensor([i + 1, 7])}
            for i in range(N)]
    cuda_dets = [{k: v.cuda() for k, v in d.items()} for d in dets]
    want = DenseMix(cutmix.CutMix(4, per_sample=per_sample, generator=gen(9)))(images, labels(), masks, conf, dets)
    got = DenseMix(cutmix.CutMix(4, per_sample=per_sample, generator=gen(9)))(
        images.cuda(), labels().cuda(), masks.cuda(), conf.cuda(), cuda_dets)
    for a, b in zip(got[:4], want[:4], strict=True):
        assert a.device.type == "cuda" and torch.equal(a.cpu(), b)
    for a, b in zip(got[4], want[4], strict=True):
        assert torch.equal(a["boxes"].cpu(), b["boxes"]) and torch.equal(a["labels"].cpu(), b["labels"])


def test_random_choice_passes_dense_targets_to_the_chosen_transform() -> None:
    images, masks = tagged(), masks_of(tagged(), torch.uint8)
    for seed in range(4):
        choice = cutmix.RandomChoice([cutmix.CutMix(4, generator=gen(seed)), cutmix.Cutout(4, size=5,
                                                                                          generator=gen(seed))],
                                     generator=gen(100 + seed))
        out, targets, m = choice(images, labels(), masks)
        u = float(cutmix.sampling.uniform(1, gen(100 + seed)))
        ref = (cutmix.CutMix(4, generator=gen(seed)) if u < 0.5 else cutmix.Cutout(4, size=5, generator=gen(seed)))
        want = DenseMix(ref)(images, labels(), masks)
        assert torch.equal(out, want[0]) and torch.equal(targets, want[1]) and torch.equal(m, want[2])
        assert choice.step == 1


def test_mix_collate_mixes_dict_samples_with_masks() -> None:
    images, masks = tagged(), masks_of(tagged(), torch.uint8)
    samples = [{"image": images[i], "mask": masks[i], "labels": labels()[i]} for i in range(N)]
    out = cutmix.MixCollate(cutmix.CutMix(4, generator=gen(3)))(samples)
    want = DenseMix(cutmix.CutMix(4, generator=gen(3)))(images, labels(), masks)
    assert list(out) == ["image", "mask", "labels"]
    assert torch.equal(out["image"], want[0]) and torch.equal(out["labels"], want[1])
    assert torch.equal(out["mask"], want[2])
