"""A real torchvision detector trains on builtin shape scenes mixed by CutMix, through the standard detection API."""

from __future__ import annotations

import math

import pytest
import torch

import cutmix
from cutmix import functional
from cutmix.data import load_shape_scenes
from cutmix.dense import DenseMix


def check_targets(targets: list[dict[str, torch.Tensor]], size: int, num_classes: int) -> None:
    """What torchvision's detection models require of a target, and what the mix promises on top."""
    for t in targets:
        b, y = t["boxes"], t["labels"]
        assert b.dtype == torch.float32 and b.ndim == 2 and b.shape[1] == 4
        assert y.dtype == torch.int64 and y.shape == (b.shape[0],)
        assert ((y >= 1) & (y <= num_classes)).all()  # hard labels, 0 stays background
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert (b >= 0).all() and (b <= size).all()


def test_faster_rcnn_trains_two_steps_on_cutmixed_scenes() -> None:
    detection = pytest.importorskip("torchvision.models.detection")
    torch.manual_seed(0)
    size, classes = 64, 4
    model = detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=classes + 1, min_size=size, max_size=size,
        rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100, rpn_batch_size_per_image=64,
        box_batch_size_per_image=64,
    )
    scenes = load_shape_scenes("train", 4, size=size, num_classes=classes, max_objects=3)
    mix = DenseMix(cutmix.CutMix(generator=torch.Generator().manual_seed(0)), min_visibility=0.25,
                   return_params=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    changed = 0
    for _ in range(2):
        images, targets, params = mix(scenes.images, scenes.targets)
        assert torch.equal(images, functional.paste(scenes.images, params.boxes, params.index))
        check_targets(targets, size, classes)
        changed += sum(not torch.equal(t["boxes"], s["boxes"]) for t, s in zip(targets, scenes.targets, strict=True))
        losses = model(list(images.float() / 255), [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
        assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
        loss = sum(losses.values())
        assert math.isfinite(loss.item()) and all(math.isfinite(v.item()) for v in losses.values())
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
    assert changed > 0  # the mix moved boxes
