"""Datasets and augmentation for training with CutMix: the builtin "shapes" set, CIFAR, ImageFolder trees and zips.

Same-size datasets load eagerly into an :class:`ImageSet` (one uint8 tensor; batches are index-selects, augmented
and mixed on the batch); varied-size ones (ImageNet) are read lazily by :class:`FolderDataset`.

>>> from cutmix.data import open_dataset, random_crop_flip, normalize, MEAN_STD
>>> train = open_dataset("shapes", "train")                                   # doctest: +SKIP
>>> x = normalize(random_crop_flip(train.images[:128], pad=4), *MEAN_STD["shapes"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from cutmix.data.archive import load_images
from cutmix.data.augment import crop_flip, crop_flip_params, random_crop_flip
from cutmix.data.cifar import CIFAR_NAMES, load_cifar
from cutmix.data.folder import FolderDataset, Skipped, collate_skipping
from cutmix.data.imageset import ImageSet
from cutmix.data.normalize import MEAN_STD, Normalizer, normalize
from cutmix.data.shapes import (
    SHAPES,
    Scenes,
    load_shape_scenes,
    load_shapes,
    load_shapes_segmentation,
    segmentation_classes,
)
from cutmix.data.source import IMAGE_EXTENSIONS, CorruptImageError, MixedSizeError

# The ImageNet pipelines import torchvision (about two seconds): loaded at their first use, not with this package.
_IMAGENET = ("Lighting", "eval_transform", "imagenet_train_transform")


def __getattr__(name: str) -> object:
    if name in _IMAGENET:
        from cutmix.data import imagenet

        return getattr(imagenet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CIFAR_NAMES",
    "IMAGE_EXTENSIONS",
    "MEAN_STD",
    "SHAPES",
    "CorruptImageError",
    "FolderDataset",
    "ImageSet",
    "Lighting",
    "MixedSizeError",
    "Normalizer",
    "Scenes",
    "Skipped",
    "collate_skipping",
    "crop_flip",
    "crop_flip_params",
    "eval_transform",
    "imagenet_train_transform",
    "load_cifar",
    "load_images",
    "load_shape_scenes",
    "load_shapes",
    "load_shapes_segmentation",
    "normalize",
    "open_dataset",
    "random_crop_flip",
    "segmentation_classes",
]


def open_dataset(
    spec: str,
    split: str,
    *,
    root: str = "data",
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    skip_corrupt: bool = False,
    num_samples: int | None = None,
    seed: int = 0,
    size: int = 32,
    num_classes: int = 10,
) -> ImageSet | FolderDataset:
    """Open a dataset by name or path, as the training command's ``--data`` / ``--val-data`` do.

    - ``"shapes"``: :func:`load_shapes` (``split``, ``num_samples``, ``size``, ``num_classes``, ``seed`` apply);
    - ``"cifar10"`` / ``"cifar100"``: :func:`load_cifar` from ``root`` (``download`` applies);
    - a zip or a directory (an ImageFolder tree): :func:`load_images`, or a lazy :class:`FolderDataset` when its
      images differ in size. A path *is* one split, so ``split`` is not used for it.
    """
    if spec == "shapes":
        return load_shapes(split, num_samples=num_samples, size=size, num_classes=num_classes, seed=seed)
    if spec in CIFAR_NAMES:
        return load_cifar(root, spec, split, download=download)
    path = Path(spec).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() == ".zip"):
        try:
            return load_images(path, cache_dir=cache_dir, skip_corrupt=skip_corrupt)
        except MixedSizeError:
            return FolderDataset(path, skip_corrupt=skip_corrupt)
    if path.exists():
        raise ValueError(f"dataset {spec!r} is a file but not a .zip archive of an ImageFolder tree")
    if "/" in spec or os.sep in spec or path.suffix:
        raise FileNotFoundError(f"no such dataset folder or zip archive: {path.absolute()}")
    raise ValueError(
        f"unknown dataset {spec!r}: use 'shapes', {', '.join(repr(n) for n in CIFAR_NAMES)}, or the path of an "
        "ImageFolder tree or a zip of one"
    )
