"""Settings are declared once: flags, --help defaults, choices, ranges and --set parsing all come from the fields."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import torch

pytest.importorskip("torchvision")

import cutmix
from cutmix import cli
from cutmix.run import config as cfg
from cutmix.run.settings import SettingError


def train_parser():
    parser = cli.Parser(prog="cutmix")
    return cli._train_parser(parser.add_subparsers(dest="command"))


def test_every_flag_is_generated_from_a_declared_setting():
    parser = train_parser()
    flags = {a.dest: a for a in parser._actions if a.option_strings}
    declared = {path: s for path, s in cfg.all_settings().items() if s.spec.flag}
    assert set(declared) <= set(flags)
    for path, s in declared.items():
        assert s.spec.flag in flags[path].option_strings, path
        assert flags[path].default is None  # only given flags override a preset
        assert flags[path].help.endswith(")") and "(default: " in flags[path].help, path
    # a handful of flags kept their historical names
    names = {s.spec.flag: p for p, s in declared.items()}
    assert names["--data"] == "data.dataset" and names["--workers"] == "data.num_workers"
    assert names["--mix"] == "mix.method" and names["--lr-schedule"] == "optim.schedule"


def test_every_field_is_a_setting_with_a_help_line():
    for path, s in cfg.all_settings().items():
        assert s.spec.help, path
    sections = [cfg.DataConfig, cfg.ModelConfig, cfg.MixConfig, cfg.OptimConfig, cfg.TrainConfig]
    count = sum(len(dataclasses.fields(c)) for c in sections) - len(cfg.SECTIONS)
    assert len(cfg.all_settings()) == count


def test_choices_are_the_librarys_own_constants():
    settings = cfg.all_settings()
    assert settings["mix.box"].spec.choices == cutmix.boxes.KINDS
    assert settings["mix.placement"].spec.choices == cutmix.boxes.PLACEMENTS
    assert settings["mix.label"].spec.choices == cutmix.functional.LABEL_MODES
    from cutmix.data.augment import PADDING_MODES

    assert settings["data.pad_mode"].spec.choices == PADDING_MODES


def test_help_shows_defaults(capsys):
    assert cli.main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("--epochs N epochs to train (on --resume: extend or shorten the run) (default: 8)",
                     "(default: 0.5)", "--box {uniform,gaussian,fixed} box sampler (default: uniform)",
                     "--save-every N", "--ddp-timeout S", "(default: 600.0)", "--no-progress"):
        assert fragment in text, fragment


@pytest.mark.parametrize(("text", "key", "value"), [
    ("optim.lr=0.05", "optim.lr", 0.05), ("epochs=3", "epochs", 3), ("mix.per_sample=yes", "mix.per_sample", True),
    ("mix.layers=layer1,layer2", "mix.layers", ["layer1", "layer2"]), ("mix.layers=[]", "mix.layers", []),
    ("optim.milestones=0.3,0.6", "optim.milestones", [0.3, 0.6]), ("data.val_samples=none", "data.val_samples", None),
    ("name='none'", "name", "none"), ("name=none", "name", None), ("data.dataset=12", "data.dataset", "12"),
    ("model.kwargs.alpha=48", "model.kwargs.alpha", 48), ("model.kwargs.norm=bn", "model.kwargs.norm", "bn"),
    ("optim.weight_decay=0", "optim.weight_decay", 0.0),
])
def test_set_values_parse_by_the_fields_type(text, key, value):
    parsed = cfg.parse_override(text)
    assert parsed == (key, value) and type(parsed[1]) is type(value)


@pytest.mark.parametrize(("text", "message"), [
    ("optim.lr=abc", "--set optim.lr must be a number, got 'abc'"),
    ("epochs=2.5", "--set epochs must be an integer, got '2.5'"),
    ("mix.per_sample=maybe", "--set mix.per_sample must be true or false"),
    ("optim.milestones=a,b", "--set optim.milestones must be numbers separated by commas"),
    ("optim.lrr=1", "--set optim.lrr is not a setting; known: gamma, impl, label_smoothing, lr"),
    ("epochz=1", "--set epochz is not a setting"),
    ("a.b.c=1", "expected 'key', 'section.key'"),
    ("optim.lr", "expects key=value"),
])
def test_bad_set_values_are_named(text, message):
    with pytest.raises(SettingError, match=message.replace("[", r"\[").replace(".", r"\.")):
        cfg.parse_override(text)


def test_presets_and_saved_configs_are_type_checked(tmp_path):
    with pytest.raises(SettingError, match=r"preset x: optim\.lr must be a number, got 'fast'"):
        cfg.apply(cfg.TrainConfig(), {"optim": {"lr": "fast"}}, "preset x")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 3, "mix": {"alpha": 0.5}}))  # an old config.json without newer keys
    loaded = cfg.load(path)
    assert loaded.epochs == 3 and loaded.mix.alpha == 0.5 and loaded.save_every is None
    assert loaded.ddp_timeout == cfg.TrainConfig().ddp_timeout


@pytest.mark.parametrize(("key", "value", "message"), [
    ("mix.sigma", 0.0, r"mix\.sigma must be > 0, got 0\.0"),
    ("mix.size", 1.5, r"mix\.size must be in \(0, 1\], got 1\.5"),
    ("optim.momentum", 1.0, r"optim\.momentum must be in \[0, 1\), got 1\.0"),
    ("data.num_workers", -1, r"data\.num_workers must be an integer >= 0, got -1"),
    ("save_every", 0, r"save_every must be an integer >= 1 or unset, got 0"),
    ("mix.box", "circle", r"mix\.box must be one of uniform, gaussian, fixed; got 'circle'"),
])
def test_ranges_and_choices_are_validated_from_the_declaration(key, value, message):
    config = cfg.TrainConfig()
    cfg.put(config, key, value)
    with pytest.raises(SettingError, match=message):
        cfg.validate(config)


def test_list_presets_prints_one_described_line_each(capsys):
    assert cli.main(["train", "--list-presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == cfg.preset_names()
    for line in lines:
        name, description = line.split(maxsplit=1)
        assert description == cfg.preset_description(name) and 20 < len(description) < 110, line
    assert any("the paper's CIFAR-100 recipe" in line for line in lines)


def test_bench_help_lists_bench_step(capsys):
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert "cutmix bench step [OPTIONS]" in out and "--min-time" in out
    assert cli.main(["bench", "step", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: cutmix bench step") and "--models" in out
    assert cli.main(["--help"]) == 0
    assert "cutmix bench step --help" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "--bogus"], "cutmix: error: unrecognized arguments: --bogus (see cutmix --help)"),
    (["bench", "step", "--rounds", "x"], "cutmix bench step: error: argument --rounds: invalid int value: 'x' (see "
     "cutmix bench step --help)"),
    (["bench", "--dtypes", "int3"], "cutmix bench: error: --dtypes: unknown dtype 'int3'; choose from float32, "
     "uint8, bfloat16 (see cutmix bench --help)"),
    (["bench", "--idle", "-1"], "cutmix bench: error: --idle: expected milliseconds >= 0, got -1.0 (see cutmix bench "
     "--help)"),
    (["bench", "--idle", "nan"], "cutmix bench: error: --idle: expected milliseconds >= 0, got nan (see cutmix bench "
     "--help)"),
])
def test_bench_mistakes_are_one_line_without_a_traceback(capsys, argv, message):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [message] and captured.out == ""


def _one_line_error(argv, capsys, code=2) -> str:
    assert cli.main(argv) == code, argv
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


# A catalogue of mistakes a user makes on the command line: each is one line on stderr, status 2, no traceback.
MISTAKES = [
    (["train", "--set", "optim.lr=abc"], "--set optim.lr must be a number, got 'abc'"),
    (["train", "--set", "nope=1"], "--set nope is not a setting"),
    (["train", "--set", "optim.lr"], "--set expects key=value"),
    (["train", "--epochs", "0"], "argument --epochs: epochs must be an integer >= 1, got 0"),
    (["train", "--epochs", "two"], "argument --epochs: epochs must be an integer, got 'two'"),
    (["train", "--prob", "1.5"], "argument --prob: mix.prob must be in [0, 1], got 1.5"),
    (["train", "--mix", "blend"], "argument --mix: mix.method must be one of none, cutmix"),
    (["train", "--box", "round"], "mix.box must be one of uniform, gaussian, fixed"),
    (["train", "--lr", "-1"], "optim.lr must be > 0, got -1.0"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--preset", "nope"], "unknown preset 'nope'"),
    (["train", "--set", "mix.prob=2", "--print-config"], "mix.prob must be in [0, 1], got 2.0"),
    (["train", "--resume", "RUNS/missing"], "no config.json there"),
    (["train", "--data", "RUNS/missing.zip"], "missing.zip does not exist"),
    (["train", "--data", "RUNS/tree"], "has no validation split of its own: pass --val-data PATH"),
    (["train", "--model", "resnet7"], "unknown model"),
    (["train", "--model", "resnet8", "--set", "model.kwargs.alpha=48"], "model resnet8 does not take model.kwargs"),
    (["train", "--mix", "feature-cutmix", "--layers", "layer9"], "layer 'layer9' is not a submodule"),
    (["train", "--device", "cuda:7"], "device 'cuda:7'"),
    (["train", "--batch-size", "4096"], "batch_size 4096 is larger than the"),
    (["eval"], "the following arguments are required: RUN_DIR"),
    (["eval", "RUNS", "--suite", "cls,locc"], "--suite must be 'all' or a comma list"),
    (["eval", "RUNS/missing"], "run directory"),
    (["show", "-n", "1"], "--num-images must be at least 2"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
]


COMMON = ["--out", "OUT", "--train-samples", "64", "--val-samples", "32", "--batch-size", "32", "--epochs", "1",
          "--no-progress", "--device", "cpu"]


@pytest.mark.parametrize(("argv", "message"), MISTAKES, ids=[" ".join(a[:3]) for a, _ in MISTAKES])
def test_a_command_line_mistake_is_one_line_and_status_2(argv, message, tmp_path, capsys, monkeypatch):
    from PIL import Image

    if "cuda:7" in argv and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    (tmp_path / "tree" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "tree" / "a" / "x.png")
    monkeypatch.chdir(tmp_path)
    if argv[0] == "train" and "--resume" not in argv:
        argv = ["train", *COMMON, *argv[1:]]  # the catalogue's flags come last, so they win
    argv = [a.replace("RUNS", str(tmp_path)).replace("OUT", str(tmp_path / "out")) for a in argv]
    line = _one_line_error(argv, capsys)
    assert message in line, line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no run directory left


def test_a_missing_optional_package_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    line = _one_line_error(["train", "--model", "timm:resnet18", "--out", str(tmp_path), "--train-samples", "64",
                            "--val-samples", "32", "--batch-size", "32", "--device", "cpu", "--no-progress"], capsys)
    assert "model timm:resnet18 needs timm, which is not installed: pip install timm" in line
    assert not any(tmp_path.iterdir())


def test_model_kwargs_reach_the_model(tmp_path):
    from _helpers import tiny_config

    from cutmix.train.engine import Trainer, distributed

    config = tiny_config(tmp_path, **{"model.name": "pyramidnet110"})
    cfg.apply_override(config, "model.kwargs.alpha=48")
    trainer = Trainer(config, distributed.setup("cpu"), None)
    assert config.model.kwargs == {"alpha": 48}
    widths = [m.out_channels for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(widths) == 16 + 48  # PyramidNet widens by alpha over its depth: 16 + alpha channels at the end
