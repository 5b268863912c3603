"""Datasets and loaders of a run, from :class:`~cutmix.run.config.DataConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor

from cutmix import data as cdata
from cutmix.run.config import TrainConfig, is_path
from cutmix.run.datasets import open_split
from cutmix.train.distributed import Context
from cutmix.train.loader import InMemoryLoader, LazyLoader, use_resident


@dataclass
class RunData:
    train: InMemoryLoader | LazyLoader
    val: InMemoryLoader | LazyLoader
    num_classes: int
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    info: dict[str, Any] = field(default_factory=dict)
    val_set: Any = None  # the validation ImageSet / dataset (evaluation uses its boxes)
    train_eval: InMemoryLoader | None = None  # training images without augmentation or mixing (overfitting)


def _stats(config: TrainConfig, train_set: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Normalisation statistics: the known ones by name, else measured on (up to 5000) training images."""
    spec = config.data.dataset
    if spec in cdata.MEAN_STD:
        return cdata.MEAN_STD[spec]
    if isinstance(train_set, cdata.ImageSet):
        sample = train_set.images[:5000].double() / 255
        return (tuple(sample.mean(dim=(0, 2, 3)).tolist()), tuple(sample.std(dim=(0, 2, 3)).tolist()))
    return cdata.MEAN_STD["imagenet"]


def crop_flip(pad: int, padding_mode: str, images: Tensor, generator: torch.Generator) -> Tensor:
    """The in-memory loaders' augmentation, ``partial(crop_flip, pad, mode)``: ``(images, generator) -> images``."""
    return cdata.random_crop_flip(images, pad, generator, padding_mode)


def _resident(config: TrainConfig, ctx: Context, sets: tuple[Any, Any]) -> bool:
    """``data.resident`` resolved for this run's sets and device (see :func:`~cutmix.train.loader.use_resident`)."""
    in_memory = [s for s in sets if isinstance(s, cdata.ImageSet)]
    if config.data.resident == "on" and not isinstance(sets[0], cdata.ImageSet):
        raise ValueError(f"data.resident='on' needs a training set held in memory (shapes, CIFAR, a zip or folder "
                         f"of same-size images); {config.data.dataset} is decoded image by image")
    nbytes = sum(s.images.nbytes + s.labels.nbytes for s in in_memory)
    return bool(in_memory) and use_resident(config.data.resident, ctx.device, nbytes)


def eval_batch_size(config: TrainConfig, device: torch.device) -> int:
    """``eval_batch_size`` resolved: on a CPU, batches of 64-128 CIFAR images evaluate about twice as fast as 500
    (measured, ResNet-20, one thread: 2 000 vs 1 070 img/s; they stay in cache); on CUDA large batches win."""
    if config.eval_batch_size is not None:
        return config.eval_batch_size
    return 1000 if device.type == "cuda" else 128


def build_data(config: TrainConfig, ctx: Context) -> RunData:
    d = config.data
    eval_batch = eval_batch_size(config, ctx.device)
    train_set = open_split(d.dataset, "train", config, d.train_samples)
    val_spec = d.val or d.dataset
    if d.val is None and is_path(d.dataset):
        raise ValueError(f"{d.dataset} has no validation split of its own: pass --val-data PATH")
    val_set = open_split(val_spec, "val" if val_spec == "shapes" else "test", config, d.val_samples)
    train_set = train_set.subset(d.train_samples)  # in-memory and per-image sets alike
    val_set = val_set.subset(d.val_samples)
    classes = list(train_set.classes)
    if list(val_set.classes) != classes:
        raise ValueError(f"the validation set's classes {list(val_set.classes)[:5]}... differ from the training "
                         f"set's {classes[:5]}... ({len(val_set.classes)} vs {len(classes)} classes)")
    mean, std = _stats(config, train_set)
    common = {"seed": config.seed, "rank": ctx.rank, "world_size": ctx.world_size, "device": ctx.device}
    resident = _resident(config, ctx, (train_set, val_set))
    loaders = []
    for dataset, train in ((train_set, True), (val_set, False)):
        batch = config.batch_size if train else eval_batch
        if isinstance(dataset, cdata.ImageSet):
            augment = None
            if train and d.augment in ("auto", "crop-flip"):
                augment = partial(crop_flip, max(1, dataset.images.shape[-1] // 8), d.pad_mode)
            loaders.append(InMemoryLoader(dataset.images, dataset.labels, batch, train=train, augment=augment,
                                          resident=resident, **common))
        else:
            if d.augment != "none":
                dataset.transform = (cdata.imagenet_train_transform(d.image_size) if train
                                     else cdata.eval_transform(d.image_size, round(d.image_size * 8 / 7)))
            loaders.append(LazyLoader(dataset, batch, train=train, num_workers=d.num_workers, **common))
    train_eval = None
    if d.train_eval_samples is not None:
        if not isinstance(train_set, cdata.ImageSet):
            raise ValueError(f"data.train_eval_samples needs a training set held in memory; {d.dataset} is decoded "
                             f"image by image")
        clean = train_set.subset(d.train_eval_samples)
        train_eval = InMemoryLoader(clean.images, clean.labels, eval_batch, train=False,
                                    resident=resident, **common)
    info = {"train": f"{getattr(train_set, 'name', d.dataset) or d.dataset} ({len(train_set)} images)",
            "val": f"{getattr(val_set, 'name', val_spec) or val_spec} ({len(val_set)} images)",
            "skipped_corrupt": getattr(train_set, "skipped", 0) + getattr(val_set, "skipped", 0),
            "resident": resident}
    return RunData(loaders[0], loaders[1], len(classes), classes, tuple(mean), tuple(std), info, val_set,
                   train_eval)
