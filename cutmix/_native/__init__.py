"""Per-sample CutMix out of place on a CPU as one hand-written pass over memory (``fused=True``).

Why a C kernel: out of place, an op must read the batch and write a new one (a clone's cost); the eager op clones
and then copies each box from its partner, and the compiled ``torch.where`` reads both operands of every element.
Neither gets near a clone (64x3x224², one thread: eager 2.2x clone for uint8 and 1.5-1.8x for float32; inductor's
``where`` 1.4-1.7x for float32 and 7.9x for uint8, whose integer vectors it loads through a stack buffer;
``benchmarks/out_of_place.py``). ``paste.c`` copies each plane from the image and its box from the partner while those
bytes are still in cache, so the batch crosses memory once; batches of ``STREAM_BYTES`` or more go out with streamed
stores, each output line written once (its comment says how). Quiet VM, one thread, 2026-12-07 12:10, two runs:
uint8 0.74x / 0.99x clone, float32 1.24x / 1.51x (before streamed stores: 1.04x / 1.18x and 1.56x / 1.33x).

``boxes.c`` does a per-sample draw's box arithmetic (sides, centres, placement, the label weights) on the torch
draws in one call instead of about 25 small tensor ops: bit-identical to :mod:`cutmix.boxes`, it cuts the fixed
cost of a fused call (:func:`sample`). ``targets.c`` does the same for the targets of class-index labels
(:func:`mix_targets`): one call for about ten small tensor ops.

The library is compiled at its first use with the system's C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``;
0.12-0.30 s here, ``benchmarks/native_variants.py``) into the cache of decoded datasets (``$CUTMIX_CACHE``, else
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
from cutmix.boxes import box_draws, fixed_sides
from cutmix.runtime import default_cache_dir, write_atomic

SOURCES = tuple(Path(__file__).with_name(name) for name in ("paste.c", "boxes.c", "targets.c"))
# No fused multiply-add: boxes.c must round each float64 operation as torch's separate tensor ops do.
FLAGS = ("-O2", "-shared", "-fPIC", "-pthread", "-ffp-contract=off")
VERSION = 4  # cutmix_native_version() of the source: a library that answers otherwise is refused, never called
# Each thread copies at least this much. The kernel starts its threads at each call, and on this project's VM a
# second thread cost more than it saved below ~32 MB (benchmarks/native_variants.py --threads 2 against --threads 1,
# two runs each, 2026-12-07 15:15, 256 KiB then: 128x3x32² float32 137 and 219 µs against 72; 64x3x224² uint8
# 429-631 against 518-553; 64x3x224² float32, 38.5 MB, 2,341-3,538 against 3,388).
_MIN_BYTES_PER_THREAD = 16 << 20
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
    """Compile the sources into the shared library ``target`` (atomically: a reader never sees half a file)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / target.name
        done = subprocess.run([cc, *FLAGS, *map(str, SOURCES), "-o", str(out), "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"{cc} exited with {done.returncode}" + (f": {detail[0]}" if detail else ""))
        return write_atomic(target, out.read_bytes())


def library_path(cc: str) -> Path:
    """Where the library built by ``cc`` from these sources is cached: one file per sources, flags, compiler and
    machine."""
    key = hashlib.sha256(b"\0".join(p.read_bytes() for p in SOURCES)
                         + f"\0{FLAGS}\0{cc}\0{sys.platform}\0{platform.machine()}".encode())
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
        lib.cutmix_boxes.restype = None
        lib.cutmix_boxes.argtypes = [_ptr, _ptr, _ptr, _i64, _i64, _i64, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                     ctypes.c_double, _i64, _i64, _ptr, _ptr]
        lib.cutmix_targets.restype = _i64
        lib.cutmix_targets.argtypes = [_ptr, _ptr, _ptr, _i64, _i64, ctypes.c_int, _ptr]
        _library = lib
    return _library


def streams_for(nbytes: int) -> bool:
    """Whether a batch of ``nbytes`` is written with streamed stores by default (the rule above ``STREAM_BYTES``)."""
    return nbytes >= STREAM_BYTES and bool(load().cutmix_native_streams())


def _fall_back(err: BaseException) -> None:
    global _failed
    _failed = True
    # the library also serves the draws of a fused CutMix whose images are on a GPU: say what falls back where
    warn_fallback("the CPU kernel could not be built", err,
                  "per-sample CutMix runs the eager op on a CPU, and its draws' box arithmetic in torch ops,")


_KINDS = {"uniform": 0, "gaussian": 1, "fixed": 2}  # the enums of boxes.c
_PLACEMENTS = {"clip": 0, "inside": 1}
_ROUNDINGS = {"exact": 0, "reference": 1}


def sample(n: int, height: int, width: int, selected: Tensor, *, alpha: float, kind: str, placement: str,
           sigma: float, size: float, rounding: str, generator: torch.Generator | None
           ) -> tuple[Tensor, Tensor] | None:
    """``CutMix.sample``'s per-sample draw with checked arguments on a CPU: boxes [n, 4] (empty where ``selected``
    [n] is False) and lam [n] float64, with the torch draws of :func:`cutmix.boxes.box_draws` and the arithmetic
    in C; None where the library cannot be built (the caller then runs the torch ops)."""
    if _available() is None:
        return None
    lam, u = box_draws(n, kind, alpha, generator)
    return boxes_from_draws(lam, u, selected, height, width, kind=kind, placement=placement, sigma=sigma, size=size,
                            rounding=rounding)


def boxes_from_draws(lam: Tensor | None, u: Tensor, selected: Tensor, height: int, width: int, *, kind: str,
                     placement: str, sigma: float, size: float, rounding: str) -> tuple[Tensor, Tensor]:
    """:func:`cutmix.boxes.boxes_from_draws` on CPU draws, then empty boxes where ``selected`` (bool [n]) is False,
    and their :func:`cutmix.boxes.box_lambda`: one call of ``boxes.c``, bit-identical to those torch ops."""
    n = u.shape[0]
    if (u.shape != (n, 2) or u.dtype != torch.float64 or selected.shape != (n,) or selected.dtype != torch.bool
            or (lam is not None and (lam.shape != (n,) or lam.dtype != torch.float64))):  # C would read past them
        raise ValueError(f"expected CPU draws lam [n] and u [n, 2] float64 and selected [n] bool, got "
                         f"{None if lam is None else (tuple(lam.shape), lam.dtype)}, {(tuple(u.shape), u.dtype)}, "
                         f"{(tuple(selected.shape), selected.dtype)}")
    fixed_w, fixed_h = fixed_sides(width, height, size, rounding) if lam is None else (0, 0)
    lam = None if lam is None else lam.contiguous()
    u, selected = u.contiguous(), selected.contiguous().view(torch.uint8)  # a bool is one byte: a view
    boxes, out_lam = torch.empty(n, 4, dtype=torch.int64), torch.empty(n, dtype=torch.float64)
    load().cutmix_boxes(None if lam is None else lam.data_ptr(), u.data_ptr(), selected.data_ptr(), n, height, width,
                        _KINDS[kind], _PLACEMENTS[placement], _ROUNDINGS[rounding], sigma, fixed_w, fixed_h,
                        boxes.data_ptr(), out_lam.data_ptr())
    return boxes, out_lam


def mix_targets(labels: Tensor, index: Tensor, weights: Tensor, num_classes: int, dtype: torch.dtype
                ) -> Tensor | None:
    """:func:`cutmix._ops.mix_targets` before smoothing, for CPU class-index labels [n], partners [n] and own-label
    weights [n] float64 (on any device), into float32 or float64 targets: one call of ``targets.c``, bit-identical
    to the torch ops. None where the library cannot be built (the caller then runs the torch ops)."""
    if _available() is None:
        return None
    n = labels.shape[0]
    if (labels.device.type != "cpu" or labels.shape != (n,) or index.shape != (n,) or weights.shape != (n,)
            or weights.dtype != torch.float64 or dtype not in (torch.float32, torch.float64)):  # C would misread
        raise ValueError(f"expected CPU labels, partners and float64 weights of shape [n] and a float32 or float64 "
                         f"target dtype, got {tuple(labels.shape)}, {tuple(index.shape)}, "
                         f"{(tuple(weights.shape), weights.dtype)}, {dtype}")
    labels, index = labels.to(torch.int64).contiguous(), index.to("cpu", torch.int64).contiguous()
    weights = weights.to("cpu").contiguous()  # drawn on the generator's device
    out = torch.empty(n, num_classes, dtype=dtype)
    bad = load().cutmix_targets(labels.data_ptr(), index.data_ptr(), weights.data_ptr(), n, num_classes,
                                int(dtype == torch.float32), out.data_ptr())
    if bad:
        i = bad - 1
        raise ValueError(f"sample {i}: label {int(labels[i])} or partner {int(index[i])} is out of range for "
                         f"{num_classes} classes and a batch of {n}")
    return out


def _available() -> ctypes.CDLL | None:
    """The library, or None (after one warning) where it cannot be built or loaded."""
    if _failed:
        return None
    try:
        return load()
    except Exception as err:  # no compiler, a read-only cache, a platform without ctypes libraries
        _fall_back(err)
        return None


def paste(images: Tensor, boxes: Tensor, index: Tensor, eager: Callable[[], Tensor], stream: bool | None = None
          ) -> Tensor:
    """Per-sample paste of checked CPU images (``cutmix._fused.supports``), boxes [N, 4] and partners [N].

    The result has the images' layout (NCHW, or channels_last when the images are). ``eager`` computes the same
    result with the eager op, for when the kernel cannot be built. ``stream``: write with streamed stores (the
    bytes are the same either way); None chooses them for batches of ``STREAM_BYTES`` or more where the build has
    them (x86).
    """
    lib = _available()
    if lib is None:
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
