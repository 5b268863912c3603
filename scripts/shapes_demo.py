#!/usr/bin/env python3
"""The main job's table (results/shapes-demo.md): the default ``cutmix train`` against ``--mix none``, per seed.

Every run is exactly the default command plus ``--seed S`` (and ``--mix none`` for the baseline), with one thread
per run so that two run side by side and the numbers do not depend on the thread count:

    python scripts/shapes_demo.py run --out ~/runs/shapes-demo --seeds 0,1,2 --slots 2
    python scripts/shapes_demo.py collect --out ~/runs/shapes-demo --results results/shapes-demo

``--setting`` adds the same ``cutmix train`` arguments to every run (the search for a
builtin setting where CutMix pays; each setting is its own ``--out``):

    python scripts/shapes_demo.py run --out ~/runs/shapes-1k --setting "--train-samples 1000 --epochs 200 \
        --eval-every 10 --train-eval-samples 1000" --seeds 0,1,2 --slots 2

``collect`` copies each finished run's small files into ``--results`` and prints the table (paired by seed).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runqueue import Job, run_queue, state
from tables_5k import arm_table, copy_finished, load

ROOT = Path(__file__).resolve().parents[1]
ARMS = {"none": ("--mix", "none"), "cutmix": ()}


def plan(seeds: list[int], threads: int, setting: tuple[str, ...] = ()) -> list[Job]:
    return [Job(f"{arm}-s{seed}", (*setting, *args, "--seed", str(seed), "--threads", str(threads), "--no-progress"))
            for seed in seeds for arm, args in ARMS.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["run", "list", "collect"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--setting", default="", help="cutmix train arguments added to every run (one string)")
    parser.add_argument("--results", default=str(ROOT / "results" / "shapes-demo"))
    args = parser.parse_args(argv)
    out = Path(args.out).expanduser().resolve()
    jobs = plan([int(s) for s in args.seeds.split(",") if s], args.threads, tuple(shlex.split(args.setting)))
    if args.action == "list":
        for j in jobs:
            print(f"{state(out / j.name):7s} {j.name}")
        return 0
    if args.action == "run":
        return run_queue(jobs, out, args.slots)
    results = Path(args.results)
    copy_finished(out, results, [j.name for j in jobs])
    runs = load(results)
    epochs = runs[0]["epochs"] if runs else 0
    print(arm_table(runs, list(ARMS), epochs, "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
