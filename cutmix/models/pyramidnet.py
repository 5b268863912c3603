"""PyramidNet (Han, Kim and Kim, CVPR 2017, "Deep Pyramidal Residual Networks") for CIFAR-size images.

Instead of doubling the width at each downsampling, every residual unit widens the network a little: the widths grow
additively from 16 by ``alpha / units`` per unit, so the total widening is ``alpha``. Units are "pyramidal"
(BN first, one ReLU inside, BN last, no ReLU after the sum), and the shortcut is the identity with the new channels
zero-padded (2x2 average pooling where the unit downsamples), so the network adds no projection parameters. The
CutMix paper's CIFAR model is PyramidNet-200 with alpha 240 and bottleneck units.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from cutmix._checks import check_positive_int
from cutmix.models.resnet_cifar import FeatureClassifier, conv3x3


class PyramidBasic(nn.Module):
    """Basic pyramidal unit: BN-conv3x3-BN-ReLU-conv3x3-BN."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            conv3x3(in_ch, width, stride),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            conv3x3(width, width),
            nn.BatchNorm2d(width),
        )
        self.shortcut = PaddedShortcut(in_ch, width * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class PyramidBottleneck(nn.Module):
    """Bottleneck pyramidal unit: BN-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN, with 4x ``width`` outputs."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            conv3x3(width, width, stride),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.shortcut = PaddedShortcut(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class PaddedShortcut(nn.Module):
    """Parameter-free shortcut: optional 2x2 average pooling, then zeros appended as the extra channels.

    Pooling uses ``ceil_mode`` so odd sizes give ceil(h/2), matching the stride-2 3x3 convolution of the residual.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if out_ch < in_ch:
            raise ValueError(f"a pyramidal unit cannot narrow the network ({in_ch} -> {out_ch} channels)")
        self.extra = out_ch - in_ch
        self.pool = nn.AvgPool2d(2, stride=2, ceil_mode=True) if stride != 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra}"


class PyramidNet(FeatureClassifier):
    """PyramidNet: depth 6n+2 (basic units) or 9n+2 (bottleneck units), total additive widening ``alpha``."""

    def __init__(
        self,
        depth: int = 110,
        alpha: float = 64,
        bottleneck: bool = False,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_positive_int(depth, "depth")
        check_positive_int(num_classes, "num_classes")
        check_positive_int(in_channels, "in_channels")
        if not isinstance(bottleneck, bool):
            raise TypeError(f"bottleneck must be a bool, got {type(bottleneck).__name__}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
        block: type[PyramidBasic] | type[PyramidBottleneck] = PyramidBottleneck if bottleneck else PyramidBasic
        per_unit = 9 if bottleneck else 6  # layers per unit, summed over the three stages
        if depth < per_unit + 2 or (depth - 2) % per_unit:
            kind = "bottleneck" if bottleneck else "basic"
            raise ValueError(f"PyramidNet depth with {kind} units must be {per_unit}n+2 with n >= 1, got {depth}")
        n = (depth - 2) // per_unit
        step = alpha / (3 * n)
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)  # no ReLU here: every unit starts with its own BN
        in_ch, width = 16, 16.0
        for stage, stride in enumerate((1, 2, 2), start=1):
            units = []
            for j in range(n):
                width += step
                unit = block(in_ch, round(width), stride if j == 0 else 1)
                units.append(unit)
                in_ch = round(width) * block.expansion
            self.add_module(f"layer{stage}", nn.Sequential(*units))
        self.stage_names = ["layer1", "layer2", "layer3"]
        self.bn_final = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, num_classes)
        self.depth, self.alpha, self.bottleneck = depth, alpha, bottleneck
        self.init_weights()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.bn1(self.conv1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.relu(self.bn_final(x))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, alpha={self.alpha}, bottleneck={self.bottleneck}"


def pyramidnet(
    depth: int = 110, alpha: float = 64, bottleneck: bool = False, num_classes: int = 10, *, in_channels: int = 3
) -> PyramidNet:
    """PyramidNet of any valid depth and widening (e.g. ``pyramidnet(200, 240, True, 100)``, the CutMix model)."""
    return PyramidNet(depth, alpha, bottleneck, num_classes, in_channels)
