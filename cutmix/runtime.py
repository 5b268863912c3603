"""What the toolkit needs from the machine: the device to run on, seeded random streams, files that survive a
crash, progress bars, and the fallback when torch.compile fails.

It sits below :mod:`cutmix.data`, :mod:`cutmix.train` and :mod:`cutmix.evaluate` (and depends on torch only), so
each of these has one helper per job and none imports another for it. torch is imported by the two functions
that use it: the command line reads its settings (which write files atomically) before it pays for torch.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 600.0  # how long a DDP collective waits for the other ranks before the job stops


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` (this rank's GPU when CUDA is available, else the CPU) or a torch device string.

    ``"cuda"`` without an index means this process's ``local_rank``; a CUDA device without CUDA is a ValueError.
    """
    import torch

    if preference == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {preference!r} was requested but CUDA is not available")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def seed_for(*parts: int) -> int:
    """A 63-bit seed derived from integers, e.g. ``seed_for(seed, MIX, rank, epoch, step)``."""
    digest = hashlib.blake2b(b"".join(int(p).to_bytes(8, "little", signed=True) for p in parts), digest_size=8)
    return int.from_bytes(digest.digest(), "little") >> 1


def stream(*parts: int) -> torch.Generator:
    """A CPU generator seeded with :func:`seed_for` of ``parts``: one independent stream per purpose."""
    import torch

    return torch.Generator().manual_seed(seed_for(*parts))


TMP_SUFFIX = ".tmp"  # write_atomic's temporary files are ``.NAME.XXXX.tmp`` beside their target


def default_cache_dir() -> Path:
    """``$CUTMIX_CACHE`` if set, else ``~/.cache/cutmix``: decoded datasets and the built CPU kernel."""
    env = os.environ.get("CUTMIX_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cutmix"


def write_atomic(path: str | os.PathLike[str], content: bytes | str | Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` so that a reader sees the old file or the whole new one, never a torn one.

    ``content`` is bytes, text (UTF-8), or a function given the open binary file (e.g. ``lambda f: torch.save(x,
    f)``). It goes to a temporary file in the same directory, is fsynced, renamed onto ``path`` and the rename made
    durable; a failed write removes its temporary file and re-raises. The file gets mode 0o644 (``mkstemp`` makes
    owner-only files, and caches and run directories are shared).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened or synced."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def progress(total: int, desc: str, *, enabled: bool = True, initial: int = 0, unit: str = "it") -> Any | None:
    """A tqdm bar on stderr when ``enabled``, stderr is a terminal and tqdm is installed; else None.

    A log file gets the callers' summary lines instead of bars redrawn with ``\\r``, and tqdm stays optional. None
    (not a do-nothing bar) lets a caller skip work done only for the bar, such as reading a loss off the device.
    """
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, dynamic_ncols=True, mininterval=0.5)


def first_compiled_call(call: Callable[[], T], fallback: Callable[[], T], say: Callable[[str], None],
                        where: str, then: str) -> tuple[T, bool]:
    """``(call(), True)``, or, when it raises, one line through ``say`` and ``(fallback(), False)``.

    ``torch.compile`` is lazy: it traces and compiles at the first call of the compiled model, so that call is where
    a missing or broken toolchain shows. ``call`` makes it; ``fallback`` does the same work with the eager model.
    The line reads ``torch.compile failed WHERE(TYPE: first line of the message); THEN``.
    """
    try:
        return call(), True
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        say(f"torch.compile failed {where}({type(err).__name__}: {reason}); {then}")
        return fallback(), False
