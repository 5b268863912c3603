"""Models for the CutMix experiments: CIFAR ResNets, PreAct ResNet-18 and PyramidNet, built by name.

>>> from cutmix.models import build_model
>>> model = build_model("pyramidnet200", num_classes=100)  # doctest: +SKIP
>>> model = build_model("tv:resnet50", num_classes=1000)    # torchvision, random weights  # doctest: +SKIP

Every model of ours computes ``fc(flatten(avgpool(forward_features(x))))``, names its stages in ``stage_names``
(``layer1``, ``layer2``, ...) for feature-level mixing hooks, and has ``num_features`` channels before ``fc``.
"""

from cutmix.models.pyramidnet import PyramidNet, pyramidnet
from cutmix.models.registry import available_models, build_model
from cutmix.models.resnet_cifar import CifarResNet, FeatureClassifier, PreActResNet, cifar_resnet, preact_resnet18

__all__ = [
    "CifarResNet",
    "FeatureClassifier",
    "PreActResNet",
    "PyramidNet",
    "available_models",
    "build_model",
    "cifar_resnet",
    "preact_resnet18",
    "pyramidnet",
]
