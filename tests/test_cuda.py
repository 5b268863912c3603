"""CPU and CUDA give identical results (skipped without a CUDA device)."""

from __future__ import annotations

import pytest
import torch
from _helpers import random_images, ref_paste

import cutmix
from cutmix import functional as F

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_paste_cpu_equals_cuda(mode, dtype):
    images = random_images(4, 3, 7, 13, dtype, "channels_last", seed=1)
    index = torch.tensor([2, 0, 3, 2])
    boxes = torch.tensor([2, 1, 11, 6]) if mode == "batch" else torch.tensor(
        [[1, 2, 6, 5], [0, 0, 13, 7], [3, 3, 3, 6], [12, 6, 13, 7]])
    cpu = F.paste(images, boxes, index)
    gpu = F.paste(images.cuda(), boxes.cuda(), index.cuda())
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu) and torch.equal(cpu, ref_paste(images, boxes, index))
    assert gpu.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("cls", [cutmix.CutMix, cutmix.MixUp, cutmix.Cutout], ids=lambda c: c.__name__)
@pytest.mark.parametrize("per_sample", [False, True])
def test_transform_cpu_generator_gives_the_same_result_on_cuda(cls, per_sample):
    images, labels = random_images(8, 3, 16, 16, torch.uint8, seed=2), torch.arange(8)
    cpu = cls(8, per_sample=per_sample, generator=torch.Generator().manual_seed(3))(images, labels)
    gpu = cls(8, per_sample=per_sample, generator=torch.Generator().manual_seed(3))(images.cuda(), labels.cuda())
    assert gpu[0].is_cuda and gpu[1].is_cuda
    assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.allclose(gpu[1].cpu(), cpu[1], atol=1e-6)


def test_feature_cutmix_on_cuda_gives_gradients():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 4)).cuda()
    mixer = cutmix.FeatureCutMix(model, "0", num_classes=4, generator=torch.Generator().manual_seed(0))
    images = torch.rand(4, 3, 8, 8, device="cuda", requires_grad=True)
    logits, targets = mixer(images, torch.arange(4, device="cuda"))
    cutmix.SoftTargetCrossEntropy()(logits, targets).backward()
    assert images.grad is not None and bool(images.grad.abs().sum() > 0)


@pytest.mark.parametrize("cls", [cutmix.CutMix, cutmix.MixUp, cutmix.Cutout])
@pytest.mark.parametrize("per_sample", [False, True])
def test_validation_adds_no_host_sync_on_cuda(cls, per_sample):
    # Range checks of labels run on the CPU only: on CUDA they would stall the stream once per batch.
    images = random_images(8, 3, 16, 16, torch.uint8, seed=4).cuda()
    labels, soft = torch.arange(8, device="cuda"), torch.full((8, 8), 1 / 8, device="cuda")
    mix = cls(8, per_sample=per_sample, generator=torch.Generator().manual_seed(5))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        mix(images, labels)
        mix(images, soft)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cuda_labels_must_be_on_the_images_device_but_values_are_not_checked():
    images = random_images(4, 3, 8, 8, torch.float32, seed=6).cuda()
    with pytest.raises(ValueError, match="labels must be on the images' device"):
        cutmix.CutMix(4)(images, torch.arange(4))
    # Documented: soft-label values are only checked on the CPU, so rows summing to 2 pass through on CUDA.
    _, targets = cutmix.CutMix(4)(images, torch.full((4, 4), 0.5, device="cuda"))
    assert torch.allclose(targets.sum(1), torch.full((4,), 2.0, device="cuda"))


def test_cpu_partners_and_boxes_work_with_cuda_images():
    images = random_images(4, 3, 8, 8, torch.float32, seed=7)
    index, boxes = torch.tensor([1, 2, 3, 0]), torch.tensor([[0, 0, 4, 4]] * 4)
    gpu, targets = F.cutmix(images.cuda(), torch.arange(4).cuda(), boxes=boxes, index=index, num_classes=4)
    cpu, _ = F.cutmix(images, torch.arange(4), boxes=boxes, index=index, num_classes=4)
    assert torch.equal(gpu.cpu(), cpu) and targets.is_cuda


def test_the_benchmarks_where_reference_runs_on_cuda_with_the_cpu_draws():
    from cutmix.bench import ops

    x = torch.rand(8, 3, 12, 10)
    y = torch.arange(8)
    cpu = ops.where_reference(x, y, 8, torch.Generator().manual_seed(0))
    gpu = ops.where_reference(x.cuda(), y.cuda(), 8, torch.Generator().manual_seed(0))
    assert gpu[0].is_cuda and torch.equal(gpu[0].cpu(), cpu[0]) and torch.allclose(gpu[1].cpu(), cpu[1])
