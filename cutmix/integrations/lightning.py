"""``MixCallback``: mix the training batches of a Lightning ``Trainer`` on the device, before ``training_step``.

``Trainer(callbacks=[MixCallback(cutmix.CutMix(num_classes=10))])`` and a ``training_step`` that takes soft targets
(``cutmix.SoftTargetCrossEntropy()(self(x), y)``): validation, test and predict batches are never touched, so
``validation_step`` keeps hard labels for its accuracy.

Why ``on_train_batch_start``: it is the only callback hook that runs after the batch is on the device and before
``training_step``, and only in the training loop. ``on_after_batch_transfer`` would also do, but it is a hook of the
``LightningModule`` / ``LightningDataModule``, not of callbacks, and it runs for every stage. A callback hook cannot
return a new batch, so the mixed images and targets replace the batch's entries in place: the batch must be a list
(what the default collate makes of ``(image, label)`` samples) or a dict; a tuple cannot be changed and is refused.

Schedules follow training: before each batch the transform's ``step`` is set to ``trainer.global_step`` (optimizer
steps, so batches accumulated into one step share a value). The transform's state (generator and step) is saved in
and restored from the trainer's checkpoints through the callback's ``state_dict``. A transform without a generator
draws from the global RNG, which Lightning does not checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, MutableMapping
from typing import Any

import torch
from torch import Tensor, nn

try:
    from lightning.pytorch import Callback
except ImportError:  # the standalone package
    try:
        from pytorch_lightning import Callback
    except ImportError as err:
        raise ImportError("cutmix.integrations.lightning needs Lightning: pip install lightning") from err


class MixCallback(Callback):
    """Mix ``(images, labels)`` of each training batch with ``transform`` before ``training_step`` sees it.

    ``transform`` is any cutmix batch transform (``CutMix``, ``MixUp``, ``RandomChoice``, the timm-compatible
    ``Mixup``, ...) or a callable ``(images, labels) -> (images, targets)``. ``keys`` name the images and the labels
    in the batch: positions in a list (default ``(0, 1)``) or keys of a dict (e.g. ``("pixel_values", "labels")``).
    """

    def __init__(self, transform: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
                 keys: tuple[Hashable, Hashable] = (0, 1)) -> None:
        if not callable(transform):
            raise TypeError(f"transform must be callable as transform(images, labels), got {type(transform).__name__}")
        if not isinstance(keys, (tuple, list)) or len(keys) != 2:
            raise ValueError(f"keys must be a pair (images key, labels key), got {keys!r}")
        self.transform = transform
        self.keys = tuple(keys)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(transform=type(self.transform).__qualname__, keys=self.keys)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        images_key, labels_key = self.keys
        if isinstance(batch, tuple):
            raise TypeError("MixCallback replaces the batch's images and labels in place, so the training batch must "
                            "be a list or a dict, got a tuple (return a list from the collate_fn)")
        if isinstance(batch, list):
            if not all(isinstance(k, int) for k in self.keys):
                raise TypeError(f"keys must be list positions for a list batch, got {self.keys!r}")
        elif not isinstance(batch, MutableMapping):
            raise TypeError(f"the training batch must be a list or a dict to be mixed, got {type(batch).__name__}")
        if hasattr(self.transform, "step"):
            self.transform.step = int(trainer.global_step)
        with torch.no_grad():
            images, targets = self.transform(batch[images_key], batch[labels_key])
        batch[images_key] = images
        batch[labels_key] = targets

    def state_dict(self) -> dict[str, Any]:
        if isinstance(self.transform, nn.Module):
            return {"transform": self.transform.state_dict()}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "transform" in state_dict:
            if not isinstance(self.transform, nn.Module):
                raise TypeError("the checkpoint holds a transform state but this MixCallback's transform is not an "
                                f"nn.Module ({type(self.transform).__name__})")
            self.transform.load_state_dict(state_dict["transform"])
