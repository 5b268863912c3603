"""The CIFAR-10 run scripts: the collector's tables and bundles, the reproduce plan, its deadline and resumption."""

from __future__ import annotations

import importlib.util
import io
import json
import statistics
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from cutmix.run import config as cfg

pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    """Import a file of scripts/ as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- the run scripts ----------------------------------------------------------------------------------------------
def _fake_run(root: Path, name: str, seed: int, errs: list[float], *, epochs: int | None = None,
              method: str = "cutmix", epoch_s: float = 10.0, finished: bool = True, **mix) -> None:
    run = root / name
    run.mkdir(parents=True)
    config = cfg.TrainConfig(seed=seed, epochs=epochs or len(errs))
    config.mix.method = method
    for k, v in mix.items():
        setattr(config.mix, k, v)
    cfg.save(config, run / "config.json")
    lines = [{"epoch": i + 1, "val_top1_err": e, "epoch_time_s": epoch_s, "train_images_per_s": 1000.0 * (i + 1)}
             for i, e in enumerate(errs)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    if finished:
        (run / "summary.json").write_text(json.dumps({"epochs": len(errs)}))


def test_collector_pools_seeds_into_a_markdown_table(tmp_path):
    collect = _script("collect_runs")
    _fake_run(tmp_path, "cutmix-s0", 0, [0.30, 0.12, 0.08, 0.06])
    _fake_run(tmp_path, "cutmix-s1", 1, [0.25, 0.09, 0.05, 0.07], epoch_s=20.0)
    _fake_run(tmp_path, "baseline-s0", 0, [0.40, 0.20], method="none")
    _fake_run(tmp_path, "cutmix-gaussian-s0", 0, [0.5], epochs=4, box="gaussian", finished=False)
    runs = collect.read_runs(tmp_path)
    rows = {r["group"]: r for r in (collect.summarise(g, 0.9) for g in collect.ordered_groups(runs, []))}
    cm = rows["cutmix"]
    assert cm["seeds"] == [0, 1] and cm["final_err"][0] == pytest.approx(6.5)
    assert cm["final_err"][1] == pytest.approx(statistics.stdev([6.0, 7.0]))
    assert cm["best_err"][0] == pytest.approx(5.5) and cm["train_s"] == pytest.approx(60.0)
    assert cm["time_to_target_s"] == pytest.approx((30.0 + 40.0) / 2) and cm["reached"] == 2  # err <= 10%
    assert rows["baseline"]["time_to_target_s"] is None and rows["baseline"]["final_err"] == (20.0, None)
    assert rows["cutmix-gaussian"]["unfinished"] == ["cutmix-gaussian-s0 (1/4 epochs)"]
    text = collect.report(runs, target_acc=0.9, order=["baseline", "cutmix"], environment={"gpu": "X"}, title="T")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| baseline | no mixing | 1 (0) | 20.00 | 20.00 | 20 | – |")
    assert table[2].startswith("| cutmix | CutMix, α=1, p=0.5 | 2 (0, 1) | 6.50 ± 0.71 | 5.50 ± 0.71 | 60 | 35 |")
    assert "centre-Gaussian box" in table[3] and "Unfinished, not averaged: cutmix-gaussian-s0 (1/4 epochs)" in text
    assert "Environment: gpu X." in text


def test_collector_bundle_round_trips(tmp_path):
    collect = _script("collect_runs")
    _fake_run(tmp_path / "runs", "mixup-s0", 0, [0.3, 0.2], method="mixup")
    (tmp_path / "runs" / "environment.json").write_text(json.dumps({"torch": "2.11"}))
    assert collect.main([str(tmp_path / "runs"), "--out", str(tmp_path / "a.md"), "--bundle",
                         str(tmp_path / "b.json")]) == 0
    assert collect.main(["--from-bundle", str(tmp_path / "b.json"), "--out", str(tmp_path / "c.md")]) == 0
    assert (tmp_path / "a.md").read_text() == (tmp_path / "c.md").read_text()
    assert "| mixup | Mixup, α=1, p=0.5 | 1 (0) | 20.00 |" in (tmp_path / "a.md").read_text()


def test_collector_merges_bundles_of_several_sessions(tmp_path):
    collect = _script("collect_runs")
    _fake_run(tmp_path / "one", "cutmix-s0", 0, [0.3], epochs=2, finished=False)
    _fake_run(tmp_path / "one", "cutmix-s1", 1, [0.3, 0.1])
    _fake_run(tmp_path / "two", "cutmix-s0", 0, [0.3, 0.2])
    _fake_run(tmp_path / "three", "cutmix-s0", 0, [0.4], epochs=2, finished=False)  # a later, unfinished restart
    bundles = [{"environment": {"gpu": g}, "runs": collect.read_runs(tmp_path / d)}
               for d, g in (("one", "A"), ("two", "B"), ("three", "B"))]
    runs, env = collect.merge_bundles(bundles)
    assert [(r["name"], len(r["metrics"])) for r in runs] == [("cutmix-s0", 2), ("cutmix-s1", 2)]
    assert env == {"1": "gpu A", "2": "gpu B"}
    assert collect.merge_bundles(bundles[1:])[1] == {"gpu": "B"}


def test_reproduce_plan_states_and_commands(tmp_path):
    rep = _script("reproduce_cifar10")
    runs = rep.plan([0, 1], [0])
    assert [r.name for r in runs[:6]] == ["baseline-s0", "mixup-s0", "cutout-s0", "cutmix-s0", "cutmix-p1-s0",
                                          "baseline-s1"]
    assert len(runs) == 15 and runs[-1].name == "cutmix-complete-s0"
    assert [r.name for r in rep.plan([0, 1], [0], ["cutmix-fixed"])] == ["cutmix-fixed-s0"]
    with pytest.raises(ValueError, match="unknown run"):
        rep.plan([0], [0], ["cutmix-huge"])
    run = tmp_path / "cutmix-s0"
    assert rep.state(run) == "new"
    run.mkdir()
    assert rep.state(run) == "broken"
    (run / "last.pt").write_bytes(b"")
    assert rep.state(run) == "resume"
    (run / "summary.json").write_text("{}")
    assert rep.state(run) == "done"
    fresh = rep.command(runs[3], "new", tmp_path, Path("/d"), "P", ["epochs=1"])
    assert fresh[fresh.index("--seed") + 1] == "0" and fresh[fresh.index("--name") + 1] == "cutmix-s0"
    assert fresh[-6:] == ["--set", "mix.alpha=1.0", "--set", "mix.prob=0.5", "--set", "epochs=1"]
    assert rep.command(runs[3], "resume", tmp_path, Path("/d"), "P", [])[-2:] == ["--resume", str(run)]
    for r in runs:  # every planned setting is a real one
        config = cfg.TrainConfig()
        for k, v in r.settings.items():
            cfg.apply_override(config, f"{k}={rep._literal(v)}")
        cfg.validate(config)


def test_train_until_stops_a_run_at_the_deadline():
    rep = _script("reproduce_cifar10")
    started = time.monotonic()
    code = rep.train_until([sys.executable, "-c", "import time; time.sleep(60)"], time.monotonic() + 0.3, grace=0.1)
    assert code is None and time.monotonic() - started < 10
    assert rep.train_until([sys.executable, "-c", "raise SystemExit(4)"], time.monotonic() + 60, grace=1) == 4


def _zip_of_images(path: Path, split: str, per_class: int) -> None:
    from PIL import Image

    g = torch.Generator().manual_seed(len(split))
    with zipfile.ZipFile(path, "w") as z:
        for cls in ("cat", "dog", "ship"):
            for i in range(per_class):
                buf = io.BytesIO()
                Image.fromarray((torch.rand(32, 32, 3, generator=g) * 255).to(torch.uint8).numpy()).save(buf, "PNG")
                z.writestr(f"{split}/{cls}/{i}.png", buf.getvalue())


@pytest.mark.slow
def test_reproduce_script_trains_collects_and_skips_finished_runs(tmp_path, capsys):
    rep = _script("reproduce_cifar10")
    _zip_of_images(tmp_path / "cifar10-train.zip", "train", 8)
    _zip_of_images(tmp_path / "cifar10-test.zip", "test", 4)
    args = ["--data", str(tmp_path), "--out", str(tmp_path / "runs"), "--only", "cutmix", "--seeds", "0",
            "--variant-seeds", "", "--collect", str(tmp_path / "cifar10.md"),
            *(a for s in ("model.name=resnet8", "epochs=1", "batch_size=8", "device=cpu", "compile=false",
                          "threads=1", f"data.cache_dir={tmp_path / 'cache'}") for a in ("--set", s))]
    assert rep.main(args) == 0
    assert (tmp_path / "runs" / "cutmix-s0" / "summary.json").is_file()
    assert "| cutmix | CutMix, α=1, p=0.5 | 1 (0) |" in (tmp_path / "cifar10.md").read_text()
    capsys.readouterr()
    assert rep.main(args) == 0  # nothing left to do
    assert "starting" not in capsys.readouterr().out
