"""The README's two fresh-machine commands stay runnable and CI runs exactly the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md must start with a bash block holding the main-job and test commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command() -> None:
    commands = readme_commands()
    assert len(commands) == 2, commands
    test_command = commands[1]
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in [line.strip() for line in ci], f"{test_command!r} is not a line of .ci/run"


def test_main_job_is_cutmix_train_and_runs(tmp_path) -> None:
    """The README's main job is ``cutmix train`` with defaults; run it here on a tiny budget of the same defaults."""
    main = readme_commands()[0].split("&&")[-1].split()
    assert main == ["cutmix", "train"], main
    args = ["-m", "cutmix", "train", "--epochs", "1", "--train-samples", "64", "--val-samples", "32",
            "--batch-size", "32", "--out", str(tmp_path), "--no-progress"]
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "done: 1 epochs" in result.stdout
    assert (tmp_path / "shapes-resnet20-cutmix-s0" / "last.pt").is_file()
