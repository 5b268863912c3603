"""cutmix: CutMix (Yun et al., ICCV 2019) as exact, vectorised PyTorch batch ops, with the paper's variants and
the baselines it compares against.

>>> import cutmix
>>> mix = cutmix.CutMix(num_classes=10, alpha=1.0)
>>> images, targets = mix(images, labels)           # doctest: +SKIP
>>> loss = cutmix.SoftTargetCrossEntropy()(model(images), targets)  # doctest: +SKIP
"""

from cutmix import boxes, functional, sampling, schedule
from cutmix.feature import FeatureCutMix, FeatureMix, ManifoldMixup
from cutmix.losses import SoftTargetCrossEntropy, soft_target_cross_entropy
from cutmix.transforms import BatchMix, CutMix, Cutout, MixCollate, MixUp, RandomChoice

__version__ = "0.1.0"

__all__ = [
    "BatchMix",
    "CutMix",
    "Cutout",
    "FeatureCutMix",
    "FeatureMix",
    "ManifoldMixup",
    "MixCollate",
    "MixUp",
    "RandomChoice",
    "SoftTargetCrossEntropy",
    "boxes",
    "functional",
    "sampling",
    "schedule",
    "soft_target_cross_entropy",
]
