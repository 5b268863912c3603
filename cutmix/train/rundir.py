"""Run directories: their default names, claiming a fresh one safely, and the lock that keeps one writer.

A directory is claimed with an atomic ``mkdir`` (a run that loses a start race takes the next free name instead of
failing), and only once the data and the model have loaded, so a failed start leaves nothing behind. While a
``cutmix train`` works in a directory it holds an exclusive lock on ``RUN/.lock`` (``flock``: released by the
kernel when the process ends, however it ends), so two ``--resume`` of one run cannot interleave their writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cutmix.data.source import SPLIT_WORDS, dataset_name
from cutmix.run import config as cfg
from cutmix.run.config import MixConfig, TrainConfig
from cutmix.train.errors import RunInUseError

LOCK_NAME = ".lock"

# Mix settings that name a run when they differ from the default, with the methods they matter for.
_CUTMIX = ("cutmix", "feature-cutmix", "cutmix+mixup")
_MIXING = ("cutmix", "mixup", "cutmix+mixup", "feature-cutmix", "manifold-mixup")
_NAMED: dict[str, tuple[str, tuple[str, ...]]] = {
    "per_sample": ("sample", (*_MIXING, "cutout")),
    "box": ("", _CUTMIX),
    "sigma": ("sigma", _CUTMIX),
    "size": ("size", _CUTMIX),
    "placement": ("", _CUTMIX),
    "rounding": ("", _CUTMIX),
    "label": ("", _MIXING),
    "schedule": ("", (*_MIXING, "cutout")),
    "alpha": ("a", _MIXING),
    "prob": ("p", (*_MIXING, "cutout")),
    "cutout_size": ("c", ("cutout",)),
    "mixup_alpha": ("ma", ("cutmix+mixup", "manifold-mixup")),
    "switch_prob": ("sw", ("cutmix+mixup",)),
    "layers": ("at-", ("feature-cutmix", "manifold-mixup")),
}


def _token(prefix: str, value: Any) -> str:
    if isinstance(value, bool):
        return prefix
    if isinstance(value, list):
        return prefix + "+".join(v or "input" for v in value)
    if isinstance(value, float):
        return f"{prefix}{value:g}"
    return f"{prefix}{value}"


def mix_label(mix: MixConfig) -> str:
    """The method, then every setting that differs from its default and matters for that method."""
    default = MixConfig()
    parts = [mix.method]
    for key, (prefix, methods) in _NAMED.items():
        value = getattr(mix, key)
        if mix.method in methods and value != getattr(default, key):
            parts.append(_token(prefix, value))
    return "-".join(parts)


def data_label(spec: str) -> str:
    """A dataset's name for a run: ``imagenet`` for ``.../imagenet/train`` or ``imagenet-train.zip``."""
    if not cfg.is_path(spec):
        return spec
    name = dataset_name(Path(spec).expanduser().absolute())
    for word in SPLIT_WORDS:
        for sep in ("-", "_", "."):
            if name.lower().endswith(sep + word) and len(name) > len(word) + 1:
                return name[: -len(word) - 1]
    return name


def run_name(config: TrainConfig) -> str:
    """``DATASET[-TASK]-MODEL-MIX[-ablations]-sSEED``, e.g. ``shapes-resnet20-cutmix-sample-gaussian-s0`` or
    ``shapes-segment-resnet20-cutmix-s0``."""
    model = config.model.name.replace(":", "-").replace("/", "-")
    task = "" if config.task == "classify" else f"-{config.task}"
    return f"{data_label(config.data.dataset)}{task}-{model}-{mix_label(config.mix)}-s{config.seed}"


def claim_run_dir(config: TrainConfig) -> Path:
    """Create and return ``OUT/NAME`` (or ``NAME-2``, ``NAME-3``, ... when taken); atomic against other starts."""
    root = Path(config.out)
    root.mkdir(parents=True, exist_ok=True)
    base = config.name or run_name(config)
    for i in range(1, 10_000):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{root}: every name from {base} to {base}-9999 is taken")


class RunLock:
    """An exclusive, non-blocking lock on ``RUN/.lock`` for the life of a training process.

    On systems without ``fcntl`` (Windows) it does nothing: the guard is POSIX-only.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunInUseError(f"{self.path.parent} is in use by another cutmix train (pid {holder}); wait for it "
                                "to end or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays (unlinking it would race a new locker)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
