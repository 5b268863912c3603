#!/usr/bin/env python3
"""Train the CIFAR-10 study with the fast preset, within a time limit per invocation (``--collect`` tables it
into a new file such as results/cifar10-gpu.md; the CPU study is results/cifar10-5k.md, from scripts/cifar10_5k.py).

The plan: baseline, Mixup (alpha 1), Cutout (16 px), CutMix (alpha 1, p 0.5) and CutMix p 1.0 for every seed of
``--seeds``, then the CutMix variants (centre-Gaussian box, fixed-size 16x16 box, one-hot label, scheduled
probability 0 -> 1, complete label) for every seed of ``--variant-seeds``. Each run is a run directory
``OUT/NAME-sSEED`` of ``cutmix train``. An invocation works down the plan until ``--max-minutes`` are spent: a
finished run (summary.json) is skipped, an interrupted one (last.pt) continues with ``cutmix train --resume``, and
the run in progress at the deadline is stopped with SIGTERM, which saves last.pt for the next invocation. Exit
status 0 when the whole plan is done, 3 when work is left (run the same command again), 1 on a failed run.

    python scripts/reproduce_cifar10.py --data ../shared/data/cifar10-jpeg --max-minutes 9 \\
        --collect results/cifar10-gpu.md --bundle results/cifar10-runs.json

``--set KEY=VALUE`` goes to every fresh run (e.g. ``--set epochs=1`` for a smoke test); ``--list`` prints the plan
and each run's state. ``--collect`` / ``--bundle`` call scripts/collect_runs.py on the run directories at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runqueue import DATA_DIRS, find_data, state

ROOT = Path(__file__).resolve().parents[1]
PRESET = "cifar10-resnet18-fast"

# name -> training settings on top of the preset (which is CutMix alpha 1, p 0.5)
MAIN = {
    "baseline": {"mix.method": "none"},
    "mixup": {"mix.method": "mixup", "mix.alpha": 1.0, "mix.prob": 1.0},
    "cutout": {"mix.method": "cutout", "mix.cutout_size": 16, "mix.prob": 1.0},
    "cutmix": {"mix.method": "cutmix", "mix.alpha": 1.0, "mix.prob": 0.5},
    "cutmix-p1": {"mix.method": "cutmix", "mix.alpha": 1.0, "mix.prob": 1.0},
}
VARIANTS = {
    "cutmix-gaussian": {"mix.method": "cutmix", "mix.box": "gaussian"},
    "cutmix-fixed": {"mix.method": "cutmix", "mix.box": "fixed", "mix.size": 0.5, "mix.placement": "inside"},
    "cutmix-onehot": {"mix.method": "cutmix", "mix.label": "onehot"},
    "cutmix-scheduled": {"mix.method": "cutmix", "mix.schedule": "linear", "mix.prob": 1.0},
    "cutmix-complete": {"mix.method": "cutmix", "mix.label": "complete"},
}
ORDER = [*MAIN, *VARIANTS]


@dataclass(frozen=True)
class Run:
    name: str  # the run directory's name, NAME-sSEED
    seed: int
    settings: dict


def plan(seeds: list[int], variant_seeds: list[int], only: list[str] | None = None) -> list[Run]:
    """The runs in the order they are trained: the main comparison for every seed first, then the variants."""
    unknown = sorted(set(only or ()) - set(ORDER))
    if unknown:
        raise ValueError(f"--only: unknown run(s) {', '.join(unknown)}; known: {', '.join(ORDER)}")
    runs = [Run(f"{name}-s{seed}", seed, settings) for seed in seeds for name, settings in MAIN.items()]
    runs += [Run(f"{name}-s{seed}", seed, settings) for seed in variant_seeds for name, settings in VARIANTS.items()]
    return [r for r in runs if only is None or r.name.rsplit("-s", 1)[0] in only]


def _literal(value: object) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def command(run: Run, run_state: str, out: Path, data: Path, preset: str, extra: list[str]) -> list[str]:
    """The ``cutmix train`` command line that starts or continues ``run``."""
    base = [sys.executable, "-m", "cutmix", "train"]
    if run_state == "resume":
        return [*base, "--resume", str(out / run.name)]
    sets = [f"{k}={_literal(v)}" for k, v in run.settings.items()] + list(extra)
    return [
        *base,
        "--preset",
        preset,
        "--data",
        str(data / "cifar10-train.zip"),
        "--val-data",
        str(data / "cifar10-test.zip"),
        "--out",
        str(out),
        "--name",
        run.name,
        "--seed",
        str(run.seed),
        "--no-progress",
        *(a for s in sets for a in ("--set", s)),
    ]


def train_until(cmd: list[str], deadline: float, grace: float = 30.0) -> int | None:
    """Run ``cmd``; at ``deadline - grace`` stop it with SIGTERM (it saves last.pt). None when it was stopped."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        return proc.wait(timeout=max(1.0, deadline - grace - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace * 4)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return None


def environment() -> dict[str, object]:
    """What the runs ran on, for the report (torch, CUDA, GPU)."""
    try:
        import torch
    except ImportError:
        return {}
    env: dict[str, object] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        help=f"directory of cifar10-train.zip and cifar10-test.zip (default: the first of {', '.join(DATA_DIRS)})",
    )
    parser.add_argument("--out", default="runs/cifar10", help="parent of the run directories (default: runs/cifar10)")
    parser.add_argument("--preset", default=PRESET)
    parser.add_argument("--seeds", default="0,1", help="seeds of the main comparison (default: 0,1)")
    parser.add_argument("--variant-seeds", default="0,1", help="seeds of the CutMix variants (default: 0,1)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (saving) after this long")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="for every fresh run")
    parser.add_argument("--list", action="store_true", help="print the plan and each run's state, then exit")
    parser.add_argument("--collect", metavar="MD", help="write the markdown table of the runs here at the end")
    parser.add_argument("--bundle", metavar="JSON", help="write every run's config and metrics to one JSON file")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    variant_seeds = [int(s) for s in args.variant_seeds.split(",") if s]
    runs = plan(seeds, variant_seeds, args.only.split(",") if args.only else None)
    out = Path(args.out).resolve()  # the runs start in the checkout's root, wherever this was called from
    if args.list:
        for run in runs:
            print(f"{state(out / run.name):7s} {run.name}")
        return 0
    data = find_data(args.data)
    deadline = time.monotonic() + (args.max_minutes * 60 if args.max_minutes else float("inf"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "environment.json").write_text(json.dumps(environment(), indent=2) + "\n")
    status = 0
    for run in runs:
        run_state = state(out / run.name)
        if run_state == "done":
            continue
        if deadline - time.monotonic() < 90:
            status = 3
            break
        if run_state == "broken":  # stopped before its first checkpoint: nothing to resume
            shutil.rmtree(out / run.name)
        print(f"== {run.name}: {'resuming' if run_state == 'resume' else 'starting'}", flush=True)
        code = train_until(command(run, run_state, out, data, args.preset, args.set), deadline)
        if code is None or code == 130:
            print(f"== {run.name}: stopped at the time limit (last.pt saved); run this command again", flush=True)
            status = 3
            break
        if code != 0:
            print(f"== {run.name}: failed with exit status {code}", flush=True)
            status = 1
            break
    done = sum(state(out / r.name) == "done" for r in runs)
    print(f"{done} of {len(runs)} runs done", flush=True)
    if args.collect or args.bundle:
        from collect_runs import main as collect

        collect(
            [
                str(out),
                "--order",
                ",".join(ORDER),
                *(["--out", args.collect] if args.collect else []),
                *(["--bundle", args.bundle] if args.bundle else []),
            ]
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
