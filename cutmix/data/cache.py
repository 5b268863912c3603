"""The decoded-image cache: a dataset is decoded once, later runs load one tensor file.

An entry is ``<cache_dir>/<stem>-<key>.pt``; the key hashes the format version, the source's absolute path and its
size and mtime (for a tree, every file's), so an edited source gets a new entry instead of a stale hit. Entries are
written to a temporary file, fsynced and renamed into place, so a crash or a concurrent run (e.g. one per GPU)
never leaves a half-written entry under the final name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from cutmix.runtime import default_cache_dir, write_atomic

FORMAT_VERSION = 1


def fingerprint(path: Path) -> str:
    """A hex key for the source's current contents, without reading them: path, sizes and mtimes."""
    path = path.absolute()
    h = hashlib.sha256(f"cutmix-image-cache/v{FORMAT_VERSION}\0{path}\0".encode())
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), path)
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    else:
        st = path.stat()
        h.update(f"{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()


def entry_path(source: Path, cache_dir: str | os.PathLike[str] | None) -> Path:
    """Where the cache entry for ``source`` lives (whether or not it exists yet)."""
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    stem = source.name[: -len(".zip")] if source.name.lower().endswith(".zip") else source.name
    return directory / f"{stem or 'images'}-{fingerprint(source)[:20]}.pt"


def load_entry(path: Path) -> dict[str, Any] | None:
    """The entry's dict, or None when it is missing, unreadable or of another format version (then rebuilt)."""
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged or foreign file: decode again and overwrite it
        return None
    if not isinstance(entry, dict) or entry.get("version") != FORMAT_VERSION:
        return None
    return entry


def save_entry(path: Path, entry: dict[str, Any]) -> None:
    """Write atomically (:func:`cutmix.runtime.write_atomic`), so a crash never leaves a half-written entry."""
    write_atomic(path, lambda f: torch.save({**entry, "version": FORMAT_VERSION}, f))
