#!/usr/bin/env python3
"""The copy orders tried for ``cutmix/_native/paste.c`` (``fused=True`` on a CPU), timed against ``copy_``.

Each variant builds the same out-of-place per-sample paste, one plane at a time, on one thread (``--threads``
sets the threads of ``copy_`` and of the shipped kernel only):

* ``three spans``: the rows above and below the box as blocks, each box row as image | partner | image spans
  (each output byte written once, three calls a row);
* ``whole plane, then box``: the plane copied whole, then each box row's span from the partner;
* ``rows, then box``: the blocks above and below, then each box-band row whole and its span from the partner;
* ``cached stores`` and ``streamed stores``: :func:`cutmix._native.paste` as it ships, with its output allocation,
  forced to each of its two ways of writing (ordinary stores in the ``rows, then box`` order, whole plane under
  16 KiB; or non-temporal stores of each output line once, box bands assembled in an 8 KiB buffer). The last
  column names the one it chooses by size (``_native.STREAM_BYTES``).

The variants are compiled here from the C below with the compiler the library would use; the script also prints
how long the shipped kernel takes to build into an empty directory. Every variant is checked bit for bit against
the eager op first. Median µs per call (× ``copy_`` into a preallocated batch).

    python benchmarks/native_variants.py --shapes "64,3,224,224;64,3,160,160;64,3,128,128;64,3,96,96;128,3,32,32"
"""

from __future__ import annotations

import argparse
import ctypes
import math
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from cutmix import _native, _ops
from cutmix.bench.ops import seeded_draw, steady_allocator, time_all

VARIANTS = {"three spans": 0, "whole plane, then box": 1, "rows, then box": 2}
C_SOURCE = r"""
#include <stdint.h>
#include <string.h>
void paste(const char *src, char *dst, const int64_t *boxes, const int64_t *index, int64_t n, int64_t planes,
           int64_t rows, int64_t rb, int64_t px, int variant) {
    const int64_t plane = rows * rb;
    for (int64_t k = 0; k < n * planes; ++k) {
        const int64_t i = k / planes, p = k % planes, j = index[i], *b = boxes + 4 * i;
        const char *s = src + k * plane, *q = src + (j * planes + p) * plane;
        char *d = dst + k * plane;
        const int64_t l = b[0] * px, r = b[2] * px, y0 = b[1], y1 = b[3];
        if (j == i || r <= l || y1 <= y0) { memcpy(d, s, plane); continue; }
        if (variant == 1) memcpy(d, s, plane);
        else { memcpy(d, s, y0 * rb); memcpy(d + y1 * rb, s + y1 * rb, (rows - y1) * rb); }
        for (int64_t y = y0; y < y1; ++y) {
            const int64_t o = y * rb;
            if (variant == 0) { memcpy(d + o, s + o, l); memcpy(d + o + r, s + o + r, rb - r); }
            if (variant == 2) memcpy(d + o, s + o, rb);
            memcpy(d + o + l, q + o + l, r - l);
        }
    }
}
"""


def build_variants(directory: Path) -> ctypes.CDLL:
    source, library = directory / "variants.c", directory / "variants.so"
    source.write_text(C_SOURCE)
    subprocess.run([_native.compiler(), "-O2", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    lib = ctypes.CDLL(str(library))
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.paste.argtypes = [ptr, ptr, ptr, ptr, i64, i64, i64, i64, i64, ctypes.c_int]
    return lib


def build_seconds(directory: Path) -> float:
    start = time.perf_counter()
    _native.build(_native.compiler(), directory / "paste.so")
    return time.perf_counter() - start


def cell(lib: ctypes.CDLL, dtype: torch.dtype, shape: tuple[int, ...], min_time: float) -> dict[str, float]:
    n, c, h, w = shape
    x, _, index, _, boxes, _ = seeded_draw(shape, dtype)
    boxes, index = boxes.contiguous(), index.contiguous()
    size, ref = x.element_size(), torch.empty_like(x)
    outs = {name: torch.empty_like(x) for name in VARIANTS}

    def variant(name: str):
        out, code = outs[name], VARIANTS[name]
        return lambda: lib.paste(x.data_ptr(), out.data_ptr(), boxes.data_ptr(), index.data_ptr(), n, c, h,
                                 w * size, size, code)

    fns = {"copy_": lambda: ref.copy_(x), **{name: variant(name) for name in VARIANTS},
           "cached stores": lambda: _native.paste(x, boxes, index, eager=None, stream=False),
           "streamed stores": lambda: _native.paste(x, boxes, index, eager=None, stream=True)}
    expected = _ops.select_boxes(x, _ops.gather(x, index), boxes, inplace=False, scratch=True)
    for name in VARIANTS:
        fns[name]()
        if not torch.equal(outs[name], expected):
            raise AssertionError(f"{name} does not reproduce the per-pixel selection")
    for name in ("cached stores", "streamed stores"):
        if not torch.equal(fns[name](), expected):
            raise AssertionError(f"the shipped kernel ({name}) does not reproduce the per-pixel selection")
    return time_all(fns, x.device, min_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="64,3,224,224;64,3,160,160;64,3,128,128;64,3,96,96;128,3,32,32",
                        help="N,C,H,W;...")
    parser.add_argument("--dtypes", default="uint8,float32", help="comma-separated")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per kernel and cell, over 8 rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads: copy_ and the shipped kernel use "
                        "them, the variants above always run on one")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    steady_allocator()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"build of the kernel library (paste.c, boxes.c): {build_seconds(Path(tmp)):.2f} s", flush=True)
        lib = build_variants(Path(tmp))
        for shape in (tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")):
            for dtype in args.dtypes.split(","):
                us = cell(lib, getattr(torch, dtype), shape, args.min_time)
                nbytes = math.prod(shape) * getattr(torch, dtype).itemsize
                chosen = "streamed" if _native.streams_for(nbytes) else "cached"
                print(f"{'x'.join(map(str, shape))} {dtype}: "
                      + ", ".join(f"{k} {v:,.0f} ({v / us['copy_']:.2f}x)" for k, v in us.items())
                      + f"; by size: {chosen}", flush=True)


if __name__ == "__main__":
    main()
