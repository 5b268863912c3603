"""Batch crop-and-flip against the obvious per-sample reference, its randomness, ImageNet transforms, normalize."""

from __future__ import annotations

import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2

from cutmix.data import (
    MEAN_STD,
    Lighting,
    crop_flip,
    crop_flip_params,
    eval_transform,
    imagenet_train_transform,
    normalize,
    random_crop_flip,
)


def _batch(n: int, c: int, h: int, w: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    return x if dtype == torch.uint8 else (x.to(dtype) / 255 - 0.3)  # floats with negative values too


def reference(images: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, flips: torch.Tensor, pad: int, mode: str):
    """Pad each sample, slice its window, flip it: one sample at a time (float64 keeps uint8 values exact)."""
    h, w = images.shape[-2:]
    out = []
    for i in range(images.shape[0]):
        padded = F.pad(images[i : i + 1].double(), (pad, pad, pad, pad), mode="constant" if mode == "zeros" else mode)
        window = padded[0, :, int(oy[i]) : int(oy[i]) + h, int(ox[i]) : int(ox[i]) + w]
        out.append(window.flip(-1) if flips[i] else window)
    return torch.stack(out).to(images.dtype)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize(("pad", "h", "w"), [(4, 32, 32), (2, 5, 9), (0, 4, 4), (3, 4, 7)])
def test_equals_reference(dtype: torch.dtype, mode: str, pad: int, h: int, w: int) -> None:
    images = _batch(64, 3, h, w, dtype)
    g = torch.Generator().manual_seed(pad * 100 + h)
    oy, ox, flips = crop_flip_params(64, pad, g)
    out = crop_flip(images, oy, ox, flips, pad, mode)
    assert out.dtype == dtype and out.shape == images.shape
    assert torch.equal(out, reference(images, oy, ox, flips, pad, mode))
    # the random version draws exactly those parameters from an equally seeded generator
    g = torch.Generator().manual_seed(pad * 100 + h)
    assert torch.equal(random_crop_flip(images, pad, generator=g, padding_mode=mode), out)


def test_channels_last_in_channels_last_out() -> None:
    images = _batch(8, 3, 12, 12, torch.float32).contiguous(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(1)
    params = crop_flip_params(8, 3, g)
    out = crop_flip(images, *params, pad=3)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, reference(images, *params, 3, "zeros"))


def test_no_flip_and_no_pad_is_identity() -> None:
    images = _batch(16, 3, 8, 8, torch.uint8)
    assert torch.equal(random_crop_flip(images, 0, flip=False), images)
    _, _, flips = crop_flip_params(100, 4, flip=False)
    assert not flips.any()


def test_does_not_modify_input() -> None:
    images = _batch(16, 3, 8, 8, torch.float32)
    before = images.clone()
    random_crop_flip(images, 4, padding_mode="reflect")
    assert torch.equal(images, before)


def test_offsets_and_flips_are_uniform() -> None:
    """Decode each sample's offsets and flip from the output of images whose pixels name their coordinates."""
    n, h, w, pad = 18000, 16, 16, 4
    coords = torch.stack(torch.meshgrid(torch.arange(h) + 1, torch.arange(w) + 1, indexing="ij"))  # 0 = padding
    images = coords[None].expand(n, 2, h, w).to(torch.uint8)
    out = random_crop_flip(images, pad, generator=torch.Generator().manual_seed(2024)).long()
    mid = h // 2  # the middle row/column always reads a real pixel when pad < side / 2
    rows = out[:, 0, mid, mid] - 1
    cols, right = out[:, 1, mid, mid] - 1, out[:, 1, mid, mid + 1] - 1
    flipped = right < cols
    oy = rows - mid + pad
    ox = torch.where(flipped, cols - (w - 1 - mid), cols - mid) + pad
    k = 2 * pad + 1
    expected = n / k
    for offsets in (oy, ox):
        counts = torch.bincount(offsets, minlength=k)
        assert counts.numel() == k and offsets.min() == 0
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 26.1  # chi-square, 8 degrees of freedom, p = 0.001
    assert abs(flipped.float().mean().item() - 0.5) < 0.015  # 4 sigma
    # independence of the three draws: the joint (oy, ox, flip) table is uniform too
    joint = torch.bincount((oy * k + ox) * 2 + flipped.long(), minlength=k * k * 2).float()
    assert joint.min() > 0.5 * n / (k * k * 2) and joint.max() < 1.5 * n / (k * k * 2)


def test_seeded_generator_reproduces() -> None:
    images = _batch(32, 3, 10, 10, torch.uint8)
    a = random_crop_flip(images, 2, generator=torch.Generator().manual_seed(5))
    b = random_crop_flip(images, 2, generator=torch.Generator().manual_seed(5))
    c = random_crop_flip(images, 2, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("gen_device", ["cpu", "cuda"])
def test_cuda_matches_cpu(gen_device: str) -> None:
    images = _batch(64, 3, 32, 32, torch.uint8)
    g = torch.Generator(device=gen_device).manual_seed(3)
    out = random_crop_flip(images.cuda(), 4, generator=g, padding_mode="reflect")
    assert out.device.type == "cuda"
    params = crop_flip_params(64, 4, torch.Generator(device=gen_device).manual_seed(3))
    assert torch.equal(out.cpu(), crop_flip(images, *(p.cpu() for p in params), pad=4, padding_mode="reflect"))


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda x: random_crop_flip(x, -1), ValueError),
        (lambda x: random_crop_flip(x, 1.5), TypeError),
        (lambda x: random_crop_flip(x, 8, padding_mode="reflect"), ValueError),
        (lambda x: random_crop_flip(x, 2, padding_mode="edge"), ValueError),
        (lambda x: random_crop_flip(x[0], 2), ValueError),
        (lambda x: random_crop_flip(x.int(), 2), TypeError),
        (lambda x: random_crop_flip(x, 2, generator=3), TypeError),
    ],
)
def test_bad_arguments(call, error: type[Exception]) -> None:
    with pytest.raises(error):
        call(_batch(2, 3, 8, 8, torch.uint8))


# -- ImageNet transforms


def test_lighting_adds_one_pca_offset_per_call() -> None:
    light = Lighting(alphastd=0.1)
    offsets = torch.stack([light(torch.zeros(3, 2, 2))[:, 0, 0] for _ in range(3000)])  # float: unclamped
    eigvec = torch.tensor(Lighting.EIGVEC)
    # in the eigenbasis the offsets are independent with std alphastd * eigval
    coeffs = offsets @ eigvec  # eigvec is orthogonal: column j is eigenvector j
    expected = 0.1 * torch.tensor(Lighting.EIGVAL)
    assert torch.allclose(coeffs.std(0), expected, rtol=0.1)
    assert torch.allclose(coeffs.mean(0), torch.zeros(3), atol=4 * float(expected.max()) / 3000**0.5)


def test_lighting_on_uint8_and_passthrough() -> None:
    torch.manual_seed(0)
    image = torch.full((3, 4, 5), 128, dtype=torch.uint8)
    out = Lighting(0.1)(image)
    assert out.dtype == torch.uint8 and out.shape == image.shape
    shift = out.int() - 128
    assert (shift == shift[:, :1, :1]).all()  # one offset per channel
    assert torch.equal(Lighting(0.0)(image), image)
    saturated = Lighting(10.0)(torch.full((3, 2, 2), 250, dtype=torch.uint8))  # clamped, not wrapped
    assert saturated.dtype == torch.uint8
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[0, 0, 2, 2]]), format="XYXY", canvas_size=(4, 5))
    img, out_boxes = Lighting(0.1)(tv_tensors.Image(image), boxes)
    assert isinstance(img, tv_tensors.Image) and torch.equal(out_boxes, boxes)
    with pytest.raises(TypeError, match="PILToTensor"):
        Lighting(0.1)(PIL.Image.new("RGB", (4, 4)))
    with pytest.raises(ValueError, match="RGB"):
        Lighting(0.1)(torch.zeros(1, 4, 4))


def test_imagenet_train_transform() -> None:
    t = imagenet_train_transform(size=24)
    kinds = [type(s) for s in t.transforms]
    for kind in (v2.RandomResizedCrop, v2.RandomHorizontalFlip, v2.ColorJitter, Lighting):
        assert kind in kinds
    jitter = next(s for s in t.transforms if isinstance(s, v2.ColorJitter))
    assert jitter.brightness == jitter.contrast == jitter.saturation == (0.6, 1.4) and jitter.hue is None
    assert next(s for s in t.transforms if isinstance(s, Lighting)).alphastd == 0.1
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8)
    out = t(image)
    assert type(out) is torch.Tensor and out.dtype == torch.uint8 and out.shape == (3, 24, 24)
    from_pil = t(PIL.Image.fromarray(image.permute(1, 2, 0).numpy()))
    assert from_pil.shape == (3, 24, 24) and from_pil.dtype == torch.uint8


def test_eval_transform() -> None:
    image = torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8)
    out = eval_transform(size=24, resize=28)(image)
    assert type(out) is torch.Tensor and out.dtype == torch.uint8 and out.shape == (3, 24, 24)
    manual = v2.functional.center_crop(v2.functional.resize(image, [28], antialias=True), [24])
    assert torch.equal(out, manual)


# -- normalize


def test_normalize_uint8_and_float() -> None:
    mean, std = MEAN_STD["cifar10"]
    images = _batch(4, 3, 5, 5, torch.uint8)
    expected = (images.double() / 255 - torch.tensor(mean, dtype=torch.float64)[:, None, None]) / torch.tensor(
        std, dtype=torch.float64
    )[:, None, None]
    out = normalize(images, mean, std)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), expected, atol=1e-5)
    assert torch.allclose(normalize(images, mean, std, dtype=torch.float64), expected, atol=1e-12)
    floats = images.float() / 255
    before = floats.clone()
    assert torch.allclose(normalize(floats, mean, std).double(), expected, atol=1e-5)
    assert torch.equal(floats, before)  # not modified in place
    assert normalize(images[0], mean, std).shape == (3, 5, 5)


def test_normalize_keeps_memory_format() -> None:
    images = _batch(4, 3, 5, 5, torch.uint8).contiguous(memory_format=torch.channels_last)
    out = normalize(images, *MEAN_STD["imagenet"], dtype=torch.bfloat16)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)


def test_normalize_errors_and_table() -> None:
    images = _batch(2, 3, 4, 4, torch.uint8)
    with pytest.raises(ValueError, match="one value per channel"):
        normalize(images, (0.5, 0.5), (0.2, 0.2))
    with pytest.raises(ValueError, match="std"):
        normalize(images, (0.5,) * 3, (0.2, 0.0, 0.2))
    with pytest.raises(TypeError):
        normalize(images, (0.5,) * 3, (0.2,) * 3, dtype=torch.int32)
    assert set(MEAN_STD) >= {"cifar10", "cifar100", "imagenet", "shapes"}
    for mean, std in MEAN_STD.values():
        assert len(mean) == len(std) == 3 and all(0 < m < 1 for m in mean) and all(0 < s < 0.5 for s in std)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_normalizer_is_normalize_and_the_old_inline_formula(dtype):
    from cutmix.data import MEAN_STD, Normalizer, normalize

    mean, std = MEAN_STD["cifar10"]
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 6, 5), generator=g, dtype=torch.uint8)
    images = images if dtype == torch.uint8 else images.to(dtype) / 255
    out = Normalizer(mean, std)(images)
    assert out.dtype == torch.float32 and torch.equal(out, normalize(images, mean, std))
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    x = images.float().div(255) if dtype == torch.uint8 else images.float()
    assert torch.equal(out, x.sub(m).div(s))  # what the engine and the step benchmark computed inline before


def test_normalizer_checks_once_and_leaves_the_input_alone():
    from cutmix.data import Normalizer

    with pytest.raises(ValueError, match=r"std must be > 0 in every channel"):
        Normalizer((0.5, 0.5, 0.5), (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match=r"one value per channel each, got 3 and 2"):
        Normalizer((0.5, 0.5, 0.5), (0.2, 0.2))
    norm = Normalizer((0.5,), (0.25,))
    assert norm.state_dict() == {}  # the statistics live in the run's config, not in the weights
    with pytest.raises(ValueError, match=r"one value per channel \(3\), got 1"):
        norm(torch.zeros(2, 3, 4, 4))
    x = torch.full((1, 1, 2, 2), 0.75, requires_grad=True)
    y = norm(x, torch.float64)
    y.sum().backward()  # evaluation's attacks differentiate through it
    assert y.dtype == torch.float64 and torch.equal(x.detach(), torch.full((1, 1, 2, 2), 0.75))
    assert torch.equal(y.detach(), torch.ones(1, 1, 2, 2, dtype=torch.float64))
    assert torch.equal(x.grad, torch.full_like(x, 4.0))
