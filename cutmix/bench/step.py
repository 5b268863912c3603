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
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import cutmix
from cutmix.bench.ops import environment, time_all, write_json
from cutmix.losses import soft_target_cross_entropy
from cutmix.models import build_model
from cutmix.train.config import OptimConfig
from cutmix.train.engine import build_optimizer

CUDA_CELLS = (("preact_resnet18", (256, 3, 32, 32)), ("tv:resnet50", (64, 3, 224, 224)))
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


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _compile_or_eager(model: nn.Module, call: Callable[[nn.Module], object]) -> tuple[nn.Module, bool]:
    """``torch.compile(model)`` if its first call (``call``) works, else the eager model (one line says why)."""
    try:
        compiled = torch.compile(model)
        call(compiled)
        return compiled, True  # type: ignore[return-value]
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        print(f"  torch.compile failed ({type(err).__name__}: {reason}); timing the eager model", file=sys.stderr)
        return model, False


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
    mean = torch.tensor([0.49, 0.48, 0.45], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.25, 0.24, 0.26], device=device).view(1, 3, 1, 1)
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

    def prepare() -> Tensor:
        x = images.float().div_(255).sub_(mean).div_(std)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def make_step(variant: str, net: nn.Module) -> Callable[[], None]:
        mix = mixes.get(variant)

        def step() -> None:
            x, targets = prepare(), labels
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
    x0 = prepare()
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
    parser = argparse.ArgumentParser(prog="cutmix bench step", description=__doc__.split("\n\n")[0])
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
    parser.add_argument(
        "--min-time",
        type=float,
        default=2.0,
        help="seconds of timing per variant and cell, spread over the rounds (default: 2.0)",
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--json", default=None, help="write rows and environment to this JSON file")
    args = parser.parse_args(argv)
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
    env = environment()
    print(f"torch {env['torch']}, {env.get('gpu') or env['processor']}, {env['cpu_count']} threads")
    print(format_table(rows))
    write_json(args.json, env, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
