"""Checkpoints that survive a crash: written to a temporary file, fsynced, then atomically renamed into place.

A reader therefore sees either the previous complete checkpoint or the new complete one, never a torn file, even
if the process is killed mid-write; a temporary file left by a killed write is removed on the next start
(:func:`remove_orphans`). RNG states travel with the weights as tensors and plain Python values, so a checkpoint
loads with ``torch.load(path, weights_only=True)``; checkpoints written before that (NumPy's state as an array)
still load. A resumed run continues bit-for-bit where the hardware allows (CPU).
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cutmix.runtime import TMP_SUFFIX, write_atomic


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """``torch.save(state)`` to ``path`` atomically (:func:`cutmix.runtime.write_atomic`).

    A failed write (a full disk, a read-only directory) removes its temporary file and raises an OSError whose
    ``filename`` is ``path``, so the message names the checkpoint and not a temporary name.
    """
    path = Path(path)
    try:
        return write_atomic(path, lambda f: torch.save(state, f))
    except OSError as err:
        raise OSError(err.errno, f"cannot write the checkpoint ({err.strerror or err})", str(path)) from err


def remove_orphans(directory: str | Path) -> list[Path]:
    """Delete the temporary files (``.NAME.*.tmp``) that killed writes left in ``directory``; returns them.

    Only safe while no other process writes there (the run directory's lock guarantees it).
    """
    removed = []
    for tmp in sorted(Path(directory).glob(f".*{TMP_SUFFIX}")):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _numpy_globals() -> list[Any]:
    """What an older checkpoint's NumPy RNG state (an ndarray) needs to unpickle under ``weights_only``."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``, errors naming the file.

    Checkpoints of earlier versions hold NumPy's RNG state as an array; those load with exactly the NumPy types it
    needs allowed, nothing more.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:
            with torch.serialization.safe_globals(_numpy_globals()):
                state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"checkpoint {path} is unreadable or truncated ({type(err).__name__}: {reason})") from err
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"checkpoint {path} does not hold a cutmix training state (no 'model' entry)")
    return state


def rng_state() -> dict[str, Any]:
    """Every global RNG a training step may touch (Python, NumPy, torch CPU and CUDA) as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python_state(state: Any) -> tuple:
    version, internal, gauss = state
    return int(version), tuple(int(v) for v in internal), gauss


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s result, or the older form with NumPy's state as a tuple holding an array."""
    random.setstate(_python_state(state["python"]))
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        keys = np.asarray(numpy_state["keys"].numpy(), dtype=np.uint32)
        numpy_state = (numpy_state["kind"], keys, numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"])
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
