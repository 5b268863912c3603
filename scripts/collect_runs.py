#!/usr/bin/env python3
"""Collect ``cutmix train`` run directories into a markdown table: one row per method, seeds pooled.

Runs named ``NAME-sSEED`` are grouped by NAME. Per group: final and best validation top-1 error as mean ± sample
standard deviation over the finished seeds, training time (the sum of the epochs' ``epoch_time_s``: training
steps only, evaluation excluded, the first epoch including torch.compile), time to reach ``--target-acc``
validation accuracy, and throughput. Unfinished runs are listed, not averaged.

    python scripts/collect_runs.py runs/cifar10 --out results/cifar10-gpu.md --bundle results/cifar10-runs.json
    python scripts/collect_runs.py --from-bundle results/cifar10-runs-*.json --out results/cifar10-gpu.md

``--bundle`` writes every run's config, metrics and summary to one small JSON file (checkpoints stay behind), and
``--from-bundle`` reads such files instead of run directories: runs of several sessions merge by name, a finished
run winning over an unfinished copy of itself.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

SEEDED = re.compile(r"^(?P<group>.+)-s(?P<seed>\d+)$")


def read_run(run_dir: Path) -> dict[str, Any]:
    """A run directory as ``{"name", "config", "metrics", "summary"}`` (summary None while unfinished)."""
    metrics_file, summary_file = run_dir / "metrics.jsonl", run_dir / "summary.json"
    metrics = (
        [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
        if metrics_file.is_file()
        else []
    )
    return {
        "name": run_dir.name,
        "config": json.loads((run_dir / "config.json").read_text()),
        "metrics": metrics,
        "summary": json.loads(summary_file.read_text()) if summary_file.is_file() else None,
    }


def read_runs(root: Path) -> list[dict[str, Any]]:
    """Every run directory directly under ``root`` (those holding a config.json), by name."""
    if not root.is_dir():
        raise SystemExit(f"{root} is not a directory of runs")
    return [read_run(d) for d in sorted(root.iterdir()) if (d / "config.json").is_file()]


def group_of(name: str) -> str:
    match = SEEDED.match(name)
    return match["group"] if match else name


def finished(run: dict[str, Any]) -> bool:
    return run["summary"] is not None and len(run["metrics"]) >= run["config"]["epochs"]


def train_seconds(metrics: list[dict[str, Any]]) -> float:
    return sum(m["epoch_time_s"] for m in metrics)


def time_to_error(metrics: list[dict[str, Any]], max_err: float) -> float | None:
    """Training seconds until the first epoch whose validation top-1 error is at most ``max_err`` (None: never)."""
    elapsed = 0.0
    for m in metrics:
        elapsed += m["epoch_time_s"]
        if m["val_top1_err"] <= max_err:
            return elapsed
    return None


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def describe(config: dict[str, Any]) -> str:
    """The regulariser of a run in a few words, from its saved config."""
    mix = config["mix"]
    method = mix["method"]
    if method == "none":
        return "no mixing"
    if method == "cutout":
        return f"Cutout {mix['cutout_size']} px, p={mix['prob']:g}"
    prob = f"p=0→{mix['prob']:g} (linear)" if mix["schedule"] == "linear" else f"p={mix['prob']:g}"
    words = [{"cutmix": "CutMix", "mixup": "Mixup"}.get(method, method), f"α={mix['alpha']:g}", prob]
    if method in ("cutmix", "feature-cutmix", "cutmix+mixup"):
        if mix["box"] == "gaussian":
            words.append(f"centre-Gaussian box (σ={mix['sigma']:g})")
        elif mix["box"] == "fixed":
            words.append(f"fixed box {mix['size']:g}×side")
        if mix["placement"] != "clip":
            words.append(f"placement {mix['placement']}")
    if mix["label"] != "area":
        words.append(f"{mix['label']} label")
    return ", ".join(words)


def summarise(runs: list[dict[str, Any]], target_acc: float) -> dict[str, Any]:
    """One table row for the runs of a group."""
    done = [r for r in runs if finished(r)]
    row: dict[str, Any] = {
        "group": group_of(runs[0]["name"]),
        "what": describe(runs[0]["config"]),
        "seeds": sorted(r["config"]["seed"] for r in done),
        "unfinished": sorted(
            f"{r['name']} ({len(r['metrics'])}/{r['config']['epochs']} epochs)" for r in runs if not finished(r)
        ),
    }
    if not done:
        return row
    final = [100 * r["metrics"][-1]["val_top1_err"] for r in done]
    best = [100 * min(m["val_top1_err"] for m in r["metrics"]) for r in done]
    reach = [time_to_error(r["metrics"], 1 - target_acc) for r in done]
    reached = [t for t in reach if t is not None]
    row.update(
        {
            "epochs": done[0]["config"]["epochs"],
            "final_err": mean_std(final),
            "best_err": mean_std(best),
            "train_s": statistics.fmean(train_seconds(r["metrics"]) for r in done),
            "time_to_target_s": statistics.fmean(reached) if reached else None,
            "reached": len(reached),
            "images_per_s": statistics.fmean(
                statistics.fmean(m["train_images_per_s"] for m in r["metrics"]) for r in done
            ),
        }
    )
    return row


def merge_bundles(bundles: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The runs of several bundles by name (a finished run over an unfinished one, else the later bundle's) and
    their environments (one, or the distinct ones numbered when sessions ran on different machines)."""
    runs: dict[str, dict[str, Any]] = {}
    for bundle in bundles:
        for run in bundle["runs"]:
            kept = runs.get(run["name"])
            if kept is None or finished(run) or not finished(kept):
                runs[run["name"]] = run
    environments = []
    for bundle in bundles:
        if bundle.get("environment") and bundle["environment"] not in environments:
            environments.append(bundle["environment"])
    if len(environments) <= 1:
        return sorted(runs.values(), key=lambda r: r["name"]), environments[0] if environments else {}
    merged = {f"{i + 1}": ", ".join(f"{k} {v}" for k, v in env.items()) for i, env in enumerate(environments)}
    return sorted(runs.values(), key=lambda r: r["name"]), merged


def _pm(value: tuple[float, float | None]) -> str:
    mean, std = value
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def markdown(rows: list[dict[str, Any]], target_acc: float) -> str:
    lines = [
        f"| run | regulariser | seeds | final top-1 err (%) | best top-1 err (%) | train time (s) | "
        f"time to {100 * target_acc:g}% acc (s) | img/s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "final_err" not in r:
            lines.append(f"| {r['group']} | {r['what']} | 0 | – | – | – | – | – |")
            continue
        n = len(r["seeds"])
        reach = "–" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.0f}"
        if r["time_to_target_s"] is not None and r["reached"] < n:
            reach += f" ({r['reached']}/{n} seeds)"
        lines.append(
            f"| {r['group']} | {r['what']} | {n} ({', '.join(map(str, r['seeds']))}) | "
            f"{_pm(r['final_err'])} | {_pm(r['best_err'])} | {r['train_s']:.0f} | {reach} | "
            f"{r['images_per_s']:,.0f} |"
        )
    return "\n".join(lines)


def ordered_groups(runs: list[dict[str, Any]], order: list[str]) -> list[list[dict[str, Any]]]:
    """Runs grouped by name, groups in ``order`` first, then the rest alphabetically."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(group_of(run["name"]), []).append(run)
    rank = {name: i for i, name in enumerate(order)}
    return [groups[g] for g in sorted(groups, key=lambda g: (rank.get(g, len(rank)), g))]


def report(
    runs: list[dict[str, Any]], *, target_acc: float, order: list[str], environment: dict[str, Any], title: str
) -> str:
    """The whole markdown document."""
    rows = [summarise(g, target_acc) for g in ordered_groups(runs, order)]
    out = [f"# {title}", ""]
    if runs:
        c = runs[0]["config"]
        out.append(
            f"Model {c['model']['name']}, {c['epochs']} epochs of batch {c['batch_size']}, lr {c['optim']['lr']:g} "
            f"({c['optim']['schedule']}, {c['optim']['warmup_epochs']:g} warm-up epochs), amp {c['amp']}, "
            f"channels_last {c['channels_last']}, compile {c['compile']}."
        )
    if environment:
        out.append("Environment: " + ", ".join(f"{k} {v}" for k, v in environment.items()) + ".")
    out += [
        "",
        "Errors are on the validation set, mean ± sample standard deviation over seeds; train time sums the "
        "epochs' training steps (evaluation excluded; the first epoch includes compilation).",
        "",
        markdown(rows, target_acc),
        "",
    ]
    unfinished = [u for r in rows for u in r["unfinished"]]
    if unfinished:
        out += [f"Unfinished, not averaged: {', '.join(unfinished)}.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", help="directory whose subdirectories are run directories")
    parser.add_argument("--from-bundle", nargs="+", help="read the runs from JSON bundles instead")
    parser.add_argument("--out", help="write the markdown here (default: print it)")
    parser.add_argument("--bundle", help="write the runs' configs, metrics and summaries to this JSON file")
    parser.add_argument("--target-acc", type=float, default=0.9, help="accuracy for the time-to-accuracy column")
    parser.add_argument("--order", default="", help="comma-separated group names to list first")
    parser.add_argument("--title", default="CIFAR-10: CutMix and baselines")
    args = parser.parse_args(argv)
    if not 0 < args.target_acc < 1:
        parser.error(f"--target-acc must be in (0, 1), got {args.target_acc}")
    if bool(args.root) == bool(args.from_bundle):
        parser.error("give either a directory of runs or --from-bundle FILE")
    if args.from_bundle:
        runs, environment = merge_bundles([json.loads(Path(p).read_text()) for p in args.from_bundle])
    else:
        root = Path(args.root)
        runs = read_runs(root)
        env_file = root / "environment.json"
        environment = json.loads(env_file.read_text()) if env_file.is_file() else {}
    if args.bundle:
        Path(args.bundle).parent.mkdir(parents=True, exist_ok=True)
        Path(args.bundle).write_text(json.dumps({"environment": environment, "runs": runs}, indent=1) + "\n")
    text = report(
        runs,
        target_acc=args.target_acc,
        order=[o for o in args.order.split(",") if o],
        environment=environment,
        title=args.title,
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
