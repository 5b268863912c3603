"""Segmentation models for ``cutmix train --task segment``: a CIFAR ResNet trunk with a light FCN head, or a
torchvision segmentation model by name.

Every model here maps images [N, C, H, W] to per-pixel class scores [N, K, H, W] at the input's resolution.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from cutmix._checks import check_positive_int
from cutmix.models.registry import TV_PREFIX
from cutmix.models.resnet_cifar import CifarResNet


class SegResNet(nn.Module):
    """A CIFAR ResNet-(6n+2) trunk with an FCN-8s-style head (Long et al., 2015).

    1x1 class scores of each stage (full, 1/2 and 1/4 resolution) are upsampled and summed, coarse to fine: the deep
    stage says what is there, the early ones where its edges are. The head adds ~1.2 k parameters (11 classes) to
    the trunk's 0.27 M (ResNet-20), so a segmentation run costs about what a classification run does.
    """

    def __init__(self, depth: int = 20, num_classes: int = 11, width: float = 1, in_channels: int = 3) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        trunk = CifarResNet(depth, num_classes, width, in_channels)
        self.stem = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu)
        self.layer1, self.layer2, self.layer3 = trunk.layer1, trunk.layer2, trunk.layer3
        widths = [stage[-1].conv2.out_channels for stage in (self.layer1, self.layer2, self.layer3)]
        self.heads = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in widths)
        for head in self.heads:
            nn.init.zeros_(head.bias)

    def forward(self, x: Tensor) -> Tensor:
        f1 = self.layer1(self.stem(x))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        out = self.heads[2](f3)
        for head, feature in ((self.heads[1], f2), (self.heads[0], f1)):
            out = F.interpolate(out, size=feature.shape[-2:], mode="bilinear", align_corners=False) + head(feature)
        return out


class _MainOutput(nn.Module):
    """A torchvision segmentation model returns ``{"out": scores, ...}``: keep the scores."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)["out"]


def segmentation_models() -> list[str]:
    """Names :func:`build_segmenter` takes (``tv:NAME`` also reaches torchvision's segmentation models)."""
    return [f"resnet{d}" for d in (8, 20, 32, 44, 56, 110)]


def build_segmenter(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """A segmentation model by name: ``resnetD`` (a CIFAR ResNet-D trunk, :class:`SegResNet`) or ``tv:NAME`` (e.g.
    ``tv:lraspp_mobilenet_v3_large``, built with random weights: nothing is downloaded)."""
    if name.startswith(TV_PREFIX):
        from torchvision.models import get_model, list_models, segmentation

        tv_name = name[len(TV_PREFIX):]
        known = list_models(module=segmentation)
        if tv_name not in known:
            raise ValueError(f"model {name}: not a torchvision segmentation model; known: {', '.join(known)}")
        return _MainOutput(get_model(tv_name, weights=None, weights_backbone=None, num_classes=num_classes,
                                     **kwargs))
    if name in segmentation_models():
        return SegResNet(int(name[len("resnet"):]), num_classes, **kwargs)
    raise ValueError(f"model {name}: --task segment takes {', '.join(segmentation_models())} or tv:NAME (a "
                     f"torchvision segmentation model)")
