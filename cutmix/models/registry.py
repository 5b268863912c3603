"""Build a model by name: ours (CIFAR ResNets, PreAct ResNet-18, PyramidNets), torchvision's or timm's.

Configs and the command line name models as strings; this is the one place that turns a name into a module.
Nothing is ever downloaded: torchvision and timm models are built with random weights.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from cutmix._checks import check_positive_int
from cutmix.models.pyramidnet import pyramidnet
from cutmix.models.resnet_cifar import cifar_resnet, preact_resnet18

TV_PREFIX = "tv:"
TIMM_PREFIX = "timm:"


def _pyramidnet(
    num_classes: int, *, depth: int, alpha: float, bottleneck: bool, in_channels: int = 3
) -> nn.Module:
    return pyramidnet(depth, alpha, bottleneck, num_classes, in_channels=in_channels)


def _resnet(depth: int, num_classes: int, **kwargs: Any) -> nn.Module:
    return cifar_resnet(depth, num_classes, **kwargs)


# name -> factory(num_classes, **kwargs). Defaults are keyword-overridable, e.g. build_model("pyramidnet200", 100,
# alpha=270) or build_model("resnet20", 10, width=4).
_MODELS: dict[str, Callable[..., nn.Module]] = {
    **{f"resnet{d}": partial(_resnet, d) for d in (8, 20, 32, 44, 56, 110)},
    "preact_resnet18": preact_resnet18,
    "pyramidnet110": partial(_pyramidnet, depth=110, alpha=64, bottleneck=False),
    "pyramidnet200": partial(_pyramidnet, depth=200, alpha=240, bottleneck=True),
}


def available_models() -> list[str]:
    """Names of our own models (``tv:NAME`` and ``timm:NAME`` reach torchvision's and timm's)."""
    return sorted(_MODELS, key=lambda s: (s.rstrip("0123456789"), len(s), s))


def _torchvision_names() -> list[str] | None:
    try:
        import torchvision.models
    except ImportError:
        return None
    return list(torchvision.models.list_models())


def _build_torchvision(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    if (names := _torchvision_names()) is None:
        raise ImportError(f"model {TV_PREFIX}{name} needs torchvision, which is not installed: pip install torchvision")
    if name not in names:
        raise ValueError(f"torchvision has no model {name!r}; see torchvision.models.list_models()")
    import torchvision.models

    return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)


def _build_timm(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    try:
        import timm
    except ImportError as e:
        raise ImportError(f"model {TIMM_PREFIX}{name} needs timm, which is not installed: pip install timm") from e
    if not timm.is_model(name):
        raise ValueError(f"timm has no model {name!r}; see timm.list_models()")
    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)


def build_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the model called ``name`` with a ``num_classes``-way classifier and random weights.

    ``name`` is one of :func:`available_models`, ``tv:NAME`` (``torchvision.models.get_model``), ``timm:NAME``
    (``timm.create_model``), or a bare torchvision name that is not one of ours (``resnet50``). ``kwargs`` go to
    the constructor (``width`` for CIFAR ResNets; ``depth``, ``alpha``, ``bottleneck`` for PyramidNets).
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    num_classes = check_positive_int(num_classes, "num_classes")
    key = name.strip()
    if key.startswith(TV_PREFIX):
        return _build_torchvision(key[len(TV_PREFIX) :], num_classes, **kwargs)
    if key.startswith(TIMM_PREFIX):
        return _build_timm(key[len(TIMM_PREFIX) :], num_classes, **kwargs)
    if key.lower() in _MODELS:
        return _MODELS[key.lower()](num_classes, **kwargs)
    tv_names = _torchvision_names()
    if tv_names is not None and key in tv_names:
        return _build_torchvision(key, num_classes, **kwargs)
    raise ValueError(
        f"unknown model {name!r}; available: {', '.join(available_models())}; "
        f"or prefix a torchvision or timm name with '{TV_PREFIX}' or '{TIMM_PREFIX}' (e.g. 'tv:resnet50')"
    )
