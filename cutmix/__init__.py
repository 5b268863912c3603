"""cutmix: CutMix (Yun et al., ICCV 2019) as exact, vectorised PyTorch batch ops, with the paper's variants and
the baselines it compares against.

>>> import cutmix
>>> mix = cutmix.CutMix(num_classes=10, alpha=1.0)
>>> images, targets = mix(images, labels)           # doctest: +SKIP
>>> loss = cutmix.SoftTargetCrossEntropy()(model(images), targets)  # doctest: +SKIP

The names below load at first use (PEP 562): ``import cutmix`` itself does not import torch, so the command line
parses its flags and answers ``--help`` or a typo before paying for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = ("boxes", "functional", "sampling", "schedule")
_EXPORTS = {
    "BatchMix": "transforms",
    "CutMix": "transforms",
    "Cutout": "transforms",
    "MixCollate": "transforms",
    "MixUp": "transforms",
    "RandomChoice": "transforms",
    "FeatureCutMix": "feature",
    "FeatureMix": "feature",
    "ManifoldMixup": "feature",
    "SoftTargetCrossEntropy": "losses",
    "soft_target_cross_entropy": "losses",
}
__all__ = [  # what the two tables above export (a literal, for tools that read it without running the module)
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

if TYPE_CHECKING:
    from cutmix import boxes, functional, sampling, schedule
    from cutmix.feature import FeatureCutMix, FeatureMix, ManifoldMixup
    from cutmix.losses import SoftTargetCrossEntropy, soft_target_cross_entropy
    from cutmix.transforms import BatchMix, CutMix, Cutout, MixCollate, MixUp, RandomChoice


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"cutmix.{name}")  # the import binds it on the package
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"cutmix.{_EXPORTS[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'cutmix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
