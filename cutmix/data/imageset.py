"""The in-memory dataset every loader returns: one uint8 tensor of images, so batches are plain index-selects."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


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

    def __repr__(self) -> str:  # the default repr would print the whole image tensor
        n, c, h, w = self.images.shape
        extra = f", skipped={self.skipped}" if self.skipped else ""
        return f"ImageSet(name={self.name!r}, {n} images {c}x{h}x{w}, {len(self.classes)} classes{extra})"
