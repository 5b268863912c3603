"""`cutmix eval` and `cutmix report` end to end on tiny trained runs, and their documented errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from _helpers import tiny_config

from cutmix import cli
from cutmix.evaluate.runs import load_run
from cutmix.evaluate.suite import SUITES, EvalOptions, evaluate_run, parse_suites
from cutmix.train.engine import train

QUICK = ["--samples", "64", "--robust-samples", "24", "--batch-size", "32", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A baseline and a CutMix run of ResNet-8 on shapes, two epochs each (seconds)."""
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for method in ("none", "cutmix"):
        result = train(tiny_config(root, **{"mix.method": method, "mix.prob": 1.0, "name": method}))
        made[method] = result.run_dir
    return made


def fresh(runs: dict[str, Path], name: str, tmp_path: Path) -> Path:
    """A private copy of a run (tests write eval.json into it)."""
    return Path(shutil.copytree(runs[name], tmp_path / name))


def test_eval_writes_every_suite_and_figure(runs, tmp_path, capsys):
    run = fresh(runs, "cutmix", tmp_path)
    assert cli.main(["eval", str(run), *QUICK]) == 0
    out = capsys.readouterr().out
    assert "top-1 error" in out and "FGSM" in out and "localisation" in out
    result = json.loads((run / "eval.json").read_text())
    assert result["suites"] == list(SUITES) and result["samples"] == 64
    assert set(SUITES) <= set(result)
    assert 0 <= result["cls"]["top5_err"] <= result["cls"]["top1_err"] <= 1
    assert result["calib"]["accuracy"] == pytest.approx(1 - result["cls"]["top1_err"])
    loc = result["loc"]
    assert loc["method"] == "cam" and loc["threshold"] == 0.15 and loc["num_images"] == 64
    assert 0 <= loc["top1_loc_acc"] <= loc["gt_known_loc_acc"] <= 1
    assert loc["best"]["gt_known_loc_acc"] >= loc["gt_known_loc_acc"]
    robust = result["robust"]
    assert robust["num_samples"] == 24 and robust["fgsm"]["epsilons"] == [pytest.approx(8 / 255)]
    # occlusion of a zero-sized square is the clean image: its accuracy is the clean accuracy
    assert robust["occlusion"]["center"]["sizes"][0] == 0
    assert robust["occlusion"]["center"]["accuracy"][0] == pytest.approx(robust["clean_accuracy"])
    assert set(result["ood"]["sets"]) == {"uniform", "gaussian", "shuffled-pixels"}
    for metrics in result["ood"]["sets"].values():
        assert 0 <= metrics["tnr_at_tpr95"] <= 1 and 0 <= metrics["auroc"] <= 1
    for path in result["figures"].values():
        assert Path(path).read_bytes()[:4] == b"\x89PNG"
    assert {Path(p).name for p in result["figures"].values()} >= {
        "confusion.png", "reliability.png", "cam.png", "occlusion_center.png", "occlusion_boundary.png",
        "in_between_mixup.png", "in_between_cutmix.png", "ood_scores.png"}


def test_eval_of_the_validation_set_agrees_with_training(runs, tmp_path):
    """best.pt on the run's own validation set gives exactly the error the training loop recorded for it."""
    run = fresh(runs, "none", tmp_path)
    result = evaluate_run(run, EvalOptions(suites=("cls",), device="cpu", progress=False, figures=False))
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    best = min(metrics, key=lambda m: m["val_top1_err"])
    assert result["samples"] == best["val_images"] == 96
    assert result["epoch"] == best["epoch"]
    assert result["cls"]["top1_err"] == pytest.approx(best["val_top1_err"], abs=1 / 96 + 1e-9)
    assert result["cls"]["top5_err"] == pytest.approx(best["val_top5_err"], abs=1 / 96 + 1e-9)


def test_load_run_restores_the_trained_weights_in_eval_mode(runs):
    loaded = load_run(runs["none"], "last", "cpu")
    state = torch.load(runs["none"] / "last.pt", weights_only=False)
    assert not loaded.model.training and not loaded.classifier.training
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, state["model"][key]), key
    assert loaded.classes == state["classes"] and loaded.mean == tuple(state["mean_std"][0])


def test_report_puts_runs_side_by_side(runs, tmp_path, capsys):
    dirs = [fresh(runs, name, tmp_path) for name in ("none", "cutmix")]
    for run in dirs:
        assert cli.main(["eval", str(run), *QUICK, "--suite", "cls,calib,robust,ood,loc"]) == 0
    capsys.readouterr()
    assert cli.main(["report", *map(str, dirs), "--out", str(tmp_path / "report"), "--title", "tiny"]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert text.startswith("# tiny") and "cutmix report" in text
    for heading in ("Classification and calibration", "localisation", "Robustness", "Out-of-distribution"):
        assert heading in text
    assert "mean ± sd" not in text  # one run per method: nothing to aggregate
    rows = [line for line in text.splitlines() if line.startswith("| none ") or line.startswith("| cutmix ")]
    assert any("baseline" in r for r in rows) and any("CutMix (α=1.0, p=1.0)" in r for r in rows)
    first = json.loads((dirs[0] / "eval.json").read_text())
    assert f"| none | baseline | {100 * first['cls']['top1_err']:.2f} |" in text
    for png in ("val_error.png", "occlusion_center.png", "in_between_cutmix.png", "reliability.png"):
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_errors_name_what_is_wrong(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path / "cache"))
    # a run without a checkpoint
    empty = fresh(runs, "none", tmp_path)
    (empty / "best.pt").unlink()
    (empty / "last.pt").unlink()
    assert cli.main(["eval", str(empty), *QUICK]) == 2
    assert "has no checkpoint (best.pt or last.pt): train it first" in capsys.readouterr().err
    # not a run directory at all
    assert cli.main(["eval", str(tmp_path), *QUICK]) == 2
    assert "no config.json: not a cutmix run directory" in capsys.readouterr().err
    # an evaluation set with other classes than the model's
    folder = tmp_path / "three"
    from PIL import Image

    for cls in ("a", "b", "c"):
        (folder / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (32, 32), (40 * i, 90, 200)).save(folder / cls / f"{i}.png")
    run = fresh(runs, "cutmix", tmp_path)
    assert cli.main(["eval", str(run), *QUICK, "--data", str(folder), "--suite", "cls"]) == 2
    err = capsys.readouterr().err
    assert "has 3 classes (a, b, c, ...) but the model of" in err and "was trained on 10" in err
    # bad options
    with pytest.raises(ValueError, match="--suite must be 'all' or a comma list"):
        parse_suites("cls,locc")
    with pytest.raises(ValueError, match=r"--cam-threshold must be in \(0, 1\]"):
        evaluate_run(run, EvalOptions(cam_threshold=0, progress=False))
    with pytest.raises(ValueError, match="--epsilons must be >= 0"):
        evaluate_run(run, EvalOptions(epsilons=(-0.1,), progress=False))


def test_cam_on_a_model_without_a_pooling_head(tmp_path, capsys):
    """Asking for CAM on a network without a GAP + linear head is an error; auto falls back to Grad-CAM."""
    config = tiny_config(tmp_path, **{"model.name": "tv:squeezenet1_1", "epochs": 1, "max_steps": 1,
                                      "mix.method": "none", "name": "squeeze"})
    run = train(config).run_dir
    assert cli.main(["eval", str(run), *QUICK, "--suite", "loc", "--cam", "cam"]) == 2
    err = capsys.readouterr().err
    assert "SqueezeNet has no global-average-pooling + linear head" in err and "gradcam" in err
    result = evaluate_run(run, EvalOptions(suites=("loc",), samples=16, device="cpu", progress=False,
                                           figures=False))
    assert result["loc"]["method"] == "gradcam" and 0 <= result["loc"]["gt_known_loc_acc"] <= 1


def test_a_folder_of_varied_sizes_is_resized_like_validation(runs, tmp_path, monkeypatch):
    """An ImageFolder of varied image sizes (ImageNet-style) is resized + centre-cropped to the model's size."""
    from PIL import Image

    from cutmix.data import SHAPES

    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "varied"
    for i, name in enumerate(SHAPES):
        (folder / name).mkdir(parents=True)
        Image.new("RGB", (40 + 3 * i, 36 + i), (20 * i, 100, 50)).save(folder / name / "a.png")
    run = fresh(runs, "none", tmp_path)
    result = evaluate_run(run, EvalOptions(suites=("cls", "ood"), data=str(folder), device="cpu", progress=False,
                                           figures=False))
    assert result["samples"] == len(SHAPES) and result["dataset"] == "varied"
    assert result["cls"]["num_samples"] == len(SHAPES)
    assert result["ood"]["num_in"] == len(SHAPES)
    # the folder lists classes alphabetically, the model learnt them in the generator's order: matched by name
    loaded = load_run(run, "best", "cpu")
    from cutmix.evaluate.common import predict_logits
    from cutmix.evaluate.runs import open_eval_set

    data = open_eval_set(loaded.config, str(folder))
    truth = torch.tensor([SHAPES.index(data.classes[int(y)]) for y in data.labels])
    errors = (predict_logits(loaded.classifier, data.images).argmax(1) != truth).double().mean()
    assert result["cls"]["top1_err"] == pytest.approx(float(errors))
    assert data.images.shape[-2:] == (32, 32)


def test_classes_are_matched_by_name_not_position():
    from types import SimpleNamespace

    from cutmix.evaluate.suite import _model_labels

    run = SimpleNamespace(classes=["cat", "dog", "emu"], run_dir=Path("r"))
    labels = torch.tensor([0, 1, 2, 2])
    assert torch.equal(_model_labels(["cat", "dog", "emu"], labels, run, "x"), labels)
    assert _model_labels(["emu", "cat", "dog"], labels, run, "x").tolist() == [2, 0, 1, 1]
    with pytest.raises(ValueError, match=r"x has 3 classes \(cat, dog, yak, \.\.\.\) but the model of r was trained"):
        _model_labels(["cat", "dog", "yak"], labels, run, "x")
