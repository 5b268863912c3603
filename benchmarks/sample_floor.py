#!/usr/bin/env python3
"""Where the time of an in-place per-sample CutMix on large images goes, and the floor an eager op can reach.

At 224² a CPU call is the per-sample slice loop of ``cutmix._ops._paste_loop``. This script times its parts
beside ``x.clone()``, round-robin in one process (``cutmix.bench.ops.time_all``), on the same batch, boxes and
partners (one draw, so every part copies the same bytes):

* ``draws + targets``: the transform's sampling and target mixing alone (``CutMix.sample`` + ``mixed_targets``);
* ``views``: the two views per sample that the loop builds, as NumPy slices of the batch's memory (what the
  loop uses where NumPy is installed) and as torch ``as_strided`` tensors (without NumPy);
* ``box copies``: the loop's copies alone, on views built beforehand, NumPy's assignment and torch's ``copy_``;
* ``same bytes, contiguous``: one contiguous copy of as many bytes as the boxes hold (what a kernel that
  reads and writes each box byte once, with no per-row cost, would take);
* ``full op``: ``CutMix(per_sample=True, inplace=True)`` end to end.

Before timing, the script checks that the timed copies are the op's: run into a copy of the batch, they give
the per-pixel selection's output (``cutmix._ops.select_boxes``, the small-image path) bit for bit. Median µs per
call (× clone). The parts need not add up to the full op: inside it, the small ops follow megabytes of copies
and run with cold caches.

    python benchmarks/sample_floor.py                     # 64x3x224², uint8 and float32, NCHW and channels_last
"""

from __future__ import annotations

import argparse
import math

import torch

from cutmix import _ops
from cutmix.bench.ops import seeded_draw, steady_allocator, time_all

FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
VIEWS = ("numpy", "torch")


def cell(shape: tuple[int, ...], dtype: torch.dtype, fmt: str, min_time: float) -> dict[str, float]:
    n, _, h, w = shape
    x, mix, index, selected, boxes, lam = seeded_draw(shape, dtype, FORMATS[fmt], inplace=True)
    labels = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(1))
    state = mix.generator.get_state()

    def draws_targets() -> object:
        mix.generator.set_state(state)
        return mix.sample(n, h, w, selected), mix.mixed_targets(labels, 10, index, lam, "area")

    box_list, partners = boxes.tolist(), index.tolist()
    work = [(i, partners[i], b) for i, b in enumerate(box_list) if i != partners[i] and _ops.nonempty(b)]
    expected = _ops.select_boxes(x, _ops.gather(x, index), boxes, inplace=False, scratch=True)
    fns: dict[str, object] = {"clone": x.clone, "draws + targets": draws_targets}
    box_bytes = 0
    for kind in VIEWS:
        view = _ops._box_viewer(x, numpy=kind == "numpy")
        check = x.clone()  # the parts copy the op's bytes: into a copy, the loop equals the per-pixel selection
        write = _ops._box_viewer(check, numpy=kind == "numpy")
        for i, j, b in work:
            _ops._copy(write(i, b), view(j, b))
        if not torch.equal(check, expected):
            raise AssertionError(f"the timed box copies ({kind} views) do not reproduce the op")

        def views(view=view) -> list[tuple[object, object]]:
            return [(view(i, b), view(j, b)) for i, j, b in work]

        pairs = views()

        def box_copies(pairs=pairs) -> None:
            for dst, src in pairs:
                _ops._copy(dst, src)

        fns[f"views, {kind}"], fns[f"box copies, {kind}"] = views, box_copies
        box_bytes = sum(math.prod(dst.shape) for dst, _ in pairs) * x.element_size()
    flat_src, flat_dst = torch.empty(box_bytes, dtype=torch.uint8), torch.empty(box_bytes, dtype=torch.uint8)
    fns["same bytes, contiguous"] = lambda: flat_dst.copy_(flat_src)
    fns["full op"] = lambda: mix(x, labels)
    us = time_all(fns, x.device, min_time)
    us["box share"] = box_bytes / (x.numel() * x.element_size())
    return us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="64,3,224,224", help="N,C,H,W")
    parser.add_argument("--dtypes", default="uint8,float32", help="comma-separated")
    parser.add_argument("--formats", default="nchw,channels_last", help="comma-separated: nchw, channels_last")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per part and cell, over 8 rounds")
    args = parser.parse_args()
    steady_allocator()
    torch.set_num_threads(args.threads)
    shape = tuple(int(v) for v in args.shape.split(","))
    parts = ("clone", "draws + targets", *(f"{p}, {k}" for k in VIEWS for p in ("views", "box copies")),
             "same bytes, contiguous", "full op")
    print(f"{'x'.join(map(str, shape))}, {args.threads} thread(s); µs (× clone)\n")
    print("| dtype | layout | box share | " + " | ".join(parts) + " |")
    print("|---|---|---:|" + "---:|" * len(parts))
    for dtype in args.dtypes.split(","):
        for fmt in args.formats.split(","):
            us = cell(shape, getattr(torch, dtype), fmt, args.min_time)
            cells = " | ".join(f"{us[p]:,.0f} ({us[p] / us['clone']:.2f}×)" for p in parts)
            print(f"| {dtype} | {fmt} | {us['box share']:.2f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
