"""ResNets for CIFAR-size images: the 6n+2 post-activation family and a pre-activation ResNet-18.

Both follow He et al. (2016): "Deep Residual Learning" (section 4.2, the CIFAR-10 networks) and "Identity Mappings
in Deep Residual Networks" (pre-activation units). The stems are 3x3 convolutions at stride 1 with no max-pool,
so 32x32 inputs keep their resolution in the first stage; global average pooling lets any input of 8x8 or more
through.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cutmix._checks import check_positive_int


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """A padded 3x3 convolution without bias (a BatchNorm always follows or precedes it)."""
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


class FeatureClassifier(nn.Module):
    """Base of our models: ``forward = fc(flatten(avgpool(forward_features(x))))``.

    Keeping the head this exact lets class activation maps be computed from ``forward_features`` and ``fc.weight``,
    and feature-level mixing hook the stages named in ``stage_names``.
    """

    fc: nn.Linear
    stage_names: list[str]
    num_features: int

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map [N, C, h, w], after the final activation and before pooling."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.forward_features(x), 1), 1))

    def init_weights(self) -> None:
        """Kaiming-normal convolutions (fan-out, as in the ResNet and PyramidNet code), BN at identity, zero fc bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    """Post-activation basic unit: conv-BN-ReLU-conv-BN, plus shortcut, then ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        # Projection only where the shape changes (option B of the paper): identity everywhere else.
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(FeatureClassifier):
    """ResNet-(6n+2) for CIFAR: a 3x3 stem, three stages of n basic units at widths 16/32/64 (times ``width``)."""

    def __init__(self, depth: int = 20, num_classes: int = 10, width: float = 1, in_channels: int = 3) -> None:
        super().__init__()
        check_positive_int(depth, "depth")
        check_positive_int(num_classes, "num_classes")
        check_positive_int(in_channels, "in_channels")
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 20, 32, 44, 56, 110, ...), got {depth}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"width must be a positive number, got {width!r}")
        n = (depth - 2) // 6
        widths = [max(1, round(c * width)) for c in (16, 32, 64)]
        self.conv1 = conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_ch = widths[0]
        for i, (out_ch, stride) in enumerate(zip(widths, (1, 2, 2), strict=True), start=1):
            units = [BasicBlock(in_ch if j == 0 else out_ch, out_ch, stride if j == 0 else 1) for j in range(n)]
            self.add_module(f"layer{i}", nn.Sequential(*units))
            in_ch = out_ch
        self.stage_names = ["layer1", "layer2", "layer3"]
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, num_classes)
        self.init_weights()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))


class PreActBlock(nn.Module):
    """Pre-activation basic unit: BN-ReLU-conv-BN-ReLU-conv, plus shortcut, no activation after the sum.

    A projection shortcut takes the pre-activated input, as in the identity-mappings paper's code.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.relu = nn.ReLU(inplace=True)  # acts on BN outputs, never on x, which the identity shortcut needs
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + skip


class PreActResNet(FeatureClassifier):
    """Pre-activation ResNet with a CIFAR stem (3x3 conv, stride 1, no max-pool) and a final BN-ReLU."""

    def __init__(
        self, blocks: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 10, width: int = 64, in_channels: int = 3
    ) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        check_positive_int(width, "width")
        check_positive_int(in_channels, "in_channels")
        if not blocks or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in blocks):
            raise ValueError(f"blocks must be a non-empty sequence of positive ints, got {blocks!r}")
        self.conv1 = conv3x3(in_channels, width)
        in_ch = width
        self.stage_names = []
        for i, n in enumerate(blocks):
            out_ch = width * 2**i
            stride = 1 if i == 0 else 2
            units = [PreActBlock(in_ch if j == 0 else out_ch, out_ch, stride if j == 0 else 1) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*units))
            self.stage_names.append(f"layer{i + 1}")
            in_ch = out_ch
        self.bn = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, num_classes)
        self.init_weights()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.relu(self.bn(x))


def cifar_resnet(depth: int, num_classes: int = 10, *, width: float = 1, in_channels: int = 3) -> CifarResNet:
    """CIFAR ResNet of any 6n+2 depth (20, 32, 44, 56, 110, ...)."""
    return CifarResNet(depth, num_classes, width=width, in_channels=in_channels)


def preact_resnet18(num_classes: int = 10, *, width: int = 64, in_channels: int = 3) -> PreActResNet:
    """Pre-activation ResNet-18 (about 11.2M parameters for 10 classes): the CutMix paper's CIFAR baseline size."""
    return PreActResNet((2, 2, 2, 2), num_classes, width=width, in_channels=in_channels)
