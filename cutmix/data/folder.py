"""Lazy dataset over an ImageFolder tree or zip, for sets too large or too varied in size to hold decoded (ImageNet)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from cutmix.data.source import Reader, dataset_name, decode, list_images


class FolderDataset(Dataset):
    """Items are ``(transform(image), label)`` with ``image`` a uint8 tensor [3, H, W] decoded on access.

    Accepts the layouts of :func:`~cutmix.data.load_images` (a tree or a zip, read in place). The zip is opened
    lazily once per process, so the dataset pickles cheaply into DataLoader workers (fork or spawn) and no file
    handle is shared between them. A damaged file raises :class:`~cutmix.data.CorruptImageError` naming it.
    """

    def __init__(self, path: str | os.PathLike[str], transform: Callable[[torch.Tensor], Any] | None = None) -> None:
        self.listing = list_images(path)
        self.transform = transform
        self.classes: list[str] = list(self.listing.classes)
        self.targets: list[int] = list(self.listing.labels)
        self.name = dataset_name(self.listing.root)
        self._reader = Reader(self.listing)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        member = self.listing.members[index]
        array = decode(self._reader.read(member), self.listing.describe(member))
        image = torch.from_numpy(array).permute(2, 0, 1).contiguous()
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def __repr__(self) -> str:
        return f"FolderDataset({str(self.listing.root)!r}, {len(self)} images, {len(self.classes)} classes)"
