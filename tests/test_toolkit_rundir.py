"""Run directories: created only after a successful start, named after what differs, claimed atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torchvision")

from _helpers import tiny_config as tiny

from cutmix import cli
from cutmix.data.source import dataset_name
from cutmix.run import config as cfg
from cutmix.train.engine import train
from cutmix.train.rundir import RunLock, claim_run_dir, run_name

BASE = ["train", "--model", "resnet8", "--train-samples", "64", "--val-samples", "32", "--epochs", "1",
        "--batch-size", "32", "--no-progress", "--device", "cpu"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--data", "nowhere/train.zip", "--val-data", "nowhere/val.zip"], "does not exist"),
    (["--model", "resnet9"], "unknown model"),
    (["--mix", "feature-cutmix", "--layers", "layer7"], "layer 'layer7' is not a submodule"),
    (["--set", "model.kwargs.depth=3"], "does not take model.kwargs"),
])
def test_a_failed_start_leaves_no_run_directory(tmp_path, capsys, flags, message):
    assert cli.main([*BASE, "--out", str(tmp_path / "runs"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
    assert cli.main([*BASE, "--out", str(tmp_path / "runs")]) == 0  # the next run gets the plain name
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["shapes-resnet8-cutmix-s0"]


@pytest.mark.parametrize(("overrides", "name"), [
    ({}, "shapes-resnet20-cutmix-s0"),
    ({"mix.per_sample": True, "mix.box": "gaussian"}, "shapes-resnet20-cutmix-sample-gaussian-s0"),
    ({"mix.label": "onehot", "mix.schedule": "linear", "mix.prob": 1.0}, "shapes-resnet20-cutmix-onehot-linear-p1-s0"),
    ({"mix.box": "fixed", "mix.size": 0.25, "mix.placement": "inside"},
     "shapes-resnet20-cutmix-fixed-size0.25-inside-s0"),
    ({"mix.method": "none", "mix.box": "gaussian", "mix.alpha": 0.5}, "shapes-resnet20-none-s0"),  # no effect
    ({"mix.method": "cutout", "mix.cutout_size": 8}, "shapes-resnet20-cutout-c8-s0"),
    ({"mix.method": "manifold-mixup", "mix.layers": ["", "layer2"]},
     "shapes-resnet20-manifold-mixup-at-input+layer2-s0"),
    ({"mix.method": "mixup", "mix.alpha": 0.2, "seed": 3}, "shapes-resnet20-mixup-a0.2-s3"),
])
def test_ablation_settings_name_the_run(overrides, name):
    config = cfg.TrainConfig()
    for key, value in overrides.items():
        cfg.put(config, key, value)
    assert run_name(config) == name


def test_imagefolder_trees_are_named_after_the_dataset_not_the_split(tmp_path):
    (tmp_path / "imagenet" / "train").mkdir(parents=True)
    config = cfg.TrainConfig()
    config.data.dataset = str(tmp_path / "imagenet" / "train")
    config.model.name = "tv:resnet50"
    assert run_name(config) == "imagenet-tv-resnet50-cutmix-s0"
    config.data.dataset = "../shared/data/cifar10-jpeg/cifar10-train.zip"
    assert run_name(config).startswith("cifar10-tv-resnet50-")
    assert dataset_name(tmp_path / "imagenet" / "val") == "imagenet-val"
    assert dataset_name(tmp_path / "tiny.zip") == "tiny" and dataset_name(tmp_path / "pets") == "pets"


def test_a_start_race_takes_the_next_name(tmp_path, monkeypatch):
    """Another process creates the directory between our look and our mkdir: no FileExistsError, the next name."""
    real_mkdir = Path.mkdir
    raced = []

    def racing_mkdir(self, *args, **kwargs):
        if self.name == "race" and not raced:
            raced.append(self)
            real_mkdir(self)  # the other process wins
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", racing_mkdir)
    config = tiny(tmp_path, name="race", **{"mix.method": "none"})
    result = train(config)
    assert raced and result.run_dir == tmp_path / "race-2" and (tmp_path / "race-2" / "last.pt").is_file()
    assert claim_run_dir(config) == tmp_path / "race-3"


def test_a_new_run_holds_its_lock_while_training(tmp_path, monkeypatch):
    from cutmix.train import engine
    from cutmix.train.errors import RunInUseError

    seen = []
    real = engine.Trainer._step

    def step(self, images, labels):
        if self.global_step == 1:
            with pytest.raises(RunInUseError, match="is in use by another cutmix train"):
                RunLock(self.run_dir).acquire()
            seen.append(self.run_dir)
        return real(self, images, labels)

    monkeypatch.setattr(engine.Trainer, "_step", step)
    result = train(tiny(tmp_path, epochs=1, **{"mix.method": "none"}))
    assert seen == [result.run_dir]
    with RunLock(result.run_dir):  # released when the run returned
        pass
