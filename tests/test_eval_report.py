"""`cutmix report`'s seed summary: runs of one regulariser aggregate to mean ± sd, others stay apart."""

from __future__ import annotations

import json
import statistics

import pytest

from cutmix.evaluate.report import mean_sd, summary_table, write_report


def result(method: str, top1: float, seed: int, **mix) -> dict:
    return {"run": f"{method}-s{seed}", "mix": {"method": method, "alpha": 1.0, "prob": 0.5, **mix},
            "cls": {"top1_err": top1, "top5_err": top1 / 10}, "calib": {"ece": 0.05},
            "ood": {"average": {"tnr_at_tpr95": 0.4 + seed / 10, "auroc": 0.9}},
            "metrics": [{"epoch": 1, "val_top1_err": top1 + 0.1}, {"epoch": 2, "val_top1_err": top1}]}


def test_mean_sd_is_the_sample_statistic():
    values = [0.021, 0.0255, 0.03]
    m, sd = statistics.mean(values), statistics.stdev(values)
    assert mean_sd(values) == f"{100 * m:.2f} ± {100 * sd:.2f}"
    assert mean_sd([0.5, None]) == "50.00" and mean_sd([None]) == "–" and mean_sd([]) == "–"


def test_summary_groups_runs_by_regulariser_and_its_settings():
    runs = [result("none", 0.02, 0), result("cutmix", 0.03, 0), result("none", 0.04, 1), result("cutmix", 0.05, 1),
            result("cutmix", 0.07, 0, prob=1.0)]
    rows = [line.split(" | ") for line in summary_table(runs).splitlines()[2:]]
    assert [r[0].lstrip("| ") for r in rows] == ["baseline", "CutMix (α=1.0, p=0.5)", "CutMix (α=1.0, p=1.0)"]
    assert [r[1] for r in rows] == ["2", "2", "1"]
    sd = statistics.stdev([2.0, 4.0])
    assert rows[0][2] == f"3.00 ± {sd:.2f}" and rows[1][2] == f"4.00 ± {sd:.2f}" and rows[2][2] == "7.00"
    # best epoch error comes from the per-epoch log; suites a run lacks show a dash
    assert rows[0][3] == f"3.00 ± {sd:.2f}" and rows[0][5] == "–"
    assert rows[0][-2] == f"45.00 ± {100 * statistics.stdev([0.4, 0.5]):.2f}"


@pytest.mark.parametrize("seeds", [1, 2])
def test_report_adds_the_summary_only_when_a_method_has_several_runs(tmp_path, seeds):
    dirs = []
    for seed in range(seeds):
        for method in ("none", "cutmix"):
            d = tmp_path / f"{method}-s{seed}"
            d.mkdir()
            r = result(method, 0.1 + seed / 100, seed)
            (d / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in r.pop("metrics")))
            (d / "eval.json").write_text(json.dumps(r))
            dirs.append(d)
    text = (write_report(dirs, tmp_path / "report", figures=False)).read_text()
    assert ("## Summary: mean ± sd over the runs of each method" in text) == (seeds > 1)
    for seed in range(seeds):  # every run keeps its own row in the per-run tables
        assert f"| none-s{seed} | baseline | {10 + seed:.2f} |" in text


def test_group_styles_give_a_method_one_colour_and_its_seeds_distinct_line_styles():
    from cutmix.viz._mpl import group_styles

    styles = group_styles({"none-s0": "baseline", "cutmix-s0": "CutMix", "none-s1": "baseline",
                           "cutmix-s1": "CutMix", "mixup-s0": "Mixup"})
    assert styles["none-s0"] == {"color": "C0", "linestyle": "-"}
    assert styles["none-s1"] == {"color": "C0", "linestyle": "--"}
    assert styles["cutmix-s0"]["color"] == styles["cutmix-s1"]["color"] == "C1"
    assert styles["mixup-s0"] == {"color": "C2", "linestyle": "-"}


def test_robust_figures_read_their_curves_from_one_description() -> None:
    from cutmix.viz.robustness import ROBUST_FIGURES

    robust = {"occlusion": {"center": {"sizes": [0, 8], "accuracy": [0.9, 0.5]}},
              "in_between": {"cutmix": {"values": [4, 16], "neither_rate": [0.1, 0.25]}}}
    curves = {fig.key: fig.curve(robust) for fig in ROBUST_FIGURES}
    assert curves["occlusion_center"] == {"x": [0, 8], "y": [90.0, 50.0]}
    assert curves["in_between_cutmix"] == {"x": [4, 16], "y": [10.0, 25.0]}
    assert curves["occlusion_boundary"] is None and curves["in_between_mixup"] is None
