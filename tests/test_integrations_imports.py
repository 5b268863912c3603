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
