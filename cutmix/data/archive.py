"""Eager loading of an ImageFolder tree or zip into one uint8 tensor, decoded once and then served from a cache.

For same-size datasets (CIFAR as JPEGs, Tiny-ImageNet, ...) holding everything decoded in memory removes the input
pipeline from the training loop. Decoding is a plain loop: Pillow holds the GIL for most of a small image's
decode, so on a 2-core machine a thread pool measured slower (2.4-5.0 s against 1.6 s for 10000 CIFAR JPEGs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from cutmix.data import cache
from cutmix.data.imageset import ImageSet
from cutmix.data.source import CorruptImageError, Listing, MixedSizeError, Reader, dataset_name, decode, list_images
from cutmix.runtime import progress


def _progress(items: list, desc: str):
    """``items`` behind a bar on a terminal (decoding 50000 images takes seconds to minutes)."""
    bar = progress(len(items), desc, unit="img")
    try:
        for item in items:
            yield item
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _decode_all(listing: Listing, skip_corrupt: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images [N, H, W, 3], their labels, and the files skipped as corrupt (each named as in error messages)."""
    reader = Reader(listing)
    members, n = listing.members, len(listing.members)
    keep = np.ones(n, dtype=bool)
    skipped: list[str] = []
    out: np.ndarray | None = None
    first = ""
    try:
        for i, member in enumerate(_progress(members, f"decoding {Path(str(listing.root)).name}")):
            where = listing.describe(member)
            try:
                array = decode(reader.read(member), where)
            except CorruptImageError:
                if not skip_corrupt:
                    raise
                keep[i] = False
                skipped.append(where)
                continue
            if out is None:
                out, first = np.empty((n, *array.shape), dtype=np.uint8), where
            elif array.shape != out.shape[1:]:
                h0, w0 = out.shape[1:3]
                raise MixedSizeError(
                    f"images differ in size: {first} is {w0}x{h0} but {where} is {array.shape[1]}x{array.shape[0]}; "
                    "load_images needs one size for all, use the lazy FolderDataset (with a resizing transform) "
                    "for datasets like ImageNet"
                )
            out[i] = array
    finally:
        reader.close()
    if out is None:
        raise ValueError(f"{listing.root}: none of its {n} images could be decoded (all skipped as corrupt)")
    labels = np.asarray(listing.labels, dtype=np.int64)
    return (out, labels, skipped) if keep.all() else (out[keep], labels[keep], skipped)


def _warn_skipped(source: Path, skipped: list[str]) -> None:
    more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
    print(f"warning: {source}: skipped {len(skipped)} corrupt image(s): {skipped[0]}{more}", file=sys.stderr)


def load_images(
    path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None, skip_corrupt: bool = False
) -> ImageSet:
    """Load every image of an ImageFolder tree ``root/<class>/<image>`` or a zip of one, decoded to RGB uint8.

    Zips are read in place (no extraction); one top-level folder inside (``train/<class>/...``) is allowed. Classes
    are sorted alphabetically, as torchvision's ImageFolder does. All images must share one size, else a
    :class:`MixedSizeError` (a ValueError) names two that differ. The decoded tensor is cached in ``cache_dir``
    (default ``$CUTMIX_CACHE`` or ``~/.cache/cutmix``), keyed by the source's path, size and mtime.

    A file that cannot be decoded raises :class:`CorruptImageError` naming it; with ``skip_corrupt=True`` it is
    left out instead, counted in ``skipped``, and one warning line goes to stderr.
    """
    source = Path(path).expanduser().absolute()
    if not source.exists():
        raise FileNotFoundError(f"no such image folder or zip archive: {source}")
    name = dataset_name(source)
    entry_file = cache.entry_path(source, cache_dir)
    entry = cache.load_entry(entry_file)
    if entry is None:
        listing = list_images(source)
        images, labels, skipped = _decode_all(listing, skip_corrupt)
        entry = {
            "images": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
            "labels": torch.from_numpy(labels),
            "classes": listing.classes,
            "skipped": skipped,
            "source": str(source),
        }
        try:
            cache.save_entry(entry_file, entry)
        except OSError as exc:  # a read-only or full cache disk costs the next run a decode, not this one
            print(f"warning: could not write the image cache {entry_file}: {exc}", file=sys.stderr)
    skipped = list(entry["skipped"])
    if skipped and not skip_corrupt:  # the cached entry was built with skip_corrupt=True
        raise CorruptImageError(
            f"cannot decode {skipped[0]} (recorded in the cache {entry_file}); skip it with skip_corrupt=True "
            "(cutmix train --skip-corrupt)"
        )
    if skipped:
        _warn_skipped(source, skipped)
    return ImageSet(entry["images"], entry["labels"], list(entry["classes"]), None, name, skipped=len(skipped))
