"""DDP with one stalled rank: the collective times out (a setting) and SIGTERM still ends a blocked rank."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import free_port

pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parents[1]

# Rank 0 stalls at its third step (as a hung data loader or a dead GPU would); rank 1 trains on into the gradient
# all-reduce of that step and waits there for rank 0.
DRIVER = """
import sys, time
from pathlib import Path
from cutmix import cli
from cutmix.train import engine

engine.STOP_GRACE_S = 1.0
real = engine.Trainer._step

def step(self, images, labels):
    if self.ctx.rank == 0 and self.global_step == 2:
        Path(sys.argv[1]).write_text("stalled")
        time.sleep(120)
    return real(self, images, labels)

engine.Trainer._step = step
sys.exit(cli.main(sys.argv[2:]))
"""


def launch(tmp_path: Path, timeout_s: float) -> tuple[list[subprocess.Popen], Path]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    marker = tmp_path / "stalled"
    port = free_port()
    args = ["train", "--model", "resnet8", "--train-samples", "128", "--val-samples", "32", "--epochs", "2",
            "--batch-size", "16", "--device", "cpu", "--threads", "1", "--out", str(tmp_path / "runs"), "--name",
            "ddp", "--no-progress", "--ddp-timeout", str(timeout_s)]
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(driver), str(marker), *args], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs, marker


def wait_for(path: Path, procs: list[subprocess.Popen], seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            out = [p.communicate(timeout=30) if p.poll() is not None else ("", "") for p in procs]
            pytest.fail(f"the stall was not reached: {out}")
        time.sleep(0.1)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=60)


@pytest.mark.slow
def test_a_stalled_rank_makes_the_others_stop_after_the_timeout(tmp_path):
    procs, marker = launch(tmp_path, timeout_s=4)
    try:
        wait_for(marker, procs)
        stalled_at = time.monotonic()
        _, err = procs[1].communicate(timeout=90)
        waited = time.monotonic() - stalled_at
    finally:
        stop(procs)
    assert procs[1].returncode == 1, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith("cutmix train: failed: rank 1: a collective waited more than 4 s for the other ranks")
    assert "cutmix train --resume" in line and waited < 60


@pytest.mark.slow
def test_sigterm_ends_a_rank_blocked_in_a_collective(tmp_path):
    procs, marker = launch(tmp_path, timeout_s=300)  # the collective alone would wait five minutes
    try:
        wait_for(marker, procs)
        time.sleep(2.0)  # rank 1 is now inside the all-reduce, where Python cannot run its handler
        signalled = time.monotonic()
        procs[1].send_signal(signal.SIGTERM)
        _, err = procs[1].communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        stop(procs)
    assert procs[1].returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "SIGTERM: rank 1 did not reach a step boundary within 1 s" in err and "exiting without saving" in err
    assert took < 30
