"""CutMix for Hugging Face ``transformers``: a data collator that mixes, and a ``Trainer`` that gets soft labels right.

``transformers`` image classifiers choose their loss from the labels: float labels ``[B, C]`` are taken for
multi-label targets, so soft CutMix targets silently get a sigmoid BCE, and ``config.problem_type`` is switched to
``"multi_label_classification"`` for good (it is saved with the model). :class:`SoftTargetTrainer` therefore never
hands the labels to the model: it computes soft-target cross-entropy on the logits itself (plain cross-entropy for
class-index labels, as in evaluation), and keeps ``problem_type`` single-label.

>>> trainer = SoftTargetTrainer(model=model, args=args, train_dataset=train, eval_dataset=val,
...                             data_collator=MixCollator(cutmix.CutMix(num_classes=model.config.num_labels)))

:class:`MixCollator` mixes training batches only: the trainer evaluates with the collator's unmixed ``collate``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import default_collate

import cutmix

try:
    from transformers import Trainer
except ImportError as err:
    raise ImportError("cutmix.integrations.transformers needs transformers: "
                      "pip install transformers accelerate") from err


def _passthrough(pair: Any) -> Any:
    return pair


class MixCollator:
    """A ``data_collator``: items with ``pixel_values`` [C, H, W] and ``labels`` (or ``label``) -> a mixed batch.

    Returns a dict with ``pixel_values`` [B, C, H, W] mixed by ``transform`` (any cutmix batch transform, or a
    callable ``(images, labels) -> (images, targets)``), ``labels`` as soft targets [B, num_classes] float, and any
    other keys collated as they are. In DataLoader workers the transform's generator is re-seeded from each worker's
    seed (see :class:`cutmix.MixCollate`). :meth:`collate` is the same batch unmixed, with class-index labels.
    """

    def __init__(self, transform: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], *,
                 image_key: str = "pixel_values", label_key: str = "labels") -> None:
        if not callable(transform):
            raise TypeError(f"transform must be callable as transform(images, labels), got {type(transform).__name__}")
        self.transform = transform
        self.image_key = image_key
        self.label_key = label_key
        self._mix = cutmix.MixCollate(transform, collate_fn=_passthrough)

    def collate(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The unmixed batch: stacked images, class-index labels [B] int64, other keys collated."""
        if not isinstance(features, Sequence) or not features:
            raise ValueError(f"features must be a non-empty list of dicts, got {type(features).__name__}")
        first = features[0]
        if not isinstance(first, Mapping) or self.image_key not in first:
            raise TypeError(f"each feature must be a dict with {self.image_key!r} and {self.label_key!r}, got "
                            f"{type(first).__name__} with keys {sorted(first) if isinstance(first, Mapping) else '-'}")
        label_key = self.label_key if self.label_key in first else "label" if "label" in first else None
        if label_key is None:
            raise TypeError(f"each feature needs its class under {self.label_key!r} (or 'label'), got keys "
                            f"{sorted(first)}")
        images = torch.stack([torch.as_tensor(f[self.image_key]) for f in features])
        labels = torch.as_tensor([int(f[label_key]) for f in features], dtype=torch.long)
        batch: dict[str, Any] = {k: default_collate([f[k] for f in features])
                                 for k in first if k not in (self.image_key, label_key)}
        batch[self.image_key] = images
        batch[self.label_key] = labels
        return batch

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        batch = self.collate(features)
        batch[self.image_key], batch[self.label_key] = self._mix((batch[self.image_key], batch[self.label_key]))
        return batch


class SoftTargetTrainer(Trainer):
    """A ``transformers.Trainer`` whose loss is soft-target cross-entropy on the model's logits.

    Labels ``[B, C]`` (mixed targets) get soft-target cross-entropy, class indices ``[B]`` plain cross-entropy;
    ``args.label_smoothing_factor`` is applied to both. The model never sees the labels, so its config stays
    single-label (``problem_type`` is set to ``"single_label_classification"`` when unset; a model configured for
    multi-label or regression is refused). Evaluation and prediction use a :class:`MixCollator`'s unmixed batches.
    The loss is a per-batch mean, so gradient accumulation divides it by the number of accumulated batches.
    """

    loss_is_scaled_for_ga = False  # transformers >= 5: a per-batch mean, to be divided over accumulated batches

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError("compute_loss_func cannot be combined with SoftTargetTrainer, whose loss is soft-target "
                             "cross-entropy; use transformers.Trainer for a custom loss")
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # older transformers: no num_items_in_batch, divide over accumulation
        config = getattr(self.model, "config", None)
        if config is not None:
            problem = getattr(config, "problem_type", None)
            if problem not in (None, "single_label_classification"):
                raise ValueError(f"SoftTargetTrainer trains single-label classifiers; model.config.problem_type is "
                                 f"{problem!r}")
            config.problem_type = "single_label_classification"

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        if "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch, **kwargs)
        features = dict(inputs)
        labels = features.pop("labels")
        outputs = model(**features)
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        loss = cutmix.soft_target_cross_entropy(logits, labels, label_smoothing=self.args.label_smoothing_factor)
        return (loss, outputs) if return_outputs else loss

    @contextlib.contextmanager
    def _unmixed(self) -> Iterator[None]:
        collator = self.data_collator
        if isinstance(collator, MixCollator):
            self.data_collator = collator.collate
        try:
            yield
        finally:
            self.data_collator = collator

    def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
        with self._unmixed():
            return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset: Any) -> Any:
        with self._unmixed():
            return super().get_test_dataloader(test_dataset)
