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
