"""scripts/gpu_check.sh in its CPU smoke mode (GPU_CHECK_TINY=1): every stage runs and writes its file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("none", "mixup", "cutout", "cutmix")

pytest.importorskip("torchvision")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_tiny_writes_every_stage_into_one_folder(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "GPU_CHECK_TINY": "1", "OUT": str(out), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stages = [line.split("\t") for line in (out / "stages.tsv").read_text().splitlines()]
    assert [s[0] for s in stages] == ["cuda-tests", "bench-ops", "bench-step", *(f"train-{a}" for a in ARMS)]
    assert all(s[1] == "0" for s in stages), stages
    ops = json.loads((out / "bench-ops.json").read_text())
    step = json.loads((out / "bench-step.json").read_text())
    assert ops["rows"] and step["rows"]
    for arm in ARMS:
        summary = json.loads((out / "runs" / f"arm-{arm}" / "summary.json").read_text())
        assert summary["epochs"] == 1 and 0 <= summary["final_val_top1_err"] <= 1
        config = json.loads((out / "runs" / f"arm-{arm}" / "config.json").read_text())
        assert config["mix"]["method"] == arm
    text = (out / "summary.md").read_text()
    assert all(f"| arm-{arm} | 1 |" in text for arm in ARMS), text
    assert "| bench-step | 0 |" in text
