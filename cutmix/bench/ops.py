"""Op benchmark: median time per batch of CutMix (and Mixup, Cutout) against a memory-copy bound and other libraries.

Rows of one run share the machine, the thread count and the input batch, so ratios between them are meaningful:

* ``clone``: ``x.clone()`` of the batch, the memory-copy bound of any out-of-place op (``copy_`` into an existing
  buffer shows how much of it is the allocation);
* ``reference inplace``: the paper's code path, ``x[:, :, box] = x[perm, :, box]`` (per-batch, in place);
* ``cutmix ...``: this library's transforms, timed end to end (sampling, checks, targets);
* ``torchvision v2.CutMix`` and ``timm Mixup`` (cutmix only, ``mode="batch"`` / ``"elem"``) when installed.

Run ``python benchmarks/ops.py`` or ``cutmix bench``; ``--json PATH`` writes every number. ``--device cuda``
defaults to the GPU cells (256x3x32x32 and 128x3x224x224 in uint8, bfloat16 and float32) and times throughput:
each sample is ``CUDA_CALLS`` back-to-back calls between two synchronisations, as a training loop issues them.
``sample: cutmix fused`` is ``CutMix(per_sample=True, fused=True)``, the single pass (a C kernel on a CPU,
``torch.compile``'s Triton on a GPU); its build or compile time is paid before timing and printed once per cell
(``compile: 14 s`` on a GPU; on a CPU under a second at the machine's first build, near 0 from the cache).
``--methods`` times a subset (``clone`` always runs). ``--idle MS`` sleeps that long before each timed call, as a
training loop's op finds the machine after the rest of a step: back to back, a small op's memory and a second
thread's wake-up stay hot, which flatters both.
``cutmix bench step`` (:mod:`cutmix.bench.step`) puts these times in proportion to a whole training step.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

import cutmix
from cutmix import sampling
from cutmix.boxes import sample_boxes

SHAPES = ((128, 3, 32, 32), (64, 3, 224, 224))
DTYPES = {"float32": torch.float32, "uint8": torch.uint8, "bfloat16": torch.bfloat16}
CPU_DTYPES = ("float32", "uint8")
CUDA_SHAPES = ((256, 3, 32, 32), (128, 3, 224, 224))
CUDA_DTYPES = ("uint8", "bfloat16", "float32")
FUSED = "cutmix fused"  # the method whose first call compiles
CUDA_CALLS = 10  # calls per timed sample on a GPU: throughput of queued work, not one call's launch latency


@dataclass
class Row:
    shape: str
    dtype: str
    threads: int
    device: str
    mode: str
    method: str
    median_us: float
    vs_clone: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steady_allocator() -> bool:
    """Make glibc keep freed buffers for reuse, as jemalloc or tcmalloc would; returns whether it applied.

    By default glibc maps every allocation above 32 MB afresh and unmaps it on free, so each 38 MB batch (64x3x224²
    float32) costs ~20 ms of page faults on this project's VMs, an amount that depends on allocation history rather
    than on the op. Without mmap and with a high trim threshold, timings measure the ops.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


Draw = tuple[torch.Tensor, "cutmix.CutMix", torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def seeded_draw(shape: tuple[int, ...], dtype: torch.dtype,
                memory_format: torch.memory_format = torch.contiguous_format, inplace: bool = False) -> Draw:
    """The kernel benchmarks' common setup: a seeded batch in [0, 255) and one per-sample CutMix draw on it.

    Returns ``(x, mix, index, selected, boxes, lam)``; every script that times kernels on "the same draw" gets the
    same bytes and boxes from it (batch seed 0, transform seed 2).
    """
    n, _, h, w = shape
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 255).to(dtype)
    x = x.contiguous(memory_format=memory_format)
    mix = cutmix.CutMix(10, per_sample=True, inplace=inplace, generator=torch.Generator().manual_seed(2))
    index, selected = mix.draw(n)
    boxes, lam = mix.sample(n, h, w, selected)
    return x, mix, index, selected, boxes, lam


def time_all(fns: dict[str, Callable[[], object]], device: torch.device, min_time: float,
             rounds: int = 8, calls: int | None = None, idle: float = 0.0) -> dict[str, float]:
    """Median wall time (µs) per call of each callable, measured round-robin so that machine noise hits all alike.

    Each of ``rounds`` rounds runs every callable for about ``min_time / rounds`` seconds; a callable that raises
    (an anchor that does not support the dtype or device) is dropped with a message. A sample is ``calls``
    back-to-back calls followed by a device synchronisation (default: 1 on a CPU, ``CUDA_CALLS`` on a GPU, where
    calls only queue work), each sample after ``idle`` seconds of sleep (not timed, but counted in ``min_time``).
    """
    calls = calls or (CUDA_CALLS if device.type == "cuda" else 1)
    samples: dict[str, list[float]] = {}
    for name, fn in fns.items():
        try:
            for _ in range(3):
                fn()
            _sync(device)
            samples[name] = []
        except Exception as err:
            print(f"  skipped {name}: {type(err).__name__}: {err}")
    for _ in range(rounds):
        for name in samples:
            fn = fns[name]
            start = time.perf_counter()
            while True:
                if idle:
                    time.sleep(idle)
                t0 = time.perf_counter()
                for _ in range(calls):
                    fn()
                _sync(device)
                samples[name].append((time.perf_counter() - t0) / calls)
                if time.perf_counter() - start >= min_time / rounds:
                    break
    return {name: statistics.median(ts) * 1e6 for name, ts in samples.items()}


def _anchors(num_classes: int) -> dict[str, Callable[..., object]]:
    """Other libraries' CutMix, by name, when they are installed."""
    found: dict[str, Callable[..., object]] = {}
    try:
        from torchvision.transforms import v2

        found["torchvision v2.CutMix"] = v2.CutMix(alpha=1.0, num_classes=num_classes)
    except ImportError:
        pass
    try:
        from timm.data.mixup import Mixup

        for mode in ("batch", "elem"):
            found[f"timm Mixup({mode})"] = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode=mode, label_smoothing=0.0,
                                                 num_classes=num_classes)
    except ImportError:
        pass
    return found


def where_reference(x: torch.Tensor, y: torch.Tensor, num_classes: int,
                    g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample CutMix (alpha 1) in a dozen lines of plain torch: one mask, one ``torch.where``, no checks.

    The anchor for the library's fixed cost per call: what its sampling, validation and layout-aware kernels cost
    beside the simplest correct version. Beta(1, 1) is uniform, so lambda is one ``rand``.
    """
    n, _, h, w = x.shape
    cut = (1.0 - torch.rand(n, generator=g, dtype=torch.float64)).sqrt()
    cw, ch = (cut * w).round().long(), (cut * h).round().long()
    cx, cy = torch.randint(w, (n,), generator=g), torch.randint(h, (n,), generator=g)
    x0, x1 = (cx - cw // 2).clamp(0, w), (cx - cw // 2 + cw).clamp(0, w)
    y0, y1 = (cy - ch // 2).clamp(0, h), (cy - ch // 2 + ch).clamp(0, h)
    keep = (1.0 - (x1 - x0) * (y1 - y0) / (h * w)).float().to(x.device)[:, None]  # [N, 1]: own label's weight
    x0, y0, x1, y1 = (t.to(x.device)[:, None, None] for t in (x0, y0, x1, y1))
    rows, cols = torch.arange(h, device=x.device)[:, None], torch.arange(w, device=x.device)
    inside = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
    perm = torch.randperm(n, generator=g).to(x.device)
    one_hot = torch.nn.functional.one_hot(y, num_classes).float()
    return torch.where(inside[:, None], x[perm], x), keep * one_hot + (1.0 - keep) * one_hot[perm]


def methods(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict[tuple[str, str], Callable[[], object]]:
    """(mode, name) -> a zero-argument callable that mixes the batch once."""
    n, _, h, w = x.shape
    g = torch.Generator().manual_seed(0)
    work = x.clone()  # scratch for the in-place methods

    def reference_inplace() -> None:
        # The paper's train.py: one box, partners from a permutation, pasted in place.
        x0, y0, x1, y1 = sample_boxes(1, h, w, generator=g)[0].tolist()
        perm = sampling.permutation(n, g)
        work[:, :, y0:y1, x0:x1] = work[perm, :, y0:y1, x0:x1]

    ours = {
        "batch": cutmix.CutMix(num_classes, generator=g),
        "batch-inplace": cutmix.CutMix(num_classes, generator=g, inplace=True),
        "sample": cutmix.CutMix(num_classes, per_sample=True, generator=g),
        "sample-inplace": cutmix.CutMix(num_classes, per_sample=True, generator=g, inplace=True),
        "sample-fused": cutmix.CutMix(num_classes, per_sample=True, generator=g, fused=True),
        "mixup": cutmix.MixUp(num_classes, generator=g),
        "mixup-sample": cutmix.MixUp(num_classes, per_sample=True, generator=g),
        "cutout": cutmix.Cutout(num_classes, size=h // 2, generator=g),
    }
    table: dict[tuple[str, str], Callable[[], object]] = {
        ("bound", "clone"): x.clone,
        ("bound", "copy_ (no allocation)"): lambda: work.copy_(x),
        ("batch", "reference inplace"): reference_inplace,
        ("batch", "cutmix"): lambda: ours["batch"](x, y),
        ("batch", "cutmix inplace"): lambda: ours["batch-inplace"](work, y),
        ("sample", "reference where"): lambda: where_reference(x, y, num_classes, g),
        ("sample", "cutmix"): lambda: ours["sample"](x, y),
        ("sample", "cutmix inplace"): lambda: ours["sample-inplace"](work, y),
        ("sample", FUSED): lambda: ours["sample-fused"](x, y),
        ("batch", "mixup"): lambda: ours["mixup"](x, y),
        ("sample", "mixup"): lambda: ours["mixup-sample"](x, y),
        ("sample", "cutout"): lambda: ours["cutout"](x, y),
    }
    for name, anchor in _anchors(num_classes).items():
        mode = "sample" if "elem" in name else "batch"
        if name.startswith("timm"):
            table[(mode, name)] = lambda a=anchor: a(work, y)  # timm mixes in place
        else:
            table[(mode, name)] = lambda a=anchor: a(x, y)
    return table


def missing_anchors() -> list[str]:
    """The optional anchor libraries that are not installed (their rows are left out)."""
    return [m for m in ("torchvision", "timm") if importlib.util.find_spec(m) is None]


def run(
    shapes=SHAPES,
    dtypes=CPU_DTYPES,
    threads=(1, 2),
    device: str = "cpu",
    min_time: float = 1.0,
    num_classes: int = 10,
    only: tuple[str, ...] | None = None,
    compile_s: dict[str, float] | None = None,
    idle: float = 0.0,
) -> list[Row]:
    """Rows of every (threads, shape, dtype) cell. ``only``: substrings of ``"mode: method"`` to time (the clone
    bound always runs); ``compile_s`` receives the fused method's first-call (compile) seconds per cell; ``idle``:
    seconds of sleep before each timed call (:func:`time_all`)."""
    dev = torch.device(device)
    rows: list[Row] = []
    before = torch.get_num_threads()
    try:
        for nthreads in threads if dev.type == "cpu" else (torch.get_num_threads(),):
            torch.set_num_threads(nthreads)
            for shape in shapes:
                for dname in dtypes:
                    gen = torch.Generator().manual_seed(1)
                    x = (torch.rand(shape, generator=gen) * 255).to(DTYPES[dname]).to(dev)
                    y = torch.randint(0, num_classes, (shape[0],), generator=gen).to(dev)
                    fns = {key: fn for key, fn in methods(x, y, num_classes).items()
                           if key == ("bound", "clone") or only is None or any(o in ": ".join(key) for o in only)}
                    if ("sample", FUSED) in fns:
                        started = time.perf_counter()
                        fns[("sample", FUSED)]()  # compiles (or loads inductor's cached graph): not timed
                        seconds = time.perf_counter() - started
                        print(f"  {'x'.join(map(str, shape))} {dname} {nthreads} thr: compile: {seconds:.1f} s")
                        if compile_s is not None:
                            compile_s[f"{'x'.join(map(str, shape))} {dname} {nthreads}"] = round(seconds, 2)
                    times = time_all({f"{mode}\0{name}": fn for (mode, name), fn in fns.items()}, dev, min_time,
                                     idle=idle)
                    measured = [(*key.split("\0"), us) for key, us in times.items()]
                    clone = next(us for mode, _, us in measured if mode == "bound")
                    for mode, name, us in measured:
                        rows.append(Row("x".join(map(str, shape)), dname, nthreads, dev.type, mode, name,
                                        round(us, 1), round(us / clone, 2)))
    finally:
        torch.set_num_threads(before)
    return rows


def format_table(rows: list[Row]) -> str:
    lines = ["| shape | dtype | threads | mode | method | median µs | × clone |", "|---|---|---|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.shape} | {r.dtype} | {r.threads} | {r.mode} | {r.method} | {r.median_us:,.1f} "
                     f"| {r.vs_clone:.2f} |")
    return "\n".join(lines)


def summary_table(rows: list[Row]) -> str:
    """One line per (shape, dtype, threads): CutMix methods and anchors side by side, in µs (× clone)."""
    cells: dict[tuple[str, str, int], dict[str, Row]] = {}
    for r in rows:
        cells.setdefault((r.shape, r.dtype, r.threads), {})[f"{r.mode}: {r.method}"] = r
    wanted = ("bound: clone", "bound: copy_ (no allocation)", "batch: reference inplace", "batch: cutmix",
              "batch: cutmix inplace", "batch: torchvision v2.CutMix", "batch: timm Mixup(batch)",
              "sample: reference where", "sample: cutmix", "sample: cutmix inplace", f"sample: {FUSED}",
              "sample: timm Mixup(elem)")
    columns = [c for c in wanted if any(c in cell for cell in cells.values())]
    lines = ["| shape | dtype | thr | " + " | ".join(columns) + " |", "|---|---|---|" + "---:|" * len(columns)]
    for (shape, dtype, threads), cell in cells.items():
        values = [f"{cell[c].median_us:,.0f} ({cell[c].vs_clone:.2f}×)" if c in cell else "–" for c in columns]
        lines.append(f"| {shape} | {dtype} | {threads} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def environment() -> dict[str, object]:
    env: dict[str, object] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    for mod in ("torchvision", "timm"):
        try:
            env[mod] = __import__(mod).__version__
        except ImportError:
            env[mod] = None
    return env


def _shapes_text(shapes) -> str:
    return ";".join(",".join(map(str, s)) for s in shapes)


def main(argv: list[str] | None = None) -> int:
    """``python -m cutmix.bench.ops``: parse ``argv`` and run; ``cutmix bench`` uses the two halves."""
    parser = add_arguments(argparse.ArgumentParser(prog="cutmix bench", description=__doc__.split("\n\n")[0]))
    return run_cli(parser.parse_args(argv), parser)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """This benchmark's flags on ``parser`` (its own, or the ``cutmix bench`` subcommand's)."""
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", default="1,2", help="CPU thread counts, comma-separated (default: 1,2)")
    parser.add_argument("--dtypes", default=None, help=f"comma-separated, from {', '.join(DTYPES)} (default: "
                        f"{','.join(CPU_DTYPES)} on a CPU, {','.join(CUDA_DTYPES)} on CUDA)")
    parser.add_argument("--shapes", default=None, help="N,C,H,W shapes separated by ';' (default: "
                        f"{_shapes_text(SHAPES)} on a CPU, {_shapes_text(CUDA_SHAPES)} on CUDA)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds of timing per method and cell, spread over 8 rounds (default: 1.0)")
    parser.add_argument("--methods", default=None,
                        help="time only methods whose 'mode: method' contains one of these comma-separated "
                        "substrings, e.g. 'copy_,sample: cutmix' (clone always runs; default: all)")
    parser.add_argument("--idle", type=float, default=0.0, metavar="MS",
                        help="milliseconds of sleep before each timed call, as between a training loop's steps "
                        "(default: 0, back to back)")
    parser.add_argument("--json", default=None, help="write rows and environment to this JSON file")
    parser.add_argument("--system-malloc", action="store_true",
                        help="keep glibc's default allocator settings (large buffers are page-faulted in afresh)")
    return parser


def run_cli(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run with parsed flags; a bad value is ``parser.error`` (one line and status 2 under ``cutmix``)."""
    steady = not args.system_malloc and steady_allocator()
    cuda = args.device.startswith("cuda")
    shapes_text = args.shapes or _shapes_text(CUDA_SHAPES if cuda else SHAPES)
    shapes = tuple(tuple(int(v) for v in s.split(",")) for s in shapes_text.split(";"))
    dtypes = tuple((args.dtypes or ",".join(CUDA_DTYPES if cuda else CPU_DTYPES)).split(","))
    for d in dtypes:
        if d not in DTYPES:
            parser.error(f"--dtypes: unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    threads = tuple(int(t) for t in args.threads.split(","))
    if not args.idle >= 0:  # also refuses nan
        parser.error(f"--idle: expected milliseconds >= 0, got {args.idle}")
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    for name in missing_anchors():
        print(f"note: {name} is not installed; its rows are skipped")
    only = tuple(m.strip() for m in args.methods.split(",")) if args.methods else None
    compile_s: dict[str, float] = {}
    rows = run(shapes, dtypes, threads, args.device, args.min_time, only=only, compile_s=compile_s,
               idle=args.idle / 1000)
    env = environment()
    env["steady_allocator"] = steady
    env["fused_compile_s"] = compile_s
    env["idle_ms"] = args.idle
    print(f"torch {env['torch']}, torchvision {env['torchvision']}, timm {env['timm']}, {env['processor']}")
    print(format_table(rows))
    print()
    print(summary_table(rows))
    write_json(args.json, env, rows)
    return 0


def write_json(path: str | None, env: dict, rows: list) -> None:
    """The rows (dataclasses) and the environment they were measured in, as one JSON file (nothing if no path)."""
    if path:
        with open(path, "w") as f:
            json.dump({"environment": env, "rows": [asdict(r) for r in rows]}, f, indent=1)


if __name__ == "__main__":
    raise SystemExit(main())
