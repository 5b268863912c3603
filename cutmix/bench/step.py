"""Step benchmark: the share of a training step that CutMix takes (``cutmix bench step``).

An op benchmark says how fast CutMix is; whether that matters depends on the step around it. Each cell times, on
the same uint8 batch and model, a full training step as the engine runs it (uint8 -> normalised float, mix,
forward, soft-target cross-entropy, backward, SGD) without mixing, with per-batch CutMix (the paper's) and with
per-sample CutMix, plus each CutMix op alone on the normalised batch. Reported: ms per step, the op's ms, the op's
share of the mixed step (``op / step``), and the step's growth over the unmixed one (``(mixed - none) / mixed``,
noisier since it is a difference of two timings). CutMix is applied at every step here (prob 1); with the
paper's prob 0.5 its average share halves.

Defaults: on CUDA our PreAct ResNet-18 on 256x3x32x32 and torchvision's ResNet-50 on 64x3x224x224, bf16 autocast
and channels_last; on a CPU the same models on small batches in float32. Steps are timed round-robin (see
:func:`cutmix.bench.ops.time_all`), synchronising the device after every timed sample.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import cutmix
from cutmix.bench.ops import environment, time_all, write_json
from cutmix.data.normalize import MEAN_STD, Normalizer
from cutmix.losses import soft_target_cross_entropy
from cutmix.models import build_model
from cutmix.run.config import OptimConfig
from cutmix.runtime import first_compiled_call
from cutmix.train.engine import build_optimizer

CUDA_CELLS = (("preact_resnet18", (256, 3, 32, 32)), ("tv:resnet50", (64, 3, 224, 224)))
FORMAT_CELLS = (("resnet20", (128, 3, 32, 32)), ("preact_resnet18", (128, 3, 32, 32)))  # CIFAR models, CIFAR batch
FORMATS = {"eager": (False, False), "channels_last": (True, False), "compile": (False, True),
           "channels_last+compile": (True, True)}  # name -> (channels_last, compile)
CPU_CELLS = (("preact_resnet18", (32, 3, 32, 32)), ("tv:resnet50", (4, 3, 224, 224)))
VARIANTS = ("none", "cutmix batch", "cutmix sample")


@dataclass
class StepRow:
    model: str
    shape: str
    device: str
    amp: str
    channels_last: bool
    compiled: bool
    optimizer: str
    variant: str
    step_ms: float
    op_ms: float | None  # the mixing op alone on the same batch (None for "none")
    op_share: float | None  # op_ms / step_ms
    step_growth: float | None  # (step_ms - none's step_ms) / step_ms


@dataclass
class FormatRow:
    model: str
    shape: str
    device: str
    format: str
    compiled: bool  # False when compiling failed and the eager model was timed
    step_ms: float
    images_per_s: float
    speedup: float | None  # over the "eager" (NCHW, not compiled) step of the same cell


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _compile_or_eager(model: nn.Module, call: Callable[[nn.Module], object]) -> tuple[nn.Module, bool]:
    """``torch.compile(model)`` if its first call (``call``) works, else the eager model (one line says why)."""
    def compiled() -> nn.Module:
        net = torch.compile(model)
        call(net)
        return net  # type: ignore[return-value]

    return first_compiled_call(compiled, lambda: model, lambda line: print(f"  {line}", file=sys.stderr), "",
                               "timing the eager model")


def cell(
    model_name: str,
    shape: tuple[int, int, int, int],
    device: torch.device,
    *,
    amp: str = "none",
    channels_last: bool = False,
    compile: bool = False,
    num_classes: int = 10,
    min_time: float = 1.0,
    rounds: int = 8,
) -> list[StepRow]:
    """Time the step variants of one (model, batch shape) on ``device``; one row per variant."""
    n = shape[0]
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).to(device)
    labels = torch.randint(0, num_classes, (n,), generator=g).to(device)
    normalizer = Normalizer(*MEAN_STD["cifar10"]).to(device)
    model: nn.Module = build_model(model_name, num_classes).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer, impl = build_optimizer(model.parameters(), OptimConfig(), device)
    mixes = {
        "cutmix batch": cutmix.CutMix(num_classes, prob=1.0, generator=torch.Generator().manual_seed(1)),
        "cutmix sample": cutmix.CutMix(
            num_classes, prob=1.0, per_sample=True, generator=torch.Generator().manual_seed(2)
        ),
    }

    def model_input() -> Tensor:
        x = normalizer(images)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def make_step(variant: str, net: nn.Module) -> Callable[[], None]:
        mix = mixes.get(variant)

        def step() -> None:
            x, targets = model_input(), labels
            if mix is not None:
                x, targets = mix(x, labels)
            with _autocast(device, amp):
                loss = soft_target_cross_entropy(net(x), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    net, compiled = model, False
    if compile:
        net, compiled = _compile_or_eager(model, lambda m: make_step("none", m)())
    fns: dict[str, Callable[[], object]] = {v: make_step(v, net) for v in VARIANTS}
    x0 = model_input()
    for variant, mix in mixes.items():
        fns[f"{variant} op"] = lambda mix=mix: mix(x0, labels)
    times = {name: us / 1000 for name, us in time_all(fns, device, min_time, rounds).items()}
    none_ms = times.get("none")
    rows = []
    for variant in VARIANTS:
        if variant not in times:
            continue
        step_ms, op_ms = times[variant], times.get(f"{variant} op")
        rows.append(
            StepRow(
                model_name,
                "x".join(map(str, shape)),
                device.type,
                amp,
                channels_last,
                compiled,
                impl,
                variant,
                round(step_ms, 3),
                None if op_ms is None else round(op_ms, 3),
                None if op_ms is None else round(op_ms / step_ms, 4),
                None if variant == "none" or none_ms is None else round((step_ms - none_ms) / step_ms, 4),
            )
        )
    return rows


def compare_formats(model_name: str, shape: tuple[int, int, int, int], device: torch.device, formats=tuple(FORMATS),
                    *, amp: str = "none", num_classes: int = 10, min_time: float = 2.0,
                    rounds: int = 8) -> list[FormatRow]:
    """The unmixed training step of one cell in each memory format / compile setting, timed round-robin together.

    Each format gets its own model (same initial weights) and optimizer, so the timings differ only by the format;
    the compile time of the compiled formats is paid before timing starts and printed to stderr.
    """
    n = shape[0]
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).to(device)
    labels = torch.randint(0, num_classes, (n,), generator=g).to(device)
    fns: dict[str, Callable[[], object]] = {}
    compiled_ok: dict[str, bool] = {}
    for name in formats:
        if name not in FORMATS:
            raise ValueError(f"formats: unknown {name!r}; known: {', '.join(FORMATS)}")
        channels_last, compile = FORMATS[name]
        torch.manual_seed(0)
        model = build_model(model_name, num_classes).to(device).train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer, _ = build_optimizer(model.parameters(), OptimConfig(), device)

        def step(net: nn.Module, cl: bool = channels_last, opt: torch.optim.Optimizer = optimizer) -> None:
            x = images.float().div_(255)
            x = x.contiguous(memory_format=torch.channels_last) if cl else x
            with _autocast(device, amp):
                loss = soft_target_cross_entropy(net(x), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        net, compiled_ok[name] = model, False
        if compile:
            started = time.perf_counter()
            net, compiled_ok[name] = _compile_or_eager(model, step)
            print(f"  {model_name} {name}: compiled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        fns[name] = lambda net=net, step=step: step(net)
    times = {k: us / 1000 for k, us in time_all(fns, device, min_time, rounds).items()}
    base = times.get("eager")
    return [FormatRow(model_name, "x".join(map(str, shape)), device.type, name, compiled_ok[name], round(ms, 2),
                      round(n / ms * 1000, 1), None if base is None else round(base / ms, 3))
            for name, ms in times.items()]


def format_formats(rows: list[FormatRow]) -> str:
    lines = ["| model | batch | format | ms / step | images / s | speed-up over eager |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        fmt = r.format + ("" if r.compiled or "compile" not in r.format else " (compile failed: eager)")
        speedup = "–" if r.speedup is None else f"{r.speedup:.2f}x"
        lines.append(f"| {r.model} | {r.shape} | {fmt} | {r.step_ms:.1f} | {r.images_per_s:.0f} | {speedup} |")
    return "\n".join(lines)


def run(cells, device: str = "cpu", **kwargs) -> list[StepRow]:
    dev = torch.device(device)
    rows: list[StepRow] = []
    for model_name, shape in cells:
        print(f"timing {model_name} on {'x'.join(map(str, shape))} ({dev})", file=sys.stderr, flush=True)
        rows += cell(model_name, shape, dev, **kwargs)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def format_table(rows: list[StepRow]) -> str:
    lines = [
        "| model | batch | amp | channels_last | compiled | variant | ms / step | op ms | op / step | step vs none |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        op = "–" if r.op_ms is None else f"{r.op_ms:.3f}"
        lines.append(
            f"| {r.model} | {r.shape} | {r.amp} | {r.channels_last} | {r.compiled} | {r.variant} | "
            f"{r.step_ms:.2f} | {op} | {_pct(r.op_share)} | {_pct(r.step_growth)} |"
        )
    return "\n".join(lines)


def parse_cells(text: str) -> tuple[tuple[str, tuple[int, int, int, int]], ...]:
    """``"preact_resnet18:256x3x32x32;tv:resnet50:64x3x224x224"`` -> cells (the shape follows the last colon)."""
    cells = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, dims = part.rpartition(":")
        shape = tuple(int(v) for v in dims.split("x")) if sep else ()
        if not name or len(shape) != 4 or min(shape) < 1:
            raise ValueError(f"--models: expected MODEL:NxCxHxW (e.g. preact_resnet18:256x3x32x32), got {part!r}")
        cells.append((name, shape))
    if not cells:
        raise ValueError("--models: no cells given")
    return tuple(cells)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    """``python -m cutmix.bench.step``: parse ``argv`` and run; ``cutmix bench`` uses the two halves."""
    parser = add_arguments(argparse.ArgumentParser(prog="cutmix bench step", description=__doc__.split("\n\n")[0]))
    return run_cli(parser.parse_args(argv), parser)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """This benchmark's flags on ``parser`` (its own, or the ``cutmix bench step`` subcommand's)."""
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument(
        "--models",
        default=None,
        help="MODEL:NxCxHxW cells separated by ';' (default: "
        "preact_resnet18 and tv:resnet50, GPU-sized batches on CUDA, small ones on a CPU)",
    )
    parser.add_argument("--amp", choices=["none", "bf16"], default=None, help="autocast (default: bf16 on CUDA)")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels_last model and input (default: on for CUDA)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (eager if that fails)")
    parser.add_argument("--formats", default=None, help=f"time the unmixed step in each of these, comma-separated: "
                        f"{', '.join(FORMATS)}; 'none' skips it (default on a CPU without --models/--compile/"
                        f"--channels-last: all four, for {', '.join(m for m, _ in FORMAT_CELLS)} at batch 128)")
    parser.add_argument(
        "--min-time",
        type=float,
        default=2.0,
        help="seconds of timing per variant and cell, spread over the rounds (default: 2.0)",
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--json", default=None, help="write rows and environment to this JSON file")
    return parser


def run_cli(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run with parsed flags; a bad value is ``parser.error`` (one line and status 2 under ``cutmix``)."""
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    try:
        cells = parse_cells(args.models) if args.models else (CUDA_CELLS if cuda else CPU_CELLS)
    except ValueError as err:
        parser.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    amp = args.amp or ("bf16" if cuda else "none")
    env = environment()
    print(f"torch {env['torch']}, {env.get('gpu') or env['processor']}, {env['cpu_count']} threads")
    plain_cpu = not (cuda or args.compile or args.channels_last is not None or args.models)
    formats = args.formats or (",".join(FORMATS) if plain_cpu else "none")
    format_rows: list[FormatRow] = []
    if formats != "none":
        names = tuple(f for f in formats.split(",") if f)
        unknown = sorted(set(names) - set(FORMATS))
        if unknown:
            parser.error(f"--formats: unknown {', '.join(unknown)}; known: {', '.join(FORMATS)}")
        for model_name, shape in parse_cells(args.models) if args.models else FORMAT_CELLS:
            print(f"timing formats of {model_name} on {'x'.join(map(str, shape))}", file=sys.stderr, flush=True)
            format_rows += compare_formats(model_name, shape, torch.device(args.device), names, amp=amp,
                                           min_time=args.min_time, rounds=args.rounds)
        print(format_formats(format_rows), flush=True)
    channels_last = cuda if args.channels_last is None else args.channels_last
    rows = run(
        cells,
        args.device,
        amp=amp,
        channels_last=channels_last,
        compile=args.compile,
        min_time=args.min_time,
        rounds=args.rounds,
    )
    print(format_table(rows))
    write_json(args.json, env, [*format_rows, *rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
