"""A resumable queue of ``cutmix train`` runs, a few at a time, for studies that take hours on a CPU.

Each job is a run directory ``OUT/NAME``. A finished run (``summary.json``) is skipped, an interrupted one
(``last.pt``) continues with ``cutmix train --resume``, one stopped before its first checkpoint starts again. At
most ``slots`` runs train at once; the number is read again every few seconds from ``OUT/.slots`` when that file
exists, so it can be lowered while the machine is needed for something else (``echo 1 > OUT/.slots``): the newest
run is then stopped with SIGTERM, which saves ``last.pt`` at a step boundary, and continues later from there.
Killing the queue itself (Ctrl-C, SIGTERM) stops its runs the same way; running the same command again carries on.
To let the running runs finish without starting new ones (before a machine is handed back), create ``OUT/.drain``
(``touch OUT/.drain``): the queue exits once its runs are done; remove the file before running it again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# inside the checkout (a carried, git-ignored copy, or shared/), or beside it
DATA_DIRS = (".carry/cifar10-jpeg", "shared/data/cifar10-jpeg", "../shared/data/cifar10-jpeg")


@dataclass(frozen=True)
class Job:
    name: str  # the run directory's name under OUT
    args: tuple[str, ...]  # ``cutmix train`` arguments of a fresh start (--out/--name are added)


def state(run_dir: Path) -> str:
    """A run directory's state: "done" (summary.json), "resume" (last.pt), "broken" (no checkpoint) or "new"."""
    if (run_dir / "summary.json").is_file():
        return "done"
    if (run_dir / "last.pt").is_file():
        return "resume"
    return "broken" if run_dir.exists() else "new"


def find_data(given: str | None) -> Path:
    """The folder holding cifar10-train.zip and cifar10-test.zip: ``given``, else the first of ``DATA_DIRS``."""
    candidates = [Path(given)] if given else [ROOT / d for d in DATA_DIRS]
    for path in candidates:
        if (path / "cifar10-train.zip").is_file() and (path / "cifar10-test.zip").is_file():
            return path.resolve()
    raise SystemExit(f"no cifar10-train.zip and cifar10-test.zip in {', '.join(map(str, candidates))}: pass --data DIR")


def command(job: Job, out: Path) -> list[str]:
    """The command line that starts or continues ``job``."""
    base = [sys.executable, "-m", "cutmix", "train"]
    if state(out / job.name) == "resume":
        return [*base, "--resume", str(out / job.name)]
    return [*base, *job.args, "--out", str(out), "--name", job.name]


def environment() -> dict[str, object]:
    """What the runs ran on: torch, CUDA, the GPU, the CPU count, and the code's git commit."""
    env: dict[str, object] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        import torch

        env.update(torch=torch.__version__, cuda=torch.version.cuda)
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name()
        import cutmix

        code = Path(cutmix.__file__).resolve().parents[1]
        env["code"] = str(code)
        env["commit"] = subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], capture_output=True,
                                       text=True).stdout.strip() or None
    except ImportError:
        pass
    return env


def _slots(out: Path, default: int) -> int:
    try:
        return max(0, int((out / ".slots").read_text().strip()))
    except (FileNotFoundError, ValueError):
        return default


def _stop(proc: subprocess.Popen, wait: float = 120.0) -> None:
    """SIGTERM (the run saves last.pt after its current step), then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_queue(jobs: Sequence[Job], out: Path, slots: int = 1, poll: float = 5.0) -> int:
    """Train ``jobs`` in order, ``slots`` at a time (see the module docstring). 0 when all are done, 1 on a failure."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "environment.json").write_text(json.dumps(environment(), indent=2) + "\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    running: dict[str, subprocess.Popen] = {}
    failed: list[str] = []
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            for name, proc in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[name]
                if code not in (0, 130):
                    failed.append(name)
                    print(f"== {name}: failed with exit status {code} (log: {out / name}.log)", flush=True)
            pending = [j for j in jobs if j.name not in running and j.name not in failed
                       and state(out / j.name) != "done"]
            if not pending and not running:
                break
            draining = (out / ".drain").exists()
            if draining and not running:
                print(f"== drained ({out / '.drain'}): {len(pending)} run(s) not started", flush=True)
                break
            want = _slots(out, slots)
            while len(running) > want:  # fewer slots: stop the newest run, it resumes later
                name = list(running)[-1]
                print(f"== {name}: pausing (slots lowered to {want})", flush=True)
                _stop(running.pop(name))
            while len(running) < want and pending and not draining:
                job = pending.pop(0)
                if state(out / job.name) == "broken":  # stopped before its first checkpoint
                    shutil.rmtree(out / job.name)
                cmd = command(job, out)
                print(f"== {job.name}: {'resuming' if '--resume' in cmd else 'starting'}", flush=True)
                log = (out / f"{job.name}.log").open("a")
                running[job.name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                     start_new_session=True)
            time.sleep(poll)
    finally:
        for proc in running.values():
            _stop(proc)
        for s, handler in previous.items():
            signal.signal(s, handler)
    done = sum(state(out / j.name) == "done" for j in jobs)
    print(f"{done} of {len(jobs)} runs done{f'; failed: {failed}' if failed else ''}", flush=True)
    return 1 if failed else 0
