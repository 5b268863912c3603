#!/usr/bin/env python3
"""Out-of-place per-sample CutMix at 224²: the kernels tried against the library's, beside ``x.clone()``.

Out of place, any op must read the batch and write a new one (a clone's cost) and on top read the partners' boxes.
The library's large-sample CPU path (``cutmix._ops._paste_loop``) clones, then copies each box from its partner.
This script times, on one batch, one draw of boxes and partners, round-robin in one process
(``cutmix.bench.ops.time_all``), every one checked bit for bit against the per-pixel selection first:

* ``library``: ``_paste_loop`` as it ships (clone, then one box copy a sample, NumPy views);
* ``interleaved``: each sample copied into a fresh batch, then its box, while the sample is still in cache;
* ``interleaved, per channel``: the same a channel plane at a time (a float32 sample, 588 KiB, exceeds L2);
* ``write once``: each output byte written once, the four strips around the box from the image, the box from the
  partner;
* ``whole rows``: the box's rows copied whole from the image, then the box from the partner;
* ``native`` (``fused=True`` as it ships on a CPU, :mod:`cutmix._native`): a C kernel that copies each plane from
  the image and its box from the partner while the plane is in cache (``benchmarks/native_variants.py`` times the
  copy orders tried);
* ``compiled where`` (``fused=True`` on a GPU, :mod:`cutmix._fused`: both operands of a ``torch.where`` loaded for
  every element),
  ``compiled masked`` (the partner loaded through ``aten._unsafe_masked_index``, for which inductor emits a masked
  vector load that skips vectors outside the box) and ``compiled gather`` (one ``gather`` with a per-element source
  index: one load per element): ``--compiled`` only, 5–20 s of compilation each.

Median µs per call (× clone). The draws and targets, which the op adds, are not in any row
(``benchmarks/sample_floor.py`` times them).

    python benchmarks/out_of_place.py --min-time 0.5 --compiled
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import Tensor

from cutmix import _fused, _native, _ops
from cutmix.bench.ops import seeded_draw, steady_allocator, time_all


def interleaved(x: Tensor, boxes: list[list[int]], partners: list[int], per_channel: bool = False) -> Tensor:
    out = torch.empty_like(x)
    a, o = _ops._as_array(x), _ops._as_array(out)
    for i, (j, (x0, y0, x1, y1)) in enumerate(zip(partners, boxes, strict=True)):
        paste = i != j and x1 > x0 and y1 > y0
        for k in range(x.shape[1]) if per_channel and paste else [slice(None)]:
            o[i, k] = a[i, k]
            if paste:
                o[i, k, y0:y1, x0:x1] = a[j, k, y0:y1, x0:x1]
    return out


def write_once(x: Tensor, boxes: list[list[int]], partners: list[int], whole_rows: bool = False) -> Tensor:
    out = torch.empty_like(x)
    a, o = _ops._as_array(x), _ops._as_array(out)
    for i, (j, (x0, y0, x1, y1)) in enumerate(zip(partners, boxes, strict=True)):
        if i == j or x1 <= x0 or y1 <= y0:
            o[i] = a[i]
            continue
        src, dst = a[i], o[i]
        dst[:, :y0], dst[:, y1:] = src[:, :y0], src[:, y1:]
        if whole_rows:
            dst[:, y0:y1] = src[:, y0:y1]
        else:
            dst[:, y0:y1, :x0], dst[:, y0:y1, x1:] = src[:, y0:y1, :x0], src[:, y0:y1, x1:]
        dst[:, y0:y1, x0:x1] = a[j, :, y0:y1, x0:x1]
    return out


def masked(x: Tensor, rows: Tensor, cols: Tensor, index: Tensor) -> Tensor:
    inside = rows[:, None, :, None] & cols[:, None, None, :]
    _, c, h, w = x.shape
    where = [index[:, None, None, None], torch.arange(c)[None, :, None, None],
             torch.arange(h)[None, None, :, None], torch.arange(w)[None, None, None, :]]
    return torch.where(inside, torch.ops.aten._unsafe_masked_index(x, inside, where, 0), x)


def gathered(x: Tensor, rows: Tensor, cols: Tensor, index: Tensor) -> Tensor:
    inside = rows[:, None, :, None] & cols[:, None, None, :]
    source = torch.where(inside, index[:, None, None, None], torch.arange(x.shape[0])[:, None, None, None])
    return torch.gather(x, 0, source.expand_as(x))


def _fail(name: str) -> Tensor:
    raise RuntimeError(f"{name}: the kernel could not be built")


def cell(dtype: torch.dtype, shape: tuple[int, ...], compiled: bool, min_time: float) -> dict[str, float]:
    h, w = shape[2:]
    x, _, index, _, boxes, _ = seeded_draw(shape, dtype)
    box_list, partners = boxes.tolist(), index.tolist()
    fns: dict[str, Callable[[], Tensor]] = {
        "clone": x.clone,
        "library": lambda: _ops._paste_loop(x, boxes, index, inplace=False),
        "interleaved": lambda: interleaved(x, box_list, partners),
        "interleaved, per channel": lambda: interleaved(x, box_list, partners, per_channel=True),
        "write once": lambda: write_once(x, box_list, partners),
        "whole rows": lambda: write_once(x, box_list, partners, whole_rows=True),
        "native": lambda: _native.paste(x, boxes, index, eager=lambda: _fail("native")),
    }
    if compiled:
        rows, cols = _ops.box_masks(boxes, h, w, x.device)
        fns["compiled where"] = lambda: _fused.paste(x, rows, cols, index, eager=lambda: _fail("compiled where"))
        for name, fn in (("compiled masked", masked), ("compiled gather", gathered)):
            kernel = torch.compile(fn, dynamic=True)
            fns[name] = lambda kernel=kernel: kernel(x, rows, cols, index)
    expected = _ops.select_boxes(x, _ops.gather(x, index), boxes, inplace=False, scratch=True)
    for name, fn in fns.items():
        if name != "clone" and not torch.equal(fn(), expected):
            raise AssertionError(f"{name} does not reproduce the per-pixel selection")
    return time_all(fns, x.device, min_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="64,3,224,224", help="N,C,H,W")
    parser.add_argument("--dtypes", default="uint8,float32", help="comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per kernel and dtype, over 8 rounds")
    parser.add_argument("--compiled", action="store_true", help="also the torch.compile kernels")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steady_allocator()
    shape = tuple(int(s) for s in args.shape.split(","))
    for dtype in args.dtypes.split(","):
        us = cell(getattr(torch, dtype), shape, args.compiled, args.min_time)
        print(f"{dtype}: " + ", ".join(f"{k} {v:,.0f} ({v / us['clone']:.2f}x)" for k, v in us.items()), flush=True)


if __name__ == "__main__":
    main()
