"""Mixing inside a model: CutMix on a feature map (the paper's ablation) and Manifold Mixup (a baseline).

A :class:`FeatureMix` runs the model with a one-shot forward hook on a named layer that replaces the layer's output
[N, C, h, w] by its mix. The mixing is the batch transform's own (:class:`~cutmix.CutMix` or
:class:`~cutmix.MixUp`), applied to the feature map: CutMix boxes are sampled on the feature map's grid, so the
label weights are the exact feature-map shares. Gradients flow to both partners through the mix.

The model's parameters, state dict and DDP wrapping are untouched: the hook exists only during the call.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from cutmix import sampling
from cutmix._checks import check_images, check_labels
from cutmix.transforms import BatchMix, CutMix, MixUp

INPUT = ""  # the layer name that means "mix the input images" (layer 0 in the paper's ablation)


def _resolve(model: nn.Module, name: str) -> nn.Module | None:
    if name in (INPUT, "input"):
        return None
    modules = dict(model.named_modules())
    for prefix in ("", "module.", "_orig_mod.", "module._orig_mod."):  # DDP and torch.compile wrappers
        if prefix + name in modules:
            return modules[prefix + name]
    names = [n for n in modules if n][:12]
    raise ValueError(f"layer {name!r} is not a submodule of the model; some of its layers: {names}")


class FeatureMix:
    """Run ``model`` with ``mix`` applied at one of ``layers`` (drawn uniformly per batch when several).

    ``logits, targets = FeatureMix(model, "layer2", CutMix(10))(images, labels)``. Use ``""`` (or ``"input"``)
    for the input itself. In eval mode (model or mix) it is the plain model with one-hot targets.
    """

    def __init__(self, model: nn.Module, layers: str | Sequence[str], mix: BatchMix) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(mix, BatchMix):
            raise TypeError(f"mix must be a cutmix batch transform (CutMix, MixUp, ...), got {type(mix).__name__}")
        if not isinstance(layers, (str, Sequence)):
            raise TypeError(f"layers must be a layer name or a list of names, got {type(layers).__name__}")
        names = [layers] if isinstance(layers, str) else list(layers)
        for i, name in enumerate(names):
            if not isinstance(name, str):
                raise TypeError(f"layers[{i}] must be a layer name (str), got {type(name).__name__}")
        if not names:
            raise ValueError("layers must name at least one layer (use '' for the input)")
        if mix.inplace:
            raise ValueError("mix must not be inplace: feature maps are needed by autograd")
        self.model = model
        self.mix = mix
        self.layers = names
        self.modules = [_resolve(model, n) for n in names]

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(images, Tensor) or images.ndim == 0:
            raise TypeError(f"images must be a batched torch.Tensor, got {type(images).__name__}")
        n = images.shape[0]
        labels, k = check_labels(labels, n, self.mix.num_classes, device=images.device)
        drawn = self.mix.draw(n) if (self.model.training and self.mix.training) else None
        if drawn is None:
            return self.model(images), self.mix.identity_targets(labels, k)
        index, selected = drawn
        choice = 0
        if len(self.modules) > 1:
            choice = int(sampling.randint(len(self.modules), 1, self.mix.generator))
        module = self.modules[choice]
        if module is None:
            mixed, targets = self.mix.mix_with(check_images(images), labels, k, index, selected)
            return self.model(mixed), targets

        result: list[Tensor] = []

        def hook(_module: nn.Module, _inputs: object, output: object) -> Tensor | None:
            if result:  # a layer called twice in one forward is mixed once
                return None
            if not isinstance(output, Tensor) or output.ndim != 4:
                shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
                raise ValueError(f"layer {self.layers[choice]!r} must output a feature map [N, C, H, W] to be mixed, "
                                 f"got {shape}")
            mixed_features, targets = self.mix.mix_with(output, labels, k, index.to(output.device), selected)
            result.append(targets)
            return mixed_features

        handle = module.register_forward_hook(hook)
        try:
            logits = self.model(images)
        finally:
            handle.remove()
        if not result:
            raise RuntimeError(f"layer {self.layers[choice]!r} was not called by the model's forward")
        return logits, result[0]


def FeatureCutMix(model: nn.Module, layer: str | Sequence[str], num_classes: int, **cutmix_kwargs) -> FeatureMix:
    """CutMix on the feature map of ``layer`` (the paper's "CutMix on feature maps" ablation)."""
    return FeatureMix(model, layer, CutMix(num_classes, **cutmix_kwargs))


def ManifoldMixup(
    model: nn.Module, layers: Sequence[str], num_classes: int, alpha: float = 2.0, **mixup_kwargs
) -> FeatureMix:
    """Manifold Mixup (Verma et al., 2019): Mixup at a layer drawn per batch from ``layers`` ("" = the input).

    ``alpha=2.0`` is the value the Manifold Mixup paper uses for CIFAR.
    """
    return FeatureMix(model, layers, MixUp(num_classes, alpha=alpha, **mixup_kwargs))


__all__ = ["INPUT", "FeatureCutMix", "FeatureMix", "ManifoldMixup"]
