"""`cutmix report`: several evaluated runs side by side, in the layout of the paper's tables, plus overlaid curves.

Reads each run's ``eval.json`` (written by ``cutmix eval``) and ``metrics.jsonl``; writes ``report.md`` and the
figures next to it. A run that lacks a suite shows "–" in that table instead of failing the whole report.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DASH = "–"


def load_eval(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``eval.json``, with its training metrics attached under ``"metrics"``."""
    run_dir = Path(run_dir)
    path = run_dir / "eval.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no eval.json: run `cutmix eval {run_dir}` first")
    result = json.loads(path.read_text())
    metrics = run_dir / "metrics.jsonl"
    result["metrics"] = ([json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
                         if metrics.is_file() else [])
    return result


def label(result: dict[str, Any]) -> str:
    """What a row is called: the run's directory name."""
    return str(result.get("run", "?"))


def pct(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{100 * value:.{digits}f}"


def num(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def get(result: dict[str, Any], *keys: str | int) -> Any:
    """``result[k0][k1]...`` or None where any level is missing."""
    value: Any = result
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def mean(values: Sequence[float] | None) -> float | None:
    return None if not values else sum(values) / len(values)


def mean_sd(values: Sequence[float | None], digits: int = 2) -> str:
    """``mean ± sd`` in percent over the runs that have the value (sample sd; just the mean for one run)."""
    present = [v for v in values if v is not None]
    if not present:
        return DASH
    m = f"{100 * statistics.fmean(present):.{digits}f}"
    return m if len(present) == 1 else f"{m} ± {100 * statistics.stdev(present):.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def method_of(result: dict[str, Any]) -> str:
    """The regulariser in words, as the paper's tables name them."""
    mix = result.get("mix") or {}
    method = mix.get("method", "?")
    if method == "none":
        return "baseline"
    if method == "cutout":
        return f"Cutout ({mix.get('cutout_size')} px, p={mix.get('prob')})"
    if method == "mixup":
        return f"Mixup (α={mix.get('alpha')}, p={mix.get('prob')})"
    if method == "cutmix":
        variants = [v for v, default in (("box", "uniform"), ("label", "area"), ("schedule", "constant"))
                    if mix.get(v, default) != default]
        extra = "".join(f", {v}={mix[v]}" for v in variants) + (", per-sample" if mix.get("per_sample") else "")
        return f"CutMix (α={mix.get('alpha')}, p={mix.get('prob')}{extra})"
    return method


def best_epoch_err(result: dict[str, Any]) -> float | None:
    """The lowest validation top-1 error of the run's per-epoch log (None without one)."""
    return min((m["val_top1_err"] for m in result["metrics"] if "val_top1_err" in m), default=None)


def first_fgsm_err(result: dict[str, Any]) -> float | None:
    """Top-1 error under FGSM at the first ε evaluated (None without the robustness suite)."""
    accuracy = get(result, "robust", "fgsm", "accuracy", 0)
    return None if accuracy is None else 1 - accuracy


def classification_table(results: Sequence[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        rows.append([label(r), method_of(r), pct(get(r, "cls", "top1_err")), pct(get(r, "cls", "top5_err")),
                     pct(best_epoch_err(r)), pct(get(r, "calib", "ece")), pct(get(r, "calib", "mean_confidence")),
                     pct(get(r, "calib", "overconfidence"))])
    return table(["run", "method", "top-1 err (%)", "top-5 err (%)", "best epoch top-1 err (%)", "ECE (%)",
                  "mean confidence (%)", "over-confidence (pts)"], rows)


def localization_table(results: Sequence[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        loc = r.get("loc") or {}
        rows.append([label(r), method_of(r), pct(loc.get("top1_loc_acc")), pct(loc.get("gt_known_loc_acc")),
                     num(loc.get("mean_iou")), num(get(loc, "best", "threshold"), 2),
                     pct(get(loc, "best", "top1_loc_acc"))])
    threshold = next((get(r, "loc", "threshold") for r in results if get(r, "loc", "threshold") is not None), None)
    return table(["run", "method", f"top-1 loc acc (%) @ {num(threshold, 2)}·max", "GT-known loc acc (%)",
                  "mean IoU", "best threshold", "top-1 loc acc at best (%)"], rows)


def robustness_table(results: Sequence[dict[str, Any]]) -> str:
    epsilons = next((get(r, "robust", "fgsm", "epsilons") for r in results if get(r, "robust", "fgsm")), []) or []
    rows = []
    for r in results:
        fgsm = get(r, "robust", "fgsm", "accuracy") or [None] * len(epsilons)
        clean = get(r, "robust", "clean_accuracy")
        rows.append([label(r), method_of(r), pct(None if clean is None else 1 - clean)]
                    + [pct(None if a is None else 1 - a) for a in fgsm]
                    + [pct(mean(get(r, "robust", "occlusion", mode, "accuracy"))) for mode in ("center", "boundary")]
                    + [pct(mean(get(r, "robust", "in_between", m, "neither_rate"))) for m in ("mixup", "cutmix")])
    fgsm_headers = [f"FGSM ε={255 * e:.0f}/255 top-1 err (%)" for e in epsilons]
    return table(["run", "method", "clean top-1 err (%)", *fgsm_headers, "centre occlusion acc (%, mean over sizes)",
                  "boundary occlusion acc (%, mean)", "in-between Mixup: neither rate (%, mean)",
                  "in-between CutMix: neither rate (%, mean)"], rows)


def ood_table(results: Sequence[dict[str, Any]]) -> str:
    sets: list[str] = []
    for r in results:
        sets += [s for s in (get(r, "ood", "sets") or {}) if s not in sets]
    rows = []
    for r in results:
        for s in [*sets, "mean"]:
            m = get(r, "ood", "average") if s == "mean" else get(r, "ood", "sets", s)
            m = m or {}
            rows.append([label(r), method_of(r), s, pct(m.get("tnr_at_tpr95"), 1), pct(m.get("auroc"), 1),
                         pct(m.get("aupr_in"), 1), pct(m.get("aupr_out"), 1), pct(m.get("detection_acc"), 1)])
    return table(["run", "method", "OOD set", "TNR at TPR95 (%)", "AUROC (%)", "AUPR in (%)", "AUPR out (%)",
                  "detection acc (%)"], rows)


SUMMARY_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], float | None]]] = [
    ("top-1 err (%)", lambda r: get(r, "cls", "top1_err")),
    ("best epoch top-1 err (%)", best_epoch_err),
    ("ECE (%)", lambda r: get(r, "calib", "ece")),
    ("top-1 loc acc (%), best threshold", lambda r: get(r, "loc", "best", "top1_loc_acc")),
    ("FGSM top-1 err (%), first ε", first_fgsm_err),
    ("centre occlusion acc (%)", lambda r: mean(get(r, "robust", "occlusion", "center", "accuracy"))),
    ("in-between CutMix: neither (%)", lambda r: mean(get(r, "robust", "in_between", "cutmix", "neither_rate"))),
    ("OOD mean TNR at TPR95 (%)", lambda r: get(r, "ood", "average", "tnr_at_tpr95")),
    ("OOD mean AUROC (%)", lambda r: get(r, "ood", "average", "auroc")),
]


def summary_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per regulariser: mean ± sd over its runs (seeds), so a multi-seed study reads like the paper's tables.

    Runs are grouped by what ``method_of`` says (the regulariser and its settings), in order of first appearance.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(method_of(r), []).append(r)
    rows = [[method, str(len(rs))] + [mean_sd([f(r) for r in rs]) for _, f in SUMMARY_COLUMNS]
            for method, rs in groups.items()]
    return table(["method", "runs", *(name for name, _ in SUMMARY_COLUMNS)], rows)


def _figures(results: Sequence[dict[str, Any]], out: Path) -> dict[str, Path]:
    """Overlaid curves of every run: validation error, occlusion, in-between-class, reliability."""
    from cutmix.viz._mpl import group_styles
    from cutmix.viz.curves import plot_runs
    from cutmix.viz.metrics import plot_reliability
    from cutmix.viz.robustness import ROBUST_FIGURES, plot_curves_by_run

    names = [label(r) for r in results]
    styles = group_styles({n: method_of(r) for n, r in zip(names, results, strict=True)})
    made: dict[str, Path] = {}
    with_metrics = {n: r["metrics"] for n, r in zip(names, results, strict=True) if r["metrics"]}
    if with_metrics:
        made["validation error"] = plot_runs(with_metrics, out / "val_error.png", title="validation top-1 error",
                                               styles=styles)

    for fig in ROBUST_FIGURES:
        found = {n: c for n, r in zip(names, results, strict=True) if (c := fig.curve(r.get("robust") or {}))}
        if found:
            made[fig.title] = plot_curves_by_run(found, out / f"{fig.key}.png", xlabel=fig.xlabel,
                                                 ylabel=f"{fig.title}: {fig.ylabel}", title=fig.title, styles=styles)
    bins = {n: r["calib"] for n, r in zip(names, results, strict=True) if get(r, "calib", "bins")}
    if bins:
        made["reliability"] = plot_reliability(bins, out / "reliability.png", title="reliability")
    return made


def write_report(run_dirs: Sequence[str | Path], out: str | Path, title: str = "",
                 figures: bool = True, command: str = "") -> Path:
    """``report.md`` in ``out`` comparing ``run_dirs`` (each evaluated), with the overlaid figures beside it."""
    if not run_dirs:
        raise ValueError("report needs at least one run directory")
    results = [load_eval(d) for d in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    made = _figures(results, out) if figures else {}
    samples = sorted({str(r.get("samples")) for r in results})
    parts = [f"# {title or 'Evaluation report'}", ""]
    if command:
        parts += ["Made by:", "", "```", command, "```", ""]
    parts += [f"Runs evaluated on {', '.join(sorted({str(r.get('dataset')) for r in results}))} "
              f"({'/'.join(samples)} images); checkpoints: "
              + ", ".join(f"{label(r)} epoch {r.get('epoch')}" for r in results) + ".", ""]
    sections: list[tuple[str, Callable[[Sequence[dict[str, Any]]], str], str]] = [
        ("Classification and calibration", classification_table, "cls"),
        ("Weakly-supervised localisation (CAM; paper Table 5)", localization_table, "loc"),
        ("Robustness (paper Table 8 and Figure 5)", robustness_table, "robust"),
        ("Out-of-distribution detection, max-softmax baseline (paper Table 9)", ood_table, "ood"),
    ]
    if len({method_of(r) for r in results}) < len(results):
        parts += ["## Summary: mean ± sd over the runs of each method", "", summary_table(results), ""]
    for heading, make, key in sections:
        if any(r.get(key) for r in results):
            parts += [f"## {heading}", "", make(results), ""]
    if made:
        parts += ["## Figures", ""] + [f"![{name}]({path.name})" for name, path in made.items()] + [""]
    path = out / "report.md"
    path.write_text("\n".join(parts))
    return path
