"""The CIFAR-5k study scripts: the run queue (skip, resume, restart, slots), the plan's names, the tables' paired
differences and the ablation verdicts, from files shaped like the ones ``cutmix train`` writes."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    """Import a file of scripts/ as a module (scripts/ is not a package; the scripts import each other by name)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "scripts"))


runqueue = _script("runqueue")
tables = _script("tables_5k")
study = _script("cifar10_5k")


def _result(folder: Path, name: str, final: float, *, epochs: int = 100, wall_s: float = 600.0) -> None:
    """The small files of one finished run: evaluations at every 5th epoch ending at ``final`` (a fraction)."""
    evaluated = [{"epoch": e, "val_top1_err": final + 0.01 * (epochs - e) / epochs, "train_eval_top1_err": 0.01}
                 for e in range(5, epochs + 1, 5)]
    lines = [{"epoch": e, "train_top1_err": 0.2} for e in range(1, epochs + 1)]
    for row in evaluated:
        lines[row["epoch"] - 1].update(row)
    (folder / f"{name}.metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / f"{name}.summary.json").write_text(json.dumps({"wall_time_s": wall_s}))
    (folder / f"{name}.config.json").write_text(json.dumps({"epochs": epochs}))


def _runs(tmp_path: Path, arms: dict[str, list[float]]) -> dict[str, dict[int, dict]]:
    for method, errs in arms.items():
        for seed, err in enumerate(errs):
            _result(tmp_path, f"{method}-e100-s{seed}", err)
    runs = tables.load(tmp_path)
    return {m: tables.pick(runs, m, 100) for m in arms}


@pytest.mark.parametrize(("errs", "expected"), [
    ([0.26, 0.262], "holds (CutMix ahead)"),            # behind by 1.0 and 1.2 points, sd 0.14
    ([0.24, 0.238], "does not hold (variant ahead)"),
    ([0.26, 0.245], "within spread"),                    # behind on both seeds, but mean 0.75 < sd 0.35
    ([0.26, 0.24], "within spread"),                     # one seed each way
    ([0.26], "1 paired seed: undecided"),
])
def test_ablation_verdict_needs_every_seed_and_more_than_the_spread(tmp_path, errs, expected):
    by = _runs(tmp_path, {"cutmix": [0.25, 0.25], "cutmix-gaussian": errs})
    assert tables.verdict(by["cutmix-gaussian"], by["cutmix"]) == expected


def test_tables_pair_by_seed_and_mark_what_the_paper_does_not_claim(tmp_path):
    _runs(tmp_path, {"none": [0.27, 0.28], "cutmix": [0.25, 0.255], "cutmix-fixed": [0.26, 0.266],
                     "cutmix-per-sample": [0.24, 0.25]})
    text = tables.render(tmp_path)
    rows = {line.split(":")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    fixed = rows["cutmix-fixed"].split(" | ")
    assert fixed[1:3] == ["0,1", "26.30 ± 0.42"]
    assert fixed[6] == "1.05 ± 0.07 (0/2 lower)"  # paired with CutMix by seed: +1.0 and +1.1 points
    assert fixed[-1].rstrip(" |") == "holds (CutMix ahead)"
    assert rows["cutmix-per-sample"].rstrip(" |").endswith("| –")  # not one of the paper's variants
    assert "| -2.25 ± 0.35 (2/2 lower) |" in text  # crossover: CutMix - none at 100 epochs, -2.0 and -2.5
    assert (tmp_path / "tables.md").read_text() == text
    # 100-epoch runs only: the crossover and ablation figures are drawn, the 200-epoch curves are not
    assert text.rstrip().endswith("Figures: crossover.png, ablations.png")
    assert (tmp_path / "ablations.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "core-curves.png").exists()


def test_the_core_arms_are_also_paired_with_cutmix(tmp_path):
    for method, errs in {"none": [0.26, 0.25, 0.27], "cutmix": [0.24, 0.245, 0.24], "mixup": [0.236, 0.24]}.items():
        for seed, err in enumerate(errs):
            _result(tmp_path, f"{method}-s{seed}", err, epochs=200)
    text = tables.render(tmp_path)
    against = text.split("## Core arms against CutMix")[1].split("## ")[0]
    rows = {line.split(":")[0].strip("| "): line.split(" | ") for line in against.splitlines() if line.startswith("| ")}
    assert rows["mixup"][1] == "0,1" and rows["mixup"][6] == "-0.45 ± 0.07 (2/2 lower)"  # -0.4 and -0.5 points
    assert rows["none"][6] == "1.83 ± 1.26 (0/3 lower)"  # +2.0, +0.5, +3.0
    assert rows["cutmix"][6] == "–"


def test_mixup_at_100_epochs_is_paired_with_cutmix_at_100_epochs(tmp_path):
    _runs(tmp_path, {"none": [0.27, 0.268], "cutmix": [0.254, 0.253], "mixup": [0.25, 0.256]})
    _result(tmp_path, "mixup-s0", 0.2, epochs=200)  # a 200-epoch Mixup run stays out of the 100-epoch table
    text = tables.render(tmp_path)
    against = text.split("## Mixup against CutMix, 100 epochs")[1].split("## ")[0]
    rows = {line.split(":")[0].strip("| "): line.split(" | ") for line in against.splitlines() if line.startswith("| ")}
    assert {k for k in rows if not k.startswith("arm |")} == {"none", "cutmix", "mixup"}
    assert rows["mixup"][1] == "0,1" and rows["mixup"][6] == "-0.05 ± 0.49 (1/2 lower)"  # -0.4 and +0.3 points
    assert rows["none"][6] == "1.55 ± 0.07 (0/2 lower)"


def test_every_planned_run_has_a_described_method_and_a_unique_name():
    jobs = study.plan(Path("data"))
    names = [j.name for j in jobs]
    assert len(names) == len(set(names)) == 83
    assert [j.name for j in study.plan(Path("data"), ("seeds",))] == ["none-s3", "cutmix-s3", "none-s4", "cutmix-s4"]
    assert [j.name for j in study.plan(Path("data"), ("mixup-seeds",))] == ["mixup-s3", "mixup-s4"]
    assert [j.name for j in study.plan(Path("data"), ("crossover-seeds",))] == [
        "none-e50-s2", "cutmix-e50-s2", "none-e25-s2", "cutmix-e25-s2", "none-e50-s3", "cutmix-e50-s3", "none-e25-s3",
        "cutmix-e25-s3"]
    assert [j.name for j in study.plan(Path("data"), ("crossover-100-seeds",))] == [
        "none-e100-s2", "cutmix-e100-s2", "none-e100-s3", "cutmix-e100-s3"]
    assert [j.name for j in study.plan(Path("data"), ("crossover-more-seeds",))] == [
        "none-e50-s4", "cutmix-e50-s4", "none-e50-s5", "cutmix-e50-s5", "none-e25-s4", "cutmix-e25-s4", "none-e25-s5",
        "cutmix-e25-s5"]
    assert [j.name for j in study.plan(Path("data"), ("crossover-100-more-seeds",))] == [
        "none-e100-s4", "cutmix-e100-s4", "none-e100-s5", "cutmix-e100-s5"]
    assert [j.name for j in study.plan(Path("data"), ("mixup-100",))] == [
        "mixup-e100-s0", "mixup-e100-s1", "mixup-e100-s2", "mixup-e100-s3"]
    for name in names:
        method = tables.NAME.match(name)["method"]
        assert method in tables.WHAT, name
    assert names.index("cutmix-e100-s1") < names.index("cutmix-gaussian-e100-s0")  # the reference lands first


def test_only_and_first_pick_and_order_runs_and_name_a_typo(tmp_path, capsys):
    (tmp_path / "cutmix-fixed-e100-s1").mkdir()
    (tmp_path / "cutmix-fixed-e100-s1" / "last.pt").write_bytes(b"")
    assert study.main(["list", "--out", str(tmp_path), "--groups", "ablations",
                       "--only", "cutmix-onehot-e100-s1,cutmix-fixed-e100-s1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["new     cutmix-onehot-e100-s1", "resume  cutmix-fixed-e100-s1"]
    assert study.main(["list", "--out", str(tmp_path), "--first", "cutmix-a2-e100-s1"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(study.plan(Path("data"))) and listed[0] == "new     cutmix-a2-e100-s1"
    with pytest.raises(SystemExit) as exit_info:
        study.main(["list", "--out", str(tmp_path), "--groups", "ablations", "--only", "cutmix-onehot-s1"])
    assert exit_info.value.code == 2
    assert "--only: no run named cutmix-onehot-s1 in the groups ablations" in capsys.readouterr().err


def test_queue_states_and_commands(tmp_path):
    job = runqueue.Job("cutmix-s0", ("--mix", "cutmix", "--seed", "0"))
    run = tmp_path / job.name
    assert runqueue.state(run) == "new"
    assert runqueue.command(job, tmp_path) == [sys.executable, "-m", "cutmix", "train", "--mix", "cutmix", "--seed",
                                               "0", "--out", str(tmp_path), "--name", "cutmix-s0"]
    run.mkdir()
    assert runqueue.state(run) == "broken"
    (run / "last.pt").write_bytes(b"")
    assert runqueue.state(run) == "resume"
    assert runqueue.command(job, tmp_path) == [sys.executable, "-m", "cutmix", "train", "--resume", str(run)]
    (run / "summary.json").write_text("{}")
    assert runqueue.state(run) == "done"


def test_queue_trains_skips_what_is_done_and_restarts_a_broken_run(tmp_path):
    tiny = ("--model", "resnet8", "--train-samples", "64", "--val-samples", "32", "--epochs", "1",
            "--batch-size", "32", "--no-progress", "--device", "cpu", "--threads", "1", "--mix", "none")
    jobs = [runqueue.Job("a", tiny), runqueue.Job("b", tiny)]
    (tmp_path / "b").mkdir()  # stopped before its first checkpoint: started again from scratch
    (tmp_path / "b" / "stale").write_text("x")
    assert runqueue.run_queue(jobs, tmp_path, slots=2, poll=0.2) == 0
    assert [runqueue.state(tmp_path / n) for n in ("a", "b")] == ["done", "done"]
    assert not (tmp_path / "b" / "stale").exists()
    assert json.loads((tmp_path / "environment.json").read_text())["cpus"] >= 1
    logs = (tmp_path / "a.log").read_text()
    assert runqueue.run_queue(jobs, tmp_path, slots=2, poll=0.2) == 0  # nothing left: nothing trains again
    assert (tmp_path / "a.log").read_text() == logs


def test_queue_drains_lets_the_running_run_finish_and_starts_no_other(tmp_path, capsys):
    tiny = ("--model", "resnet8", "--train-samples", "64", "--val-samples", "32", "--epochs", "1",
            "--batch-size", "32", "--no-progress", "--device", "cpu", "--threads", "1", "--mix", "none")
    jobs = [runqueue.Job("a", tiny), runqueue.Job("b", tiny)]

    def drain_once_a_starts() -> None:
        while not (tmp_path / "a.log").exists():
            time.sleep(0.02)
        (tmp_path / ".drain").touch()

    writer = threading.Thread(target=drain_once_a_starts)
    writer.start()
    assert runqueue.run_queue(jobs, tmp_path, slots=1, poll=0.2) == 0
    writer.join()
    assert [runqueue.state(tmp_path / n) for n in ("a", "b")] == ["done", "new"]
    out = capsys.readouterr().out
    assert "== a: starting" in out and "== b:" not in out and "1 run(s) not started" in out
    (tmp_path / ".drain").unlink()
    assert runqueue.run_queue(jobs, tmp_path, slots=1, poll=0.2) == 0
    assert runqueue.state(tmp_path / "b") == "done"


def test_the_crossover_row_averages_the_paired_seeds_only(tmp_path):
    """A baseline seed whose CutMix pair has not landed stays out of the crossover row (it would move none's mean
    and not the paired difference beside it)."""
    _runs(tmp_path, {"none": [0.27, 0.28, 0.20], "cutmix": [0.25, 0.255]})
    row = next(line for line in tables.crossover_table(tables.load(tmp_path)).splitlines() if line.startswith("| 100 "))
    assert row.split(" | ")[1:5] == ["0,1", "27.50 ± 0.71", "25.25 ± 0.35", "-2.25 ± 0.35 (2/2 lower)"]


def test_render_rewrites_the_tables_the_report_quotes_and_leaves_its_prose(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    _runs(folder, {"none": [0.27, 0.28], "cutmix": [0.25, 0.255]})
    stale = "| 100 | 0 | 27.00 ± 0.00 | … |\n"
    report = tmp_path / "study.md"
    report.write_text("# Study\n\nProse | with a bar.\n\n## Crossover: none vs CutMix by budget\n\n| epochs | old |\n"
                      "|---|---|\n" + stale + "\nAfter the table.\n\n## Notes\n\n| kept | table |\n")
    text = tables.render(folder)
    spliced = report.read_text()
    assert stale not in spliced and "| -2.25 ± 0.35 (2/2 lower) |" in spliced
    assert spliced.startswith("# Study\n\nProse | with a bar.\n\n## Crossover: none vs CutMix by budget\n\n| epochs |")
    assert spliced.endswith("\nAfter the table.\n\n## Notes\n\n| kept | table |\n")  # a section tables.md lacks
    crossover = text.split("## Crossover: none vs CutMix by budget\n\n")[1].split("\n\n")[0]
    assert crossover in spliced
    assert "## Mixup against CutMix" not in spliced  # not added: where it goes is the writer's choice
    assert tables.splice(spliced, text) == spliced


def test_the_committed_report_quotes_the_committed_tables():
    """results/cifar10-5k.md's tables are tables.md's (``python scripts/tables_5k.py results/cifar10-5k``)."""
    report = (ROOT / "results" / "cifar10-5k.md").read_text()
    made = (ROOT / "results" / "cifar10-5k" / "tables.md").read_text()
    shared = set(tables._sections(report)) & set(tables._sections(made))
    assert len(shared) >= 5
    assert tables.splice(report, made) == report
