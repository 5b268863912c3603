"""Batches for training and evaluation, with counter-based randomness so that any step can be replayed.

Every random draw of the input pipeline comes from a generator seeded by ``(seed, purpose, rank, epoch, step)``
instead of a stream that runs through the whole training. An interrupted run resumed at (epoch, step) therefore
sees exactly the batches, crops, flips and mixes of the uninterrupted run, and ranks of a DDP run draw
independently.

Two loaders share one interface (``len(loader)``, ``loader.epoch(epoch, start)``):

* :class:`InMemoryLoader` for sets held as uint8 tensors (the builtin shapes, CIFAR, decoded zips): per-epoch
  permutation, sharded across ranks like ``DistributedSampler``, gathered and augmented as whole batches. With
  ``resident=True`` the set lives on the training device (CIFAR-10 is 150 MB as uint8) and batches are gathered,
  cropped and flipped there; the random parameters still come from the same CPU generators, so the batches are
  exactly those of the host pipeline (:func:`use_resident` decides ``data.resident = "auto"``).
* :class:`LazyLoader` for ImageNet-style sets decoded per sample in DataLoader workers (torchvision v2
  transforms); it is reproducible per epoch, and a resume in the middle of an epoch replays the skipped batches.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from cutmix.data.folder import collate_skipping
from cutmix.data.source import CorruptImageError
from cutmix.run.config import RESIDENT_MODES
from cutmix.runtime import stream

# Purposes: separate streams for the different consumers of randomness.
ORDER, AUGMENT, MIX, WORKERS, PREVIEW = 1, 2, 3, 4, 5




def shard(n: int, *, epoch: int, seed: int, rank: int, world_size: int, shuffle: bool, pad: bool) -> Tensor:
    """This rank's sample indices for one epoch.

    Training (``pad=True``) pads the permutation by wrapping around so that every rank gets the same number of
    samples, as ``DistributedSampler`` does. Evaluation (``pad=False``) splits without duplicates so that sums
    reduced over ranks count every sample exactly once.
    """
    order = torch.randperm(n, generator=stream(seed, ORDER, epoch)) if shuffle else torch.arange(n)
    if pad and world_size > 1:
        total = -(-n // world_size) * world_size
        order = torch.cat([order, order[: total - n]]) if total > n else order
    return order[rank::world_size]


def use_resident(mode: str, device: torch.device | str, nbytes: int, *, free_bytes: int | None = None,
                 fraction: float = 0.25) -> bool:
    """Whether to hold ``nbytes`` of in-memory data on ``device`` for ``data.resident = mode``.

    ``"on"`` and ``"off"`` decide by themselves (on a CPU "on" changes nothing but where the code path runs).
    ``"auto"`` is on for a CUDA device when the data takes at most ``fraction`` of its free memory
    (``torch.cuda.mem_get_info`` unless ``free_bytes`` is given), leaving the rest to the model and activations,
    and off elsewhere: on a CPU the host pipeline is the same thing.
    """
    if mode not in RESIDENT_MODES:
        raise ValueError(f"data.resident must be one of {', '.join(RESIDENT_MODES)}; got {mode!r}")
    if mode != "auto":
        return mode == "on"
    device = torch.device(device)
    if device.type != "cuda":
        return False
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return nbytes <= fraction * free_bytes



def rank_batches(n: int, batch_size: int, seed: int, rank: int, world_size: int, train: bool) -> tuple[int, int]:
    """``(samples, batches)`` of one rank per epoch: training pads the shard and drops the last partial batch."""
    per_rank = len(shard(n, epoch=0, seed=seed, rank=rank, world_size=world_size, shuffle=False, pad=train))
    batches = per_rank // batch_size if train else -(-per_rank // batch_size)
    if train and batches == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {per_rank} training samples of this rank")
    return per_rank, batches

class InMemoryLoader:
    """Batches of uint8 images held in memory, augmented as whole batches (vectorised, any device).

    ``resident=True`` moves the images and labels to ``device`` once; each epoch's order is computed on the host
    as always (one small copy per epoch) and every batch is gathered and augmented on the device without host
    synchronisation. Either way a batch depends only on (seed, rank, epoch, step).
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        device: torch.device | str = "cpu",
        resident: bool = False,
    ) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"images ({images.shape[0]}) and labels ({labels.shape[0]}) differ in length")
        self.device = torch.device(device)
        self.resident = bool(resident)
        if self.resident:
            images, labels = images.to(self.device), labels.to(self.device)
        self.images, self.labels = images, labels
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.rank, self.world_size = rank, world_size
        self.augment = augment
        self.num_samples, self._len = rank_batches(len(labels), batch_size, seed, rank, world_size, train)

    def __len__(self) -> int:
        return self._len

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches ``start, start+1, ...`` of ``epoch`` (the last partial batch is dropped when training)."""
        order = shard(len(self.labels), epoch=epoch, seed=self.seed, rank=self.rank, world_size=self.world_size,
                      shuffle=self.train, pad=self.train)
        if self.resident:
            order = order.to(self.device, non_blocking=True)
        for step in range(start, self._len):
            idx = order[step * self.batch_size : (step + 1) * self.batch_size]
            images = self.images.index_select(0, idx)
            labels = self.labels.index_select(0, idx)
            if self.augment is not None:
                images = self.augment(images, stream(self.seed, AUGMENT, self.rank, epoch, step))
            if self.resident:
                yield images, labels
            else:
                yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


class LazyLoader:
    """Per-sample decoding in DataLoader workers (ImageNet-style sets), sharded and seeded per epoch.

    Files a ``FolderDataset(skip_corrupt=True)`` cannot read are left out of their batch and collected in
    ``skipped`` (name -> reason), so the engine can report them; the batch order stays that of the seeded epoch, so
    a resume replays it exactly.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.dataset, self.batch_size, self.train, self.seed = dataset, batch_size, train, seed
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.device = torch.device(device)
        self.skipped: dict[str, str] = {}
        self.num_samples, self._len = rank_batches(len(dataset), batch_size, seed, rank, world_size,  # type: ignore[arg-type]
                                                   train)

    def __len__(self) -> int:
        return self._len

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        order = shard(len(self.dataset), epoch=epoch, seed=self.seed, rank=self.rank,  # type: ignore[arg-type]
                      world_size=self.world_size, shuffle=self.train, pad=self.train)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=order.tolist(),
            num_workers=self.num_workers,
            drop_last=self.train,
            pin_memory=self.device.type == "cuda",
            generator=stream(self.seed, WORKERS, self.rank, epoch),  # worker seeds, hence the augmentation
            persistent_workers=False,
            collate_fn=collate_skipping,
        )
        for images, labels, skipped in _named_errors(itertools.islice(loader, start, None)):
            self.skipped.update((s.where, s.reason) for s in skipped)
            if images is None:
                raise CorruptImageError(f"every image of a batch is unreadable, e.g. {skipped[0].where}: is the "
                                        "dataset damaged?")
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)


def _named_errors(batches: Iterator[tuple]) -> Iterator[tuple]:
    """Re-raise an unreadable file as one line naming it (a worker's error arrives wrapped in its traceback)."""
    try:
        yield from batches
    except CorruptImageError as err:
        lines = [line for line in str(err).strip().splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        marker = f"{CorruptImageError.__name__}: "
        message = last[last.index(marker) + len(marker):] if marker in last else last
        raise CorruptImageError(f"{message} (--skip-corrupt skips unreadable files)") from None
