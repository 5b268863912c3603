"""Image files in an ImageFolder tree or in a zip of one: listing, reading bytes, decoding, and their errors.

Shared by the eager loader (:mod:`cutmix.data.archive`) and the lazy :class:`~cutmix.data.folder.FolderDataset`, so
both accept the same layouts and name a bad file the same way. Zips are read in place, member by member.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import PIL.Image

# torchvision's ImageFolder extensions (compared case-insensitively)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class CorruptImageError(ValueError):
    """An image file that cannot be read or decoded; the message names the file (archive and member for zips)."""


class MixedSizeError(ValueError):
    """Images of different sizes where one tensor needs one size: use the lazy ``FolderDataset`` instead."""


# Folder names that say which split a tree is, not which dataset (``imagenet/train``, ``imagenet/val``).
SPLIT_WORDS = ("train", "training", "val", "valid", "validation", "test", "eval")


def dataset_name(path: Path) -> str:
    """A dataset's name from its path: the file name without ``.zip``, or the directory name, prefixed with its
    parent's when the directory is only a split (``imagenet/train`` -> ``imagenet-train``, not ``train``)."""
    name = path.name
    if name.lower().endswith(".zip"):
        return name[: -len(".zip")]
    if name.lower() in SPLIT_WORDS and path.parent.name:
        return f"{path.parent.name}-{name}"
    return name


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


@dataclass(frozen=True)
class Listing:
    """The images under ``root``: ``members`` are paths relative to the tree (or zip member names), in
    ImageFolder order (by class, then file name), with ``labels`` indexing the alphabetical ``classes``."""

    root: Path
    is_zip: bool
    members: list[str]
    labels: list[int]
    classes: list[str]

    def describe(self, member: str) -> str:
        """How an error message names one file: ``archive.zip:member`` or the file's path."""
        return f"{self.root}:{member}" if self.is_zip else str(self.root / member)


def _tree_members(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        found.extend((rel / f).as_posix() for f in filenames if not f.startswith("."))
    return found


def _zip_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return [info.filename for info in zf.infolist() if not info.is_dir()]
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path} is not a readable zip archive ({exc})") from exc


def list_images(path: str | os.PathLike[str]) -> Listing:
    """List an ImageFolder tree ``root/<class>/<image>`` or a zip of one.

    Classes are the directories one level above the files, sorted alphabetically (torchvision's convention); one
    common top-level folder (a zip of ``train/``) is skipped. Hidden files and non-image files are ignored.
    """
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise FileNotFoundError(f"no such image folder or zip archive: {root}")
    is_zip = root.is_file()
    if is_zip and not zipfile.is_zipfile(root):
        raise ValueError(f"{root} is neither a directory nor a zip archive of one")
    names = _zip_members(root) if is_zip else _tree_members(root)
    images = [
        (n, PurePosixPath(n).parts)
        for n in names
        if PurePosixPath(n).suffix.lower() in IMAGE_EXTENSIONS and not _hidden(PurePosixPath(n).parts)
    ]
    if not images:
        raise ValueError(
            f"{root} holds no images: expected <class>/<image> files with one of the extensions "
            f"{', '.join(IMAGE_EXTENSIONS)}"
        )
    tops = {parts[0] for _, parts in images}
    if len(tops) == 1 and all(len(parts) >= 3 for _, parts in images):
        images = [(n, parts[1:]) for n, parts in images]  # one top-level folder, e.g. train/<class>/<image>
    for n, parts in images:
        if len(parts) != 2:
            raise ValueError(
                f"{root}: {n!r} is not at <class>/<image> (the layout of an ImageFolder tree, optionally under one "
                "top-level folder)"
            )
    images.sort(key=lambda item: item[1])
    classes = sorted({parts[0] for _, parts in images})
    index = {c: i for i, c in enumerate(classes)}
    return Listing(root, is_zip, [n for n, _ in images], [index[parts[0]] for _, parts in images], classes)


class Reader:
    """Reads members' bytes; opens a zip on first use in each process, so it pickles into DataLoader workers."""

    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None

    def read(self, member: str) -> bytes:
        try:
            if not self.listing.is_zip:
                return (self.listing.root / member).read_bytes()
            if self._zip is None or self._pid != os.getpid():  # a forked worker must not share the parent's handle
                self._zip = zipfile.ZipFile(self.listing.root)
                self._pid = os.getpid()
            return self._zip.read(member)
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            raise CorruptImageError(f"cannot read {self.listing.describe(member)}: {exc}") from exc

    def close(self) -> None:
        if self._zip is not None and self._pid == os.getpid():
            self._zip.close()
        self._zip = None

    def __getstate__(self) -> dict[str, Any]:
        return {"listing": self.listing, "_zip": None, "_pid": None}


def decode(data: bytes, where: str) -> np.ndarray:
    """Decode image bytes with Pillow into an RGB uint8 array [H, W, 3]; ``where`` names the file in errors."""
    if not data:
        raise CorruptImageError(f"cannot decode {where}: the file is empty (0 bytes)")
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            return np.array(image.convert("RGB"))  # writable, so torch.from_numpy accepts it
    except MemoryError:
        raise
    except PIL.UnidentifiedImageError as exc:  # its message names the in-memory buffer, not the file
        raise CorruptImageError(f"cannot decode {where}: not an image format Pillow can identify "
                                f"({len(data)} bytes)") from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... for damaged files
        raise CorruptImageError(f"cannot decode {where}: {type(exc).__name__}: {exc}") from exc
