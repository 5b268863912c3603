"""Tables and figures of results/cifar10-5k.md, from the small files of each finished run.

``collect(out, results, names)`` copies ``NAME.metrics.jsonl``, ``NAME.summary.json``, ``NAME.config.json`` (and
``NAME.eval.json`` once ``cutmix eval`` has run) of every finished run directory into ``results``, then
:func:`render` rebuilds ``results/tables.md`` and the figures from those copies alone, so the tables can be remade
from what is committed: ``python scripts/tables_5k.py results/cifar10-5k``. It also rewrites the copies of those
tables in the prose beside the folder (``results/cifar10-5k.md``, :func:`splice`), so the two cannot drift.

Errors are top-1 on the 10 000 test images, in %, mean ± sample sd over seeds. "final" is the last epoch (what a
user gets), "best" the lowest of the evaluated epochs (every ``epochs / 20``; optimistic, as it picks on the
test set). Differences are paired by seed (same seed = same initial weights and data order): mean ± sd of
``arm - reference`` and how many seeds the arm is lower.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cutmix.evaluate.report import mean_sd, table

NAME = re.compile(r"^(?P<method>.+?)(?:-e(?P<epochs>\d+))?-s(?P<seed>\d+)$")
CORE = ("none", "cutmix", "cutmix-p1", "mixup", "cutout")
WHAT = {
    "none": "baseline (crop + flip)",
    "cutmix": "CutMix α 1, p 0.5 (paper's CIFAR recipe)",
    "cutmix-p1": "CutMix α 1, p 1",
    "mixup": "Mixup α 1, p 1",
    "cutout": "Cutout 16 px, p 1",
    "cutmix-gaussian": "CutMix, centre-Gaussian box",
    "cutmix-fixed": "CutMix, fixed 16×16 box (λ = 0.75)",
    "cutmix-onehot": "CutMix, one-hot label (larger area)",
    "cutmix-scheduled": "CutMix, p 0 → 1 linear (scheduled)",
    "cutmix-complete": "CutMix, complete label (0.5 / 0.5)",
    "cutmix-a0.5": "CutMix α 0.5",
    "cutmix-a2": "CutMix α 2",
    "feature-cutmix-layer1": "feature CutMix after stage 1",
    "feature-cutmix-layer2": "feature CutMix after stage 2",
    "feature-cutmix-layer3": "feature CutMix after stage 3",
    "cutmix-per-sample": "CutMix, a box per sample",
}
KINDS = ("metrics.jsonl", "summary.json", "config.json", "eval.json")


def copy_finished(out: Path, results: Path, names: Sequence[str]) -> int:
    """Copy the small files of every finished run ``out/NAME`` to ``results/NAME.KIND``; returns how many runs."""
    results.mkdir(parents=True, exist_ok=True)
    copied = 0
    for name in names:
        run = out / name
        if not (run / "summary.json").is_file():
            continue
        for kind in KINDS:
            if (run / kind).is_file():
                shutil.copyfile(run / kind, results / f"{name}.{kind}")
        copied += 1
    print(f"copied {copied} finished run(s) of {len(names)} into {results}")
    return copied


def collect(out: Path, results: Path, names: Sequence[str]) -> int:
    """Copy the finished runs' small files (:func:`copy_finished`) and rebuild the tables there."""
    copy_finished(out, results, names)
    print(render(results))
    return 0


def load(results: Path) -> list[dict[str, Any]]:
    """Every collected run: name, method, epochs, seed, metrics, summary, config (and eval when present)."""
    runs = []
    for summary in sorted(results.glob("*.summary.json")):
        name = summary.name[: -len(".summary.json")]
        match = NAME.match(name)
        if match is None:
            continue
        metrics = [json.loads(line) for line in (results / f"{name}.metrics.jsonl").read_text().splitlines() if line]
        config = json.loads((results / f"{name}.config.json").read_text())
        evaluated = results / f"{name}.eval.json"
        runs.append({"name": name, "method": match["method"], "epochs": int(match["epochs"] or config["epochs"]),
                     "seed": int(match["seed"]), "metrics": metrics, "summary": json.loads(summary.read_text()),
                     "config": config, "eval": json.loads(evaluated.read_text()) if evaluated.is_file() else None})
    return runs


def _evaluated(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in run["metrics"] if "val_top1_err" in m]


def final_err(run: dict[str, Any]) -> float:
    return _evaluated(run)[-1]["val_top1_err"]


def best_err(run: dict[str, Any]) -> float:
    return min(m["val_top1_err"] for m in _evaluated(run))


def clean_train_err(run: dict[str, Any]) -> float | None:
    return _evaluated(run)[-1].get("train_eval_top1_err")


def batch_train_err(run: dict[str, Any]) -> float:
    """The last epoch's training error on the (augmented, possibly mixed) batches, against the unmixed labels."""
    return run["metrics"][-1]["train_top1_err"]


def wall_minutes(run: dict[str, Any]) -> float:
    return run["summary"]["wall_time_s"] / 60


def pick(runs: list[dict[str, Any]], method: str, epochs: int) -> dict[int, dict[str, Any]]:
    """The runs of one method and budget, by seed."""
    return {r["seed"]: r for r in runs if r["method"] == method and r["epochs"] == epochs}


def paired(arm: dict[int, dict[str, Any]], ref: dict[int, dict[str, Any]], fn=final_err) -> str:
    """``arm - ref`` over the seeds both have: mean ± sd in points, and the seeds where the arm is lower."""
    seeds = sorted(set(arm) & set(ref))
    if not seeds or arm is ref:
        return "–"
    diffs = [fn(arm[s]) - fn(ref[s]) for s in seeds]
    lower = sum(d < 0 for d in diffs)
    return f"{mean_sd(diffs)} ({lower}/{len(seeds)} lower)"


def _row(label: str, by_seed: dict[int, dict[str, Any]], ref: dict[int, dict[str, Any]] | None) -> list[str]:
    rs = [by_seed[s] for s in sorted(by_seed)]
    return [label, ",".join(str(s) for s in sorted(by_seed)), mean_sd([final_err(r) for r in rs]),
            mean_sd([best_err(r) for r in rs]), mean_sd([clean_train_err(r) for r in rs]),
            mean_sd([batch_train_err(r) for r in rs]),
            "–" if ref is None else paired(by_seed, ref),
            f"{statistics.fmean(wall_minutes(r) for r in rs):.0f}"]


HEADER = ["arm", "seeds", "final test err (%)", "best test err (%)", "clean train err (%)",
          "train-batch err (%)", "final vs reference (pts)", "wall (min)"]


# Variants outside the paper's ablations (no claim to test).
NOT_IN_PAPER = ("none", "cutmix-per-sample")


def verdict(arm: dict[int, dict[str, Any]], ref: dict[int, dict[str, Any]]) -> str:
    """Whether the paper's ablation ordering (no variant beats the original CutMix) holds for one variant.

    Over the paired seeds: "holds" when the variant is behind on every seed by more than the pairs' sd on average,
    "does not hold" when it is ahead the same way, "within spread" otherwise; one seed decides nothing.
    """
    seeds = sorted(set(arm) & set(ref))
    if len(seeds) < 2:
        return f"{len(seeds)} paired seed: undecided"
    diffs = [final_err(arm[s]) - final_err(ref[s]) for s in seeds]
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    if all(d > 0 for d in diffs) and mean > sd:
        return "holds (CutMix ahead)"
    if all(d < 0 for d in diffs) and -mean > sd:
        return "does not hold (variant ahead)"
    return "within spread"


def arm_table(runs: list[dict[str, Any]], methods: Sequence[str], epochs: int, reference: str,
              verdicts: bool = False) -> str:
    """One row per method with finished runs; ``verdicts`` adds the paper-ordering column of :func:`verdict`."""
    ref = pick(runs, reference, epochs)
    rows = []
    for m in methods:
        by_seed = pick(runs, m, epochs)
        if not by_seed:
            continue
        row = _row(f"{m}: {WHAT.get(m, m)}", by_seed, None if m == reference else ref)
        if verdicts:
            row.append("–" if m == reference or m in NOT_IN_PAPER else verdict(by_seed, ref))
        rows.append(row)
    header = [*HEADER, "paper: no variant beats CutMix"] if verdicts else HEADER
    return table(header, rows) if rows else "(no finished runs yet)"


def crossover_table(runs: list[dict[str, Any]]) -> str:
    rows = []
    for epochs in (25, 50, 100, 200):
        none, mix = pick(runs, "none", epochs), pick(runs, "cutmix", epochs)
        if not none and not mix:
            continue
        seeds = sorted(set(none) & set(mix))
        if seeds:  # every column over the paired seeds, which the second column names
            none, mix = {s: none[s] for s in seeds}, {s: mix[s] for s in seeds}
        rows.append([str(epochs), ",".join(map(str, seeds)) or "–",
                     mean_sd([final_err(r) for r in none.values()]), mean_sd([final_err(r) for r in mix.values()]),
                     paired(mix, none), mean_sd([clean_train_err(r) for r in none.values()]),
                     mean_sd([clean_train_err(r) for r in mix.values()]),
                     f"{statistics.fmean(wall_minutes(r) for r in [*none.values(), *mix.values()]):.0f}"])
    header = ["epochs", "paired seeds", "none: final err (%)", "CutMix: final err (%)", "CutMix − none (pts)",
              "none: clean train err (%)", "CutMix: clean train err (%)", "wall per run (min)"]
    return table(header, rows) if rows else "(no finished runs yet)"


def figures(runs: list[dict[str, Any]], results: Path) -> list[str]:
    """Draw the study's figures into ``results`` (those with runs to show); their file names."""
    try:
        from cutmix.viz._mpl import pyplot, save
    except ImportError:
        return []
    plt = pyplot()
    made = []
    for name, draw in (("core-curves.png", _core_figure), ("crossover.png", _crossover_figure),
                       ("ablations.png", _ablation_figure)):
        fig = draw(runs, plt)
        if fig is not None:
            made.append(str(save(fig, results / name).name))
    return made


def _core_figure(runs: list[dict[str, Any]], plt: Any) -> Any:
    core = {m: pick(runs, m, 200) for m in CORE}
    if not any(core.values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, by_seed in core.items():
        if not by_seed:
            continue
        epochs = [m["epoch"] for m in _evaluated(next(iter(by_seed.values())))]
        curves = [[m["val_top1_err"] * 100 for m in _evaluated(r)] for r in by_seed.values()]
        n = min(len(c) for c in curves)
        ax.plot(epochs[:n], [statistics.fmean(c[i] for c in curves) for i in range(n)],
                label=f"{method} ({len(curves)} seeds)", marker=".")
    ax.set(xlabel="epoch", ylabel="test top-1 error (%), mean over seeds", ylim=(15, 50),
           title="CIFAR-10, 5 000 training images, ResNet-20, 200 epochs")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def _crossover_figure(runs: list[dict[str, Any]], plt: Any) -> Any:
    points = {m: [(e, pick(runs, m, e)) for e in (25, 50, 100, 200)] for m in ("none", "cutmix")}
    points = {m: [(e, rs) for e, rs in p if rs] for m, p in points.items()}
    if not any(points.values()):
        return None
    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(10, 4))
    for method, at in points.items():
        if not at:
            continue
        errs = [[final_err(r) * 100 for r in rs.values()] for _, rs in at]
        means = [statistics.fmean(v) for v in errs]
        sds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in errs]
        walls = [statistics.fmean(wall_minutes(r) for r in rs.values()) for _, rs in at]
        ax_e.errorbar([e for e, _ in at], means, yerr=sds, marker="o", capsize=3, label=method)
        ax_t.errorbar(walls, means, yerr=sds, marker="o", capsize=3, label=method)
    ax_e.set(xscale="log", xlabel="epochs (each its own cosine schedule)", ylabel="final test top-1 error (%)")
    ax_t.set(xscale="log", xlabel="wall-clock per run (min, 1 CPU thread)", ylabel="final test top-1 error (%)")
    for ax in (ax_e, ax_t):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Where CutMix starts to pay: none vs CutMix by budget (mean ± sd over seeds)")
    return fig


def _ablation_figure(runs: list[dict[str, Any]], plt: Any) -> Any:
    """Each variant's final error per seed (dots, mean as a bar) against CutMix's and the baseline's at 100 epochs."""
    variants = [(m, pick(runs, m, 100)) for m in WHAT if m not in CORE]
    variants = [(m, rs) for m, rs in variants if rs]
    if not variants:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(variants) + 1.8))
    for colour, ref in (("tab:blue", "cutmix"), ("tab:grey", "none")):
        errs = [final_err(r) * 100 for r in pick(runs, ref, 100).values()]
        if errs:
            mean, sd = statistics.fmean(errs), statistics.stdev(errs) if len(errs) > 1 else 0.0
            ax.axvspan(mean - sd, mean + sd, color=colour, alpha=0.2, lw=0)
            ax.axvline(mean, color=colour, lw=1, label=f"{ref}, {len(errs)} seeds: mean ± sd")
    for y, (_, by_seed) in enumerate(variants):
        errs = [final_err(r) * 100 for r in by_seed.values()]
        ax.scatter(errs, [y] * len(errs), color="black", s=16, zorder=3)
        ax.plot([statistics.fmean(errs)] * 2, [y - 0.3, y + 0.3], color="black", lw=2)
    ax.set_yticks(range(len(variants)), [f"{m} ({len(rs)} seed{'s' * (len(rs) > 1)})" for m, rs in variants])
    ax.invert_yaxis()
    ax.set(xlabel="final test top-1 error (%): one dot per seed, bar = mean",
           title="Ablations at 100 epochs (CIFAR-10, 5 000 images, ResNet-20)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _eval_values(e: dict[str, Any]) -> list[float]:
    """What the eval suite measured for one run, in the columns of :func:`eval_table` (fractions; NLL in nats)."""
    r, sets = e["robust"], e["ood"]["sets"].values()
    occlusion = {where: dict(zip(o["sizes"], o["accuracy"], strict=True)) for where, o in r["occlusion"].items()}
    neither = {how: m["neither_rate"][min(range(len(m["lam"])), key=lambda i: abs(m["lam"][i] - 0.5))]
               for how, m in r["in_between"].items()}  # CutMix's λ comes from box sides: 0.527 (22 of 32 px)
    return [e["cls"]["top1_err"], e["calib"]["ece"], e["calib"]["nll"], r["fgsm"]["accuracy"][0],
            occlusion["center"][16], occlusion["boundary"][16], neither["mixup"], neither["cutmix"],
            statistics.fmean(o["auroc"] for o in sets), statistics.fmean(o["tnr_at_tpr95"] for o in sets)]


EVAL_HEADER = ["arm", "seeds", "test err (%)", "ECE (%)", "NLL", "FGSM ε 8/255 acc (%)",
               "occlusion 16 px acc, centre (%)", "occlusion 16 px acc, boundary (%)",
               "in-between Mixup λ 0.5: neither class (%)", "in-between CutMix λ 0.53: neither class (%)",
               "OOD AUROC, mean of 4 sets (%)", "OOD TNR at TPR 95, mean of 4 sets (%)"]


def _nats(values: Sequence[float]) -> str:
    return mean_sd([v / 100 for v in values], digits=3)  # mean_sd prints percent: undo its scaling for NLL


def eval_table(runs: list[dict[str, Any]], methods: Sequence[str], epochs: int) -> str:
    """``cutmix eval`` of the last checkpoints: mean ± sd over the seeds that have an eval.json."""
    rows = []
    for m in methods:
        done = {seed: r["eval"] for seed, r in pick(runs, m, epochs).items() if r.get("eval")}
        if done:
            columns = zip(*(_eval_values(done[s]) for s in sorted(done)), strict=True)
            rows.append([m, ",".join(map(str, sorted(done))),
                         *(_nats(c) if i == 2 else mean_sd(list(c)) for i, c in enumerate(columns))])
    return table(EVAL_HEADER, rows) if rows else "(no evaluated runs yet)"


def render(results: Path) -> str:
    runs = load(results)
    ablation_methods = ["none", "cutmix", *(m for m in WHAT if m not in CORE)]
    text = "\n\n".join([
        "<!-- made by: python scripts/tables_5k.py results/cifar10-5k (from the files in this folder) -->",
        "## Core arms, 200 epochs (reference: none)",
        arm_table(runs, CORE, 200, "none"),
        "## Core arms against CutMix, 200 epochs (reference: CutMix α 1, p 0.5, paired by seed)",
        arm_table(runs, CORE, 200, "cutmix"),
        "## Evaluation of the core arms' last checkpoints (cutmix eval --ood shapes)",
        eval_table(runs, CORE, 200),
        "## Crossover: none vs CutMix by budget",
        crossover_table(runs),
        "## Mixup against CutMix, 100 epochs (reference: CutMix α 1, p 0.5, paired by seed)",
        arm_table(runs, ("none", "cutmix", "mixup"), 100, "cutmix"),
        "## Ablations, 100 epochs (reference: CutMix α 1, p 0.5 at 100 epochs)",
        arm_table(runs, ablation_methods, 100, "cutmix", verdicts=True),
        "Figures: " + (", ".join(figures(runs, results)) or "none yet"),
    ]) + "\n"
    (results / "tables.md").write_text(text)
    report = results.with_suffix(".md")  # results/cifar10-5k -> results/cifar10-5k.md, the prose around the tables
    if report.is_file():
        report.write_text(splice(report.read_text(), text))
    return text


def _sections(text: str) -> dict[str, list[str]]:
    """Each ``## `` heading's table (its lines starting with ``|``), in order of the text."""
    tables: dict[str, list[str]] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line
            tables[heading] = []
        elif heading is not None and line.startswith("|"):
            tables[heading].append(line)
    return tables


def splice(report: str, tables_text: str) -> str:
    """``report`` with the table under each heading it shares with ``tables_text`` replaced by the fresh one.

    Every line of such a section that starts with ``|`` counts as its table: keep one table per shared section.

    The prose file quotes the tables; a hand copy goes stale as seeds land (it did), so ``render`` rewrites the
    copies. A section the report lacks is not added: where it goes and what it says is the writer's choice.
    """
    fresh = _sections(tables_text)
    out: list[str] = []
    written: set[str] = set()
    heading = None
    for line in report.splitlines(keepends=True):
        if line.startswith("## "):
            heading = line.rstrip("\n")
        elif heading in fresh and line.startswith("|"):
            if heading not in written:  # the whole fresh table at the old one's first row, the old rows dropped
                out.extend(row + "\n" for row in fresh[heading])
                written.add(heading)
            continue
        out.append(line)
    return "".join(out)


if __name__ == "__main__":
    print(render(Path(sys.argv[1] if len(sys.argv) > 1 else "results/cifar10-5k")))
