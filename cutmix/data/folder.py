"""Lazy dataset over an ImageFolder tree or zip, for sets too large or too varied in size to hold decoded (ImageNet)."""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from cutmix.data.imageset import stratified_indices
from cutmix.data.source import CorruptImageError, Reader, dataset_name, decode, list_images


@dataclasses.dataclass(frozen=True)
class Skipped:
    """What :class:`FolderDataset` returns for an unreadable file with ``skip_corrupt=True``: its name and why."""

    where: str
    reason: str


class FolderDataset(Dataset):
    """Items are ``(transform(image), label)`` with ``image`` a uint8 tensor [3, H, W] decoded on access.

    Accepts the layouts of :func:`~cutmix.data.load_images` (a tree or a zip, read in place). The zip is opened
    lazily once per process, so the dataset pickles cheaply into DataLoader workers (fork or spawn) and no file
    handle is shared between them. A damaged file raises :class:`~cutmix.data.CorruptImageError` naming it; with
    ``skip_corrupt=True`` the item is a :class:`Skipped` instead, which :func:`collate_skipping` (the loader's
    ``collate_fn``) leaves out of the batch and reports, so one bad file cannot end a long run.
    """

    def __init__(self, path: str | os.PathLike[str], transform: Callable[[torch.Tensor], Any] | None = None,
                 skip_corrupt: bool = False) -> None:
        self.listing = list_images(path)
        self.transform = transform
        self.skip_corrupt = bool(skip_corrupt)
        self.classes: list[str] = list(self.listing.classes)
        self.targets: list[int] = list(self.listing.labels)
        self.name = dataset_name(self.listing.root)
        self._reader = Reader(self.listing)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int] | Skipped:
        member = self.listing.members[index]
        where = self.listing.describe(member)
        try:
            array = decode(self._reader.read(member), where)
        except CorruptImageError as err:
            if not self.skip_corrupt:
                raise
            return Skipped(where, str(err))
        image = torch.from_numpy(array).permute(2, 0, 1).contiguous()
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def subset(self, n: int | None, seed: int = 0) -> FolderDataset:
        """A stratified seeded subset of ``n`` files (as :meth:`ImageSet.subset <cutmix.data.ImageSet.subset>`),
        still decoded lazily; the whole set for None."""
        if n is None or n >= len(self):
            return self
        keep = stratified_indices(torch.tensor(self.targets), n, seed).tolist()
        part = copy.copy(self)
        part.listing = dataclasses.replace(self.listing, members=[self.listing.members[i] for i in keep],
                                           labels=[self.listing.labels[i] for i in keep])
        part.targets = list(part.listing.labels)
        part._reader = Reader(part.listing)
        return part

    def __repr__(self) -> str:
        return f"FolderDataset({str(self.listing.root)!r}, {len(self)} images, {len(self.classes)} classes)"


def collate_skipping(batch: Sequence[Any]) -> tuple[Tensor | None, Tensor | None, list[Skipped]]:
    """``default_collate`` of the readable items, and the :class:`Skipped` ones; (None, None, skipped) if none is."""
    skipped = [item for item in batch if isinstance(item, Skipped)]
    kept = [item for item in batch if not isinstance(item, Skipped)]
    if not kept:
        return None, None, skipped
    images, labels = default_collate(kept)
    return images, labels, skipped
