"""CIFAR-10/100 from torchvision's files, as one in-memory uint8 tensor (the whole set is 150 MB)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cutmix._checks import check_choice
from cutmix._choices import CIFAR_NAMES
from cutmix.data.imageset import ImageSet

CIFAR_SPLITS = {"train": True, "test": False, "val": False}  # CIFAR has no validation split: "val" is the test set


def load_cifar(
    root: str | os.PathLike[str], name: str = "cifar10", split: str = "train", download: bool = False
) -> ImageSet:
    """Load CIFAR-10 or CIFAR-100 (``name``) ``split`` ("train", or "test"/"val") through torchvision.

    Without ``download`` the files must already be under ``root`` (torchvision's ``cifar-10-batches-py`` or
    ``cifar-100-python`` folder); otherwise a FileNotFoundError says where they were looked for.
    """
    check_choice(name, "name", CIFAR_NAMES)
    check_choice(split, "split", tuple(CIFAR_SPLITS))
    from torchvision import datasets  # imported here: torchvision is only needed for this loader

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        ds = cls(str(root), train=CIFAR_SPLITS[split], download=download)
    except RuntimeError as exc:
        if download:
            raise
        where = Path(root).expanduser().absolute() / cls.base_folder
        raise FileNotFoundError(
            f"{name} was not found (or is incomplete) in {where}; download=True fetches it into "
            f"{Path(root).expanduser().absolute()} (cutmix train --download), or give as root the folder that holds "
            f"{cls.base_folder} (cutmix train --data-root DIR)"
        ) from exc
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    return ImageSet(images, labels, list(ds.classes), None, name)
