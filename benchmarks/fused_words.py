#!/usr/bin/env python3
"""Why the fused per-sample paste selects 4- and 8-byte elements as float words: the same compiled paste with
integer words (``x ^ ((x ^ p) & m)``, what ``cutmix._fused`` did before) and with float words (``torch.where``, what
it does now), beside ``x.clone()`` and the eager op, timed round-robin in one process so that machine noise hits all
four alike (``cutmix.bench.ops.time_all``). Median µs per call (× clone).

    python benchmarks/fused_words.py                      # 64x3x224² and 128x3x32², float32, 1 and 2 threads
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from cutmix import _fused, _ops
from cutmix.bench.ops import steady_allocator, time_all
from cutmix.boxes import sample_boxes


def integer_words(element_bytes: int, row_bytes: int, offset_bytes: int) -> torch.dtype:
    """The previous word choice: the widest integer type that tiles a row, for every dtype."""
    return _ops.int_words(row_bytes, offset_bytes)


def cell(shape: tuple[int, ...], dtype: torch.dtype, min_time: float) -> dict[str, float]:
    n, _, h, w = shape
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(shape, generator=g) * 255).to(dtype)
    boxes, index = sample_boxes(n, h, w, generator=g), torch.randperm(n, generator=g)
    rows, cols = _ops.box_masks(boxes, h, w, x.device)

    def eager() -> torch.Tensor:
        return _ops.select_boxes(x, _ops.gather(x, index), boxes, inplace=False, scratch=True)

    def fused_with(words: Callable[[int, int, int], torch.dtype]) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            current, _fused._word_dtype = _fused._word_dtype, words
            try:
                return _fused.paste(x, rows, cols, index, eager)
            finally:
                _fused._word_dtype = current
        return run

    fns = {"clone": x.clone, "eager": eager, "fused, int words": fused_with(integer_words),
           "fused, float words": fused_with(_fused._word_dtype)}
    want = eager()
    for name in ("fused, int words", "fused, float words"):
        assert torch.equal(fns[name]().view(torch.uint8), want.view(torch.uint8)), name
    return time_all(fns, x.device, min_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="64,3,224,224;128,3,32,32", help="N,C,H,W shapes separated by ';'")
    parser.add_argument("--dtypes", default="float32", help="comma-separated: float32, float64")
    parser.add_argument("--threads", default="1,2", help="CPU thread counts, comma-separated")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per method and cell, over 8 rounds")
    args = parser.parse_args()
    steady_allocator()
    print("| shape | dtype | thr | clone | eager | fused, int words | fused, float words |")
    print("|---|---|---|---:|---:|---:|---:|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for shape in (tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")):
            for dtype in (getattr(torch, d) for d in args.dtypes.split(",")):
                us = cell(shape, dtype, args.min_time)
                cells = " | ".join(f"{v:,.0f} ({v / us['clone']:.2f}×)" for v in us.values())
                print(f"| {'x'.join(map(str, shape))} | {str(dtype)[6:]} | {threads} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
