"""Opening the datasets a run names, for training and for evaluation alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cutmix import data as cdata
from cutmix.run.config import TrainConfig, is_path


def open_split(spec: str, split: str, config: TrainConfig, num_samples: int | None) -> Any:
    """The dataset ``spec`` names (shapes, cifar10/100, a folder or zip), its ``split``, as the run's config says.

    Training opens its sets with it and evaluation the run's validation set, so both read the same images.
    """
    d = config.data
    if spec == "imagenet":
        raise ValueError("the imagenet preset needs the data: --data PATH/train --val-data PATH/val "
                         "(ImageFolder trees or zips of them)")
    if is_path(spec) and not Path(spec).exists():
        raise FileNotFoundError(f"data path {spec} does not exist")
    if spec == "shapes":  # the same generated set for every training seed
        return cdata.load_shapes(split, num_samples=num_samples, size=d.image_size, num_classes=d.num_classes)
    if is_path(spec) and d.augment == "imagenet":
        return cdata.FolderDataset(spec, skip_corrupt=d.skip_corrupt)
    return cdata.open_dataset(spec, split, root=d.root, cache_dir=d.cache_dir, download=d.download,
                              skip_corrupt=d.skip_corrupt)
