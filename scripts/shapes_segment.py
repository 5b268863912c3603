"""The builtin-shapes segmentation study of results/shapes-segment.md: none vs CutMix vs Cutout vs Mixup on masks.

    python scripts/shapes_segment.py run --out ~/runs/shapes-segment --slots 2    # 8 runs of ~7-9 min, two at a time
    python scripts/shapes_segment.py collect --out ~/runs/shapes-segment          # small files + tables.md

Every run trains ``cutmix train --task segment`` (ResNet-20 trunk + FCN head) on the same 500 generated training
images (4 shapes + background, 32 px, ignore index 255 on mixed border pixels) for 160 epochs and evaluates 1 000
validation images; the seed changes the initial weights, the data order and the draws. mIoU is the mean over the 5
classes of the validation confusion matrix, in %, mean ± sample sd over seeds; "clean train" is mIoU on the 500
training images unaugmented and unmixed (how far the model overfits).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from runqueue import Job, run_queue
from tables_5k import copy_finished, load, pick

from cutmix.evaluate.report import mean_sd, table

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ("--task", "segment", "--set", "data.num_classes=4", "--train-samples", "500", "--val-samples", "1000",
          "--train-eval-samples", "500", "--batch-size", "64", "--epochs", "160", "--eval-every", "16",
          "--threads", "1", "--no-progress")
ARMS: dict[str, tuple[str, ...]] = {
    "none": ("--mix", "none"),
    "cutmix": ("--mix", "cutmix", "--alpha", "1", "--prob", "0.5"),
    "cutout": ("--mix", "cutout", "--cutout-size", "16", "--prob", "1"),
    "mixup": ("--mix", "mixup", "--alpha", "1", "--prob", "1"),
}
WHAT = {"none": "baseline (crop + flip)", "cutmix": "CutMix α 1, p 0.5 (mask pasted with the pixels)",
        "cutout": "Cutout 16 px, p 1 (erased pixels ignored)", "mixup": "Mixup α 1, p 1 (λ-weighted CE of both masks)"}
SEEDS = (0, 1)
EPOCHS = int(RECIPE[RECIPE.index("--epochs") + 1])


LONG = 480  # a second budget, 3x the steps, for none and CutMix only: does CutMix catch up once the baseline overfits?
LONG_SEEDS = (0, 1)


def plan(groups: tuple[str, ...] = ("main", "long")) -> list[Job]:
    jobs = []
    if "main" in groups:
        jobs += [Job(f"{m}-s{seed}", (*RECIPE, *args, "--seed", str(seed)))
                 for seed in SEEDS for m, args in ARMS.items()]
    if "long" in groups:
        longer = (*RECIPE, "--epochs", str(LONG), "--eval-every", str(LONG // 10))  # later flags win
        jobs += [Job(f"{m}-e{LONG}-s{seed}", (*longer, *ARMS[m], "--seed", str(seed)))
                 for seed in LONG_SEEDS for m in ("none", "cutmix")]
    return jobs


def _final(run: dict[str, Any], key: str) -> float:
    """The last evaluated value of ``key`` (a fraction; :func:`mean_sd` prints percent)."""
    return [m for m in run["metrics"] if key in m][-1][key]


def _gain(arm: dict[int, dict[str, Any]], ref: dict[int, dict[str, Any]]) -> str:
    """Final val mIoU of the arm minus the baseline's, paired by seed: mean ± sd, and the seeds where it is higher."""
    seeds = sorted(set(arm) & set(ref))
    if not seeds:
        return "–"
    diffs = [_final(arm[s], "val_miou") - _final(ref[s], "val_miou") for s in seeds]
    return f"{mean_sd(diffs)} ({sum(d > 0 for d in diffs)}/{len(seeds)} higher)"


def render(results: Path) -> str:
    """The study's tables (one per budget) from the copied files alone."""
    runs = load(results)
    text = "\n\n".join(f"### {epochs} epochs\n\n{_table(runs, epochs)}" for epochs in (EPOCHS, LONG)
                         if pick(runs, "none", epochs))
    (results / "tables.md").write_text(text + "\n")
    from cutmix.viz.curves import plot_runs

    plot_runs({r["name"]: r["metrics"] for r in sorted(runs, key=lambda r: r["name"]) if r["epochs"] == EPOCHS},
              results / "miou.png", metric="val_miou", title=f"shapes segmentation, {EPOCHS} epochs: val mIoU")
    return text + "\n\nFigure: miou.png"


def _table(runs: list[dict[str, Any]], epochs: int) -> str:
    ref = pick(runs, "none", epochs)
    rows = []
    for method in ARMS:
        by_seed = pick(runs, method, epochs)
        if not by_seed:
            continue
        rs = [by_seed[s] for s in sorted(by_seed)]
        rows.append([f"{method}: {WHAT[method]}", ",".join(map(str, sorted(by_seed))),
                     mean_sd([_final(r, "val_miou") for r in rs]),
                     mean_sd([max(m["val_miou"] for m in r["metrics"] if "val_miou" in m) for r in rs]),
                     mean_sd([_final(r, "train_eval_miou") for r in rs]),
                     mean_sd([_final(r, "val_pixel_err") for r in rs]),
                     "–" if method == "none" else _gain(by_seed, ref),
                     f"{sum(r['summary']['wall_time_s'] for r in rs) / len(rs) / 60:.1f}"])
    header = ["arm", "seeds", "final val mIoU (%)", "best val mIoU (%)", "clean train mIoU (%)",
              "final val pixel err (%)", "final mIoU vs none (pts, paired)", "wall (min)"]
    return table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["run", "collect"])
    parser.add_argument("--out", required=True, help="parent of the run directories (outside the checkout)")
    parser.add_argument("--groups", default="main,long", help="comma list of main (4 arms x 2 seeds, 160 epochs), "
                        "long (none and CutMix, 480 epochs)")
    parser.add_argument("--slots", type=int, default=1, help="runs at a time (OUT/.slots overrides it while running)")
    parser.add_argument("--results", default=str(ROOT / "results" / "shapes-segment"), help="collect: where to copy")
    args = parser.parse_args(argv)
    out = Path(args.out).expanduser().resolve()
    jobs = plan(tuple(g for g in args.groups.split(",") if g))
    if args.action == "collect":
        copy_finished(out, Path(args.results), [j.name for j in jobs])
        print(render(Path(args.results)))
        return 0
    return run_queue(jobs, out, args.slots)


if __name__ == "__main__":
    raise SystemExit(main())
