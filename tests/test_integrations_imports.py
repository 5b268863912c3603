"""``import cutmix`` (and the integrations package and timm adapter) stay torch-only: no optional package loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

OPTIONAL = ("timm", "lightning", "pytorch_lightning", "transformers", "accelerate", "tensorboard")


@pytest.mark.parametrize("statement", [
    "import cutmix",
    "import cutmix.integrations",
    "import cutmix.integrations.timm",  # a drop-in for timm's Mixup that does not need timm
])
def test_import_loads_no_optional_package(statement):
    code = (f"{statement}; import sys; loaded = [m for m in {OPTIONAL!r} if m in sys.modules]; "
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("statement", [
    "import cutmix.data",  # the CIFAR recipe and the builtin sets need no torchvision
    "from cutmix.cli import main; main(['train', '--help'])",  # nor does the command line's parser
])
def test_torchvision_loads_only_with_the_imagenet_pipelines(statement):
    code = ("import contextlib, io, sys\nwith contextlib.redirect_stdout(io.StringIO()), "
            f"contextlib.suppress(SystemExit):\n    {statement}\n"
            "assert 'torchvision' not in sys.modules, 'torchvision was imported'\n"
            "from cutmix.data import Lighting, eval_transform\n"  # the lazy names still resolve, to the pipelines
            "assert Lighting.__module__ == 'cutmix.data.imagenet' and 'torchvision' in sys.modules\n"
            "assert callable(eval_transform)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("argv", "status"), [
    (["--help"], 0),
    (["train", "--help"], 0),
    (["train", "--epocs", "3"], 2),  # a typo is answered before torch loads
    (["train", "--mix", "cutmx"], 2),  # so is a bad choice of a setting whose names the ops define
    (["train", "--set", "mix.alpha=-1"], 2),  # and a value out of range
    (["train", "--list-presets"], 0),
    (["train", "--print-config"], 0),
    (["eval", "--help"], 0),
    (["report", "--help"], 0),
    (["show", "--help"], 0),
])
def test_the_command_line_parses_without_torch(argv, status):
    code = ("import contextlib, io, sys\nfrom cutmix.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    status = main({argv!r})\n"
            f"assert status == {status}, status\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_package_names_load_at_first_use():
    code = ("import sys, cutmix\nassert 'torch' not in sys.modules\n"
            "assert set(cutmix.__all__) <= set(dir(cutmix))\n"
            "assert sorted(cutmix.__all__) == sorted([*cutmix._EXPORTS, *cutmix._SUBMODULES])\n"  # lists agree
            "from cutmix import CutMix, boxes\n"
            "import cutmix.transforms\n"
            "assert CutMix is cutmix.transforms.CutMix and cutmix.CutMix is CutMix and boxes is cutmix.boxes\n"
            "assert all(getattr(cutmix, name) is not None for name in cutmix.__all__)\n"
            "try:\n    cutmix.CutMixx\nexcept AttributeError as err:\n"
            "    assert str(err) == \"module 'cutmix' has no attribute 'CutMixx'\", err\n"
            "else:\n    raise AssertionError('no AttributeError')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_settings_offer_the_names_the_ops_accept():
    from cutmix import boxes, functional
    from cutmix.data import augment
    from cutmix.run import config as cfg

    choices = {path: s.spec.choices for path, s in cfg.all_settings().items()}
    assert choices["mix.box"] == boxes.KINDS == ("uniform", "gaussian", "fixed")
    assert choices["mix.placement"] == boxes.PLACEMENTS and choices["mix.rounding"] == boxes.ROUNDINGS
    assert choices["mix.label"] == functional.LABEL_MODES == ("area", "onehot", "complete")
    assert choices["data.pad_mode"] == augment.PADDING_MODES
