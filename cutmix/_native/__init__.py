"""Per-sample CutMix out of place on a CPU as one hand-written pass over memory (``fused=True``).

Why a C kernel: out of place, an op must read the batch and write a new one (a clone's cost); the eager op clones
and then copies each box from its partner, and the compiled ``torch.where`` reads both operands of every element.
Neither gets near a clone (64x3x224², one thread: eager 2.2x clone for uint8 and 1.5-1.8x for float32; inductor's
``where`` 1.4-1.7x for float32 and 7.9x for uint8, whose integer vectors it loads through a stack buffer;
``benchmarks/out_of_place.py``). ``paste.c`` copies each plane from the image and its box from the partner while those
bytes are still in cache, so the batch crosses memory once; batches of ``STREAM_BYTES`` or more go out with streamed
stores, each output line written once (its comment says how). Quiet VM, one thread, 2026-12-07 12:10, two runs:
uint8 0.74x / 0.99x clone, float32 1.24x / 1.51x (before streamed stores: 1.04x / 1.18x and 1.56x / 1.33x).

It is compiled at its first use with the system's C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``;
0.12-0.16 s here, ``benchmarks/native_variants.py``) into the cache of decoded datasets (``$CUTMIX_CACHE``, else
``~/.cache/cutmix``), one file per source, compiler and machine, written atomically, and loaded with ctypes (which
releases the GIL during the call). Not a torch C++ extension, which compiles torch's headers and needs ninja and
Python's headers. Where building or loading fails, the first call warns once and every call runs the eager op.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from cutmix._fused import warn_fallback
from cutmix._ops import layout
from cutmix.runtime import default_cache_dir, write_atomic

SOURCE = Path(__file__).with_name("paste.c")
VERSION = 2  # cutmix_native_version() of the source: a library that answers otherwise is refused, never called
_MIN_BYTES_PER_THREAD = 256 << 10  # each thread copies at least this much (set by judgement, not tuned)
# Batches from this size on are written with streamed stores. Measured on this project's VM (32 MiB L3, one
# thread, benchmarks/native_variants.py, four runs): cached stores won every run at 64x3x96² float32 (7.1 MB) and
# below, streamed ones every run from 64x3x128² float32 (12.6 MB); uint8 at 160² and 224² (4.9, 9.6 MB) went
# either way (benchmarks/README.md, "Cached or streamed stores").
STREAM_BYTES = 8 << 20
_i64, _ptr = ctypes.c_int64, ctypes.c_void_p
_library: ctypes.CDLL | None = None
_failed = False  # set once building or loading has failed: every later call runs the eager op


def compiler() -> str:
    """The C compiler to build with: ``$CC``, else the first of ``cc``, ``gcc``, ``clang`` on the PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        found = shutil.which(name) if name else None
        if found:
            return found
    raise RuntimeError("no C compiler found (set CC, or install cc, gcc or clang)")


def build(cc: str, target: Path) -> Path:
    """Compile ``paste.c`` into the shared library ``target`` (atomically: a reader never sees half a file)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / target.name
        done = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-pthread", str(SOURCE), "-o", str(out)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"{cc} exited with {done.returncode}" + (f": {detail[0]}" if detail else ""))
        return write_atomic(target, out.read_bytes())


def library_path(cc: str) -> Path:
    """Where the library built by ``cc`` from this source is cached: one file per source, compiler and machine."""
    key = hashlib.sha256(SOURCE.read_bytes() + f"\0{cc}\0{sys.platform}\0{platform.machine()}".encode())
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    return default_cache_dir() / f"paste-{key.hexdigest()[:16]}{suffix}"


def load() -> ctypes.CDLL:
    """The kernel library, built at the first call of the process that finds no cached copy."""
    global _library
    if _library is None:
        cc = compiler()
        path = library_path(cc)
        if not path.exists():
            build(cc, path)
        lib = ctypes.CDLL(str(path))
        if lib.cutmix_native_version() != VERSION:
            raise RuntimeError(f"{path} is version {lib.cutmix_native_version()}, expected {VERSION}")
        lib.cutmix_paste.restype = _i64
        lib.cutmix_paste.argtypes = [_ptr, _ptr, _ptr, _ptr, _i64, _i64, _i64, _i64, _i64, ctypes.c_int, ctypes.c_int]
        _library = lib
    return _library


def streams_for(nbytes: int) -> bool:
    """Whether a batch of ``nbytes`` is written with streamed stores by default (the rule above ``STREAM_BYTES``)."""
    return nbytes >= STREAM_BYTES and bool(load().cutmix_native_streams())


def _fall_back(err: BaseException) -> None:
    global _failed
    _failed = True
    warn_fallback("the CPU kernel could not be built", err)


def paste(images: Tensor, boxes: Tensor, index: Tensor, eager: Callable[[], Tensor], stream: bool | None = None
          ) -> Tensor:
    """Per-sample paste of checked CPU images (``cutmix._fused.supports``), boxes [N, 4] and partners [N].

    The result has the images' layout (NCHW, or channels_last when the images are). ``eager`` computes the same
    result with the eager op, for when the kernel cannot be built. ``stream``: write with streamed stores (the
    bytes are the same either way); None chooses them for batches of ``STREAM_BYTES`` or more where the build has
    them (x86).
    """
    if _failed:
        return eager()
    try:
        lib = load()
    except Exception as err:  # no compiler, a read-only cache, a platform without ctypes libraries
        _fall_back(err)
        return eager()
    n, c, h, w = images.shape
    size = images.element_size()
    nhwc = layout(images) == "nhwc" and c > 1
    planes, row_bytes, pixel_bytes = (1, w * c * size, c * size) if nhwc else (c, w * size, size)
    out = torch.empty((n, h, w, c), dtype=images.dtype).permute(0, 3, 1, 2) if nhwc else torch.empty_like(
        images, memory_format=torch.contiguous_format)
    boxes = boxes.to("cpu", torch.int64).contiguous()
    index = index.to("cpu", torch.int64).contiguous()
    nbytes = images.numel() * size
    threads = max(1, min(torch.get_num_threads(), nbytes // _MIN_BYTES_PER_THREAD))
    if stream is None:
        stream = streams_for(nbytes)
    bad = lib.cutmix_paste(images.data_ptr(), out.data_ptr(), boxes.data_ptr(), index.data_ptr(), n, planes, h,
                           row_bytes, pixel_bytes, threads, int(stream))
    if bad:
        i = bad - 1
        raise ValueError(f"sample {i}: partner {int(index[i])} or box {boxes[i].tolist()} lies outside the batch "
                         f"of {n} images of {h}x{w}")
    return out
