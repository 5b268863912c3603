"""Training configuration: presets, overrides, precedence, validation errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torchvision")

from cutmix import cli
from cutmix.run import config as cfg


@pytest.mark.parametrize("name", cfg.preset_names())
def test_every_preset_resolves(name):
    config = cfg.validate(cfg.from_dict(cfg.load_preset(name)))
    assert config.epochs >= 1 and config.mix.method in cfg.MIX_METHODS


def test_paper_recipes_are_the_papers():
    c100 = cfg.from_dict(cfg.load_preset("cifar100-pyramidnet200"))
    assert (c100.batch_size, c100.optim.lr, c100.epochs, c100.mix.prob) == (64, 0.25, 300, 0.5)
    assert c100.model.name == "pyramidnet200" and c100.optim.milestones == [0.5, 0.75]
    imnet = cfg.from_dict(cfg.load_preset("imagenet-resnet50"))
    assert (imnet.batch_size, imnet.optim.lr, imnet.epochs, imnet.mix.prob) == (256, 0.1, 300, 1.0)
    assert imnet.optim.milestones == [0.25, 0.5, 0.75]


def test_presets_listed():
    assert {"shapes-demo", "cifar10-resnet18", "cifar100-pyramidnet200", "imagenet-resnet50"} <= set(
        cfg.preset_names())


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown preset 'nope'.*shapes-demo"):
        cfg.load_preset("nope")


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [("optim.lr=0.05", "optim.lr", 0.05), ("epochs=3", "epochs", 3), ("mix.per_sample=true", "mix.per_sample", True),
     ("mix.layers=['layer1', 'layer2']", "mix.layers", ["layer1", "layer2"]), ("data.dataset=cifar10",
                                                                              "data.dataset", "cifar10")],
)
def test_parse_override(text, key, value):
    assert cfg.parse_override(text) == (key, value)


def test_overrides_apply_and_reject_unknown_keys():
    config = cfg.TrainConfig()
    cfg.apply_override(config, "optim.lr=0.3")
    cfg.apply_override(config, "model.kwargs.alpha=48")
    cfg.apply_override(config, "optim.weight_decay=0")  # an int where a float is expected is accepted
    assert config.optim.lr == 0.3 and config.model.kwargs == {"alpha": 48}
    assert isinstance(config.optim.weight_decay, float)
    with pytest.raises(ValueError, match=r"optim\.lrr is not a setting"):
        cfg.apply_override(config, "optim.lrr=1")
    with pytest.raises(ValueError, match="expects key=value"):
        cfg.apply_override(config, "optim.lr")
    with pytest.raises(ValueError, match="must be true or false"):
        cfg.apply_override(config, "mix.per_sample=3")


@pytest.mark.parametrize(
    ("override", "message"),
    [("mix.method=blend", "mix.method must be one of"), ("epochs=0", "epochs must be an integer >= 1"),
     ("mix.prob=1.5", r"mix.prob must be in \[0, 1\]"), ("amp=fp8", "amp must be"),
     ("optim.schedule=poly", "optim.schedule must be"), ("optim.lr=-1", "optim.lr must be > 0")],
)
def test_validation_names_the_setting(override, message):
    config = cfg.TrainConfig()
    cfg.apply_override(config, override)
    with pytest.raises(ValueError, match=message):
        cfg.validate(config)


def parse(*argv):
    parser = cli.argparse.ArgumentParser()
    cli._train_parser(parser.add_subparsers(dest="command"))
    return cli.build_config(parser.parse_args(["train", *argv]))


def test_precedence_defaults_preset_flags_set():
    assert parse().epochs == cfg.TrainConfig().epochs
    assert parse("--preset", "cifar10-resnet18").epochs == 100
    assert parse("--preset", "cifar10-resnet18", "--epochs", "7").epochs == 7
    assert parse("--preset", "cifar10-resnet18", "--epochs", "7", "--set", "epochs=9").epochs == 9
    config = parse("--mix", "feature-cutmix", "--layers", "layer1,layer2", "--per-sample", "--lr", "0.2")
    assert config.mix.layers == ["layer1", "layer2"] and config.mix.per_sample and config.optim.lr == 0.2
    assert parse("--preset", "cifar10-resnet18").model.name == "preact_resnet18"


def test_print_config(capsys):
    assert cli.main(["train", "--print-config", "--mix", "mixup", "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["mix"]["method"] == "mixup" and printed["seed"] == 3


def test_cli_reports_bad_settings(capsys):
    assert cli.main(["train", "--set", "mix.prob=2", "--print-config"]) == 2
    assert "mix.prob must be in [0, 1]" in capsys.readouterr().err


def test_saved_config_round_trips(tmp_path):
    config = parse("--preset", "cifar100-pyramidnet200", "--set", "model.kwargs.alpha=48")
    cfg.save(config, tmp_path / "config.json")
    assert cfg.load(tmp_path / "config.json") == config
