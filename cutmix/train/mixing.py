"""The regulariser of a run, built from :class:`~cutmix.run.config.MixConfig`.

A :class:`Regularizer` turns a training batch into ``(logits, targets)``: batch-level methods mix the images and
then run the model, feature-level methods run the model with a mix inside. Before each step the engine hands it the
global step and a seed, so that schedules follow training progress and every step's draws can be replayed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import cutmix
from cutmix.run.config import MixConfig
from cutmix.schedule import Linear


def build_transform(config: MixConfig, num_classes: int, total_steps: int, label_smoothing: float) -> nn.Module | None:
    """The batch transform for ``config.method`` (None for "none")."""
    method = config.method
    if method == "none":
        return None
    prob = Linear(0.0, config.prob, max(total_steps, 1)) if config.schedule == "linear" else config.prob
    common = {"prob": prob, "per_sample": config.per_sample, "label_smoothing": label_smoothing,
              "generator": torch.Generator()}
    cutmix_kwargs = {**common, "box": config.box, "label": config.label, "placement": config.placement,
                     "sigma": config.sigma, "size": config.size}

    if method in ("cutmix", "feature-cutmix"):
        return cutmix.CutMix(num_classes, alpha=config.alpha, **cutmix_kwargs)
    if method == "mixup":
        return cutmix.MixUp(num_classes, alpha=config.alpha, label=config.label, **common)
    if method == "manifold-mixup":
        return cutmix.MixUp(num_classes, alpha=config.mixup_alpha, label=config.label, **common)
    if method == "cutout":
        return cutmix.Cutout(num_classes, size=config.cutout_size, **{**common, "per_sample": True})  # per image
    if method == "cutmix+mixup":
        mixup_common = {**common, "generator": torch.Generator()}
        return cutmix.RandomChoice(
            [cutmix.CutMix(num_classes, alpha=config.alpha, **cutmix_kwargs),
             cutmix.MixUp(num_classes, alpha=config.mixup_alpha, label=config.label, **mixup_common)],
            p=[1.0 - config.switch_prob, config.switch_prob],
            generator=torch.Generator(),
        )
    raise ValueError(f"unknown mix.method {method!r}")


class Regularizer:
    """``(model, images, labels) -> (logits, targets)`` for one training step."""

    def __init__(self, config: MixConfig, model: nn.Module, num_classes: int, total_steps: int,
                 label_smoothing: float = 0.0) -> None:
        self.method = config.method
        self.label_smoothing = label_smoothing
        self.transform = build_transform(config, num_classes, total_steps, label_smoothing)
        self.feature: cutmix.FeatureMix | None = None
        if config.method in ("feature-cutmix", "manifold-mixup"):
            assert isinstance(self.transform, cutmix.BatchMix)
            self.feature = cutmix.FeatureMix(model, config.layers, self.transform)

    def prepare(self, step: int, seed: int) -> None:
        """Point the transform at global ``step`` (schedules) and re-seed its generators for this step."""
        if self.transform is not None:
            self.transform.step = step
            self.transform.reseed(seed)

    def __call__(self, model: nn.Module, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Logits and targets: soft [N, K] when mixing, the class indices [N] otherwise."""
        if self.feature is not None:
            return self.feature(images, labels)
        if self.transform is None:
            return model(images), labels
        images, targets = self.transform(images, labels)
        return model(images), targets

    def preview(self, images: Tensor, labels: Tensor, seed: int) -> Tensor:
        """``images`` mixed as a training step would mix them, drawn from ``seed`` (for pictures). Feature-level
        methods mix inside the model, so their inputs are returned as they are."""
        if self.transform is None or self.feature is not None:
            return images
        self.transform.reseed(seed)
        with torch.no_grad():
            return self.transform(images, labels)[0]

    def loss_smoothing(self, targets: Tensor) -> float:
        """Smoothing still to apply in the loss: mixed targets come already smoothed by the transform."""
        return self.label_smoothing if targets.ndim == 1 else 0.0
