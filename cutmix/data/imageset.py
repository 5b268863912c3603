"""The in-memory dataset every loader returns: one uint8 tensor of images, so batches are plain index-selects."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def stratified_indices(labels: Tensor, n: int, seed: int = 0) -> Tensor:
    """Sorted indices of a seeded subset of ``n`` samples that keeps every class's share of ``labels``.

    Why stratified: a plain random 10 % of CIFAR-10 holds 470 to 530 images of a class, and in a low-data study that
    imbalance is a confound between runs of different subset sizes. Class ``c`` gets ``n * count_c / N`` samples,
    rounded by largest remainder (ties to the lower class index) so the quotas sum to ``n``; within a class the
    samples are the first of one seeded permutation, so a larger ``n`` keeps the samples of a smaller one.
    """
    total = int(labels.shape[0])
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n (the subset size) must be an integer >= 1, got {n!r}")
    if n >= total:
        return torch.arange(total)
    labels = labels.long().cpu()
    counts = torch.bincount(labels)
    exact = counts.double() * n / total
    quota = exact.floor().long()
    short = n - int(quota.sum())
    if short:
        order = sorted(range(len(counts)), key=lambda c: (-(exact[c] - quota[c]).item(), c))
        quota[order[:short]] += 1
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    by_class = perm[torch.sort(labels[perm], stable=True).indices]  # grouped by class, seeded order within
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(total) - starts[labels[by_class]]
    return by_class[rank < quota[labels[by_class]]].sort().values


def seeded_indices(total: int, limit: int | None, seed: int) -> Tensor:
    """Sorted indices of a seeded random subset of ``limit`` of ``total`` samples (all of them for None or more than
    there are), for evaluation subsets where class shares need no stratification."""
    if limit is None or limit >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


@dataclass
class ImageSet:
    """A whole dataset decoded into memory.

    ``images`` is uint8 [N, C, H, W] and contiguous, ``labels`` int64 [N] indexes ``classes``. ``boxes`` holds
    half-open object boxes (x0, y0, x1, y1) as int64 [N, 4] where the generator knows them (``shapes``), else None.
    ``skipped`` counts corrupt files left out with ``skip_corrupt=True``.
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    boxes: Tensor | None
    name: str
    skipped: int = 0

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, n: int | None, seed: int = 0) -> ImageSet:
        """A stratified seeded subset of ``n`` samples (:func:`stratified_indices`); all of them for None."""
        if n is None or n >= len(self):
            return self
        keep = stratified_indices(self.labels, n, seed)
        return ImageSet(self.images[keep], self.labels[keep], self.classes,
                        None if self.boxes is None else self.boxes[keep], self.name, self.skipped)

    def __repr__(self) -> str:  # the default repr would print the whole image tensor
        n, c, h, w = self.images.shape
        extra = f", skipped={self.skipped}" if self.skipped else ""
        return f"ImageSet(name={self.name!r}, {n} images {c}x{h}x{w}, {len(self.classes)} classes{extra})"
