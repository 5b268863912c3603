#!/usr/bin/env python3
"""The low-data CIFAR-10 study of results/cifar10-5k.md: every run of it, resumable, on a CPU.

Data: the shared JPEG zips; 5 000 training images (500 per class, ``--train-samples 5000``: a stratified subset
drawn with seed 0, the same for every run) and the full 10 000 test images. Recipe: ResNet-20, random crop (pad 4)
and flip, SGD + Nesterov, lr 0.1 cosine, weight decay 5e-4, batch 128, one thread per run; 2 000 of the training
images (200 per class) are also evaluated unaugmented and unmixed, for the train/test gap. Evaluation every
``epochs / 20`` epochs and after the last.

Groups, trained in this order:

- ``core``: none, CutMix (alpha 1, p 0.5: the paper's CIFAR recipe), CutMix p 1, Mixup (alpha 1, p 1), Cutout
  (16 px, p 1) at 200 epochs, seeds 0, 1, 2 (seed-major, so a seed's table lands whole);
- ``crossover``: none and CutMix at 100, 50 and 25 epochs, each its own cosine schedule, seeds 0 and 1;
- ``ablations``: at 100 epochs, seeds 0 and 1: the paper's CIFAR-100 CutMix variants (centre-Gaussian box, fixed 16x16
  box, one-hot label, scheduled probability, complete label), alpha 0.5 and 2, feature-level CutMix after each
  stage, per-sample boxes. Their reference is the crossover's 100-epoch none / CutMix pair;
- ``seeds``: none and CutMix at 200 epochs, seeds 3 and 4 (the headline pair on five seeds);
- ``mixup-seeds``: Mixup at 200 epochs, seeds 3 and 4 (CutMix against Mixup on five seeds);
- ``crossover-seeds``: none and CutMix at 50 and 25 epochs, seeds 2 and 3 (the crossover on four seeds);
- ``crossover-100-seeds``: none and CutMix at 100 epochs, seeds 2 and 3 (the 100-epoch pair, the ablations'
  reference, on four seeds);
- ``crossover-more-seeds``: none and CutMix at 50 and 25 epochs, seeds 4 and 5 (the short budgets on six seeds);
- ``crossover-100-more-seeds``: none and CutMix at 100 epochs, seeds 4 and 5 (the 100-epoch pair on six seeds);
- ``mixup-100``: Mixup at 100 epochs, seeds 0 to 3 (CutMix against Mixup where CutMix's gain is established).

    python scripts/cifar10_5k.py run --out ~/runs/cifar10-5k --slots 2     # everything, two runs at a time
    python scripts/cifar10_5k.py run --out ~/runs/cifar10-5k --groups core
    python scripts/cifar10_5k.py list --out ~/runs/cifar10-5k
    python scripts/cifar10_5k.py run --out ~/runs/cifar10-5k --only cutmix-onehot-e100-s1,cutmix-fixed-e100-s1
    python scripts/cifar10_5k.py collect --out ~/runs/cifar10-5k --results results/cifar10-5k
    touch ~/runs/cifar10-5k/.drain      # while running: finish the runs in progress, start no more

Run directories are named ``METHOD-sSEED`` at 200 epochs and ``METHOD-eEPOCHS-sSEED`` otherwise. ``collect``
copies each finished run's small files (metrics, summary, config, curves, eval.json) into ``--results`` and
writes the tables of results/cifar10-5k.md there (see ``scripts/tables_5k.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runqueue import DATA_DIRS, Job, find_data, run_queue, state

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ("--train-samples", "5000", "--train-eval-samples", "2000", "--model", "resnet20", "--augment",
          "crop-flip", "--batch-size", "128", "--lr", "0.1", "--lr-schedule", "cosine", "--weight-decay", "5e-4",
          "--threads", "1", "--no-progress")
ARMS: dict[str, tuple[str, ...]] = {
    "none": ("--mix", "none"),
    "cutmix": ("--mix", "cutmix", "--alpha", "1", "--prob", "0.5"),
    "cutmix-p1": ("--mix", "cutmix", "--alpha", "1", "--prob", "1"),
    "mixup": ("--mix", "mixup", "--alpha", "1", "--prob", "1"),
    "cutout": ("--mix", "cutout", "--cutout-size", "16", "--prob", "1"),
}
CUTMIX = ARMS["cutmix"]
VARIANTS: dict[str, tuple[str, ...]] = {
    "cutmix-gaussian": (*CUTMIX, "--box", "gaussian"),
    "cutmix-fixed": (*CUTMIX, "--box", "fixed", "--set", "mix.size=0.5", "--placement", "inside"),
    "cutmix-onehot": (*CUTMIX, "--label", "onehot"),
    "cutmix-scheduled": ("--mix", "cutmix", "--alpha", "1", "--prob", "1", "--schedule", "linear"),
    "cutmix-complete": (*CUTMIX, "--label", "complete"),
    "cutmix-a0.5": ("--mix", "cutmix", "--alpha", "0.5", "--prob", "0.5"),
    "cutmix-a2": ("--mix", "cutmix", "--alpha", "2", "--prob", "0.5"),
    **{f"feature-cutmix-layer{i}": ("--mix", "feature-cutmix", "--alpha", "1", "--prob", "0.5", "--layers",
                                    f"layer{i}") for i in (1, 2, 3)},
    "cutmix-per-sample": (*CUTMIX, "--per-sample"),
}
GROUPS = ("core", "crossover", "ablations", "seeds", "mixup-seeds", "crossover-seeds", "crossover-100-seeds",
          "crossover-more-seeds", "crossover-100-more-seeds", "mixup-100")


def run_dir_name(method: str, epochs: int, seed: int) -> str:
    return f"{method}-s{seed}" if epochs == 200 else f"{method}-e{epochs}-s{seed}"


def job(method: str, settings: tuple[str, ...], epochs: int, seed: int, data: Path) -> Job:
    args = ("--data", str(data / "cifar10-train.zip"), "--val-data", str(data / "cifar10-test.zip"), *RECIPE,
            *settings, "--epochs", str(epochs), "--eval-every", str(max(1, epochs // 20)), "--seed", str(seed))
    return Job(run_dir_name(method, epochs, seed), args)


def plan(data: Path, groups: tuple[str, ...] = GROUPS) -> list[Job]:
    """Every run of the study in training order (see the module docstring)."""
    jobs: list[Job] = []
    if "core" in groups:
        jobs += [job(m, s, 200, seed, data) for seed in (0, 1, 2) for m, s in ARMS.items()]
    if "crossover" in groups:
        jobs += [job(m, ARMS[m], e, seed, data) for e in (100, 50, 25) for seed in (0, 1) for m in ("none", "cutmix")]
    if "ablations" in groups:
        jobs += [job(m, s, 100, seed, data) for seed in (0, 1) for m, s in VARIANTS.items()]
    if "seeds" in groups:
        jobs += [job(m, ARMS[m], 200, seed, data) for seed in (3, 4) for m in ("none", "cutmix")]
    if "mixup-seeds" in groups:
        jobs += [job("mixup", ARMS["mixup"], 200, seed, data) for seed in (3, 4)]
    if "crossover-seeds" in groups:
        jobs += [job(m, ARMS[m], e, seed, data) for seed in (2, 3) for e in (50, 25) for m in ("none", "cutmix")]
    if "crossover-100-seeds" in groups:
        jobs += [job(m, ARMS[m], 100, seed, data) for seed in (2, 3) for m in ("none", "cutmix")]
    if "crossover-more-seeds" in groups:
        jobs += [job(m, ARMS[m], e, seed, data) for e in (50, 25) for seed in (4, 5) for m in ("none", "cutmix")]
    if "crossover-100-more-seeds" in groups:
        jobs += [job(m, ARMS[m], 100, seed, data) for seed in (4, 5) for m in ("none", "cutmix")]
    if "mixup-100" in groups:
        jobs += [job("mixup", ARMS["mixup"], 100, seed, data) for seed in (0, 1, 2, 3)]
    return jobs


def run_names(parser: argparse.ArgumentParser, flag: str, value: str, jobs: list[Job], groups: tuple[str, ...]
              ) -> list[str]:
    """The run names of a comma list, each checked against the planned jobs (a typo would silently run nothing)."""
    names = [n for n in value.split(",") if n]
    unknown = sorted(set(names) - {j.name for j in jobs})
    if unknown:
        parser.error(f"{flag}: no run named {', '.join(unknown)} in the groups {', '.join(groups)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["run", "list", "collect"])
    parser.add_argument("--out", required=True, help="parent of the run directories (outside the checkout)")
    parser.add_argument("--data", help=f"directory of the zips (default: the first of {', '.join(DATA_DIRS)})")
    parser.add_argument("--groups", default=",".join(GROUPS), help=f"comma list of {', '.join(GROUPS)}")
    parser.add_argument("--slots", type=int, default=2, help="runs at a time (OUT/.slots overrides it while running)")
    parser.add_argument("--first", default="", help="comma list of run names to train before the rest, in this order "
                        "(to land what matters most when time is short)")
    parser.add_argument("--only", default="", help="comma list of run names: run, list or collect just these, in "
                        "this order (e.g. the runs a fresh machine still lacks)")
    parser.add_argument("--results", default=str(ROOT / "results" / "cifar10-5k"), help="collect: where to copy")
    args = parser.parse_args(argv)
    groups = tuple(g for g in args.groups.split(",") if g)
    if set(groups) - set(GROUPS):
        parser.error(f"--groups: unknown {', '.join(sorted(set(groups) - set(GROUPS)))}; known: {', '.join(GROUPS)}")
    out = Path(args.out).expanduser().resolve()
    jobs = plan(find_data(args.data) if args.action == "run" else Path("DATA"), groups)
    first = run_names(parser, "--first", args.first, jobs, groups)
    jobs.sort(key=lambda j: first.index(j.name) if j.name in first else len(first))
    only = run_names(parser, "--only", args.only, jobs, groups)
    if only:
        jobs = sorted((j for j in jobs if j.name in only), key=lambda j: only.index(j.name))
    if args.action == "list":
        for j in jobs:
            print(f"{state(out / j.name):7s} {j.name}")
        return 0
    if args.action == "collect":
        from tables_5k import collect

        return collect(out, Path(args.results), [j.name for j in jobs])
    return run_queue(jobs, out, args.slots)


if __name__ == "__main__":
    raise SystemExit(main())
