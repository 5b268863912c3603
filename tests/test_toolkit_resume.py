"""Resume: safe changes applied and announced, others refused by name, config checked against the checkpoint, no
work lost on a crash (mid-epoch checkpoints), best.pt never stale, old run directories still accepted."""

from __future__ import annotations

import errno
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("torchvision")

from _helpers import tiny_config as tiny

from cutmix import cli
from cutmix.run import checkpoint as ckpt
from cutmix.run import config as cfg
from cutmix.run.checkpoint import load_checkpoint
from cutmix.train import engine
from cutmix.train.engine import train


def weights(run: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return load_checkpoint(run / name)["model"]


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def epochs_logged(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def resume(run: Path, *flags: str) -> int:
    return cli.main(["train", "--resume", str(run), *flags])


@pytest.fixture
def finished(tmp_path) -> Path:
    """A tiny run of 2 epochs, done."""
    return train(tiny(tmp_path, **{"mix.method": "none"})).run_dir


def test_resume_applies_the_safe_flags_and_says_so(finished, capsys):
    assert resume(finished, "--epochs", "3", "--save-every", "5", "--no-progress", "--threads", "1",
                  "--eval-every", "1") == 0
    err = capsys.readouterr().err
    assert f"resuming {finished} at epoch 3, step 0 of it (global step " in err
    assert "); changed: epochs 2 -> 3, save_every unset -> 5" in err
    assert epochs_logged(finished) == [1, 2, 3]
    stored = cfg.load(finished / "config.json")
    assert (stored.epochs, stored.save_every) == (3, 5)
    assert load_checkpoint(finished / "last.pt")["config"]["epochs"] == 3  # checkpoint and config.json agree
    assert resume(finished) == 0  # and the next resume accepts them
    assert "has finished its 3 epochs (18 steps): nothing to do (pass --epochs N > 3 to extend it)" in \
        capsys.readouterr().err


def test_resume_refuses_other_flags_naming_them(finished, capsys):
    before = (finished / "config.json").read_text(), (finished / "last.pt").read_bytes()
    assert resume(finished, "--mix", "mixup", "--epochs", "5", "--set", "mix.alpha=0.5") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cannot change mix.method (--mix) (none -> mixup), mix.alpha (--alpha) (1.0 -> 0.5): only --epochs," in err
    assert "--save-every" in err and "start a new run" in err
    assert ((finished / "config.json").read_text(), (finished / "last.pt").read_bytes()) == before
    assert resume(finished, "--preset", "shapes-demo") == 2
    assert "--preset cannot be combined with --resume" in capsys.readouterr().err
    assert resume(finished, "--mix", "none", "--epochs", "2") == 0  # the values it already has are no change


def test_resume_checks_config_json_against_the_checkpoint(finished, capsys):
    path = finished / "config.json"
    values = json.loads(path.read_text())
    values["mix"]["alpha"], values["seed"] = 0.2, 7
    path.write_text(json.dumps(values))
    assert resume(finished) == 2
    err = capsys.readouterr().err
    assert "config.json differs from the config of its checkpoint last.pt in mix.alpha (--alpha) (1.0 -> 0.2), " \
           "seed (--seed) (0 -> 7); restore config.json or start a new run" in err
    values["mix"]["alpha"], values["seed"], values["epochs"] = 1.0, 0, 3  # an edit of a safe setting is applied
    path.write_text(json.dumps(values))
    assert resume(finished) == 0
    assert "changed: epochs 2 -> 3" in capsys.readouterr().err and epochs_logged(finished) == [1, 2, 3]


def test_resume_cannot_shorten_below_the_epochs_done(tmp_path, capsys):
    cut = train(tiny(tmp_path, **{"mix.method": "none"}), interrupt_at=8)  # epoch 2, step 2
    assert resume(cut.run_dir, "--epochs", "1") == 2
    assert "--epochs 1: " in capsys.readouterr().err
    assert resume(cut.run_dir) == 0
    assert f"resuming {cut.run_dir} at epoch 2, step 2" in capsys.readouterr().err


def test_checkpoints_load_with_weights_only(finished):
    state = torch.load(finished / "last.pt", weights_only=True)
    assert isinstance(state["rng"]["numpy"]["keys"], torch.Tensor) and state["version"] == 2
    assert state["best_epoch"] in (1, 2)


# -- a run directory written by the previous format (checkpoint version 1) --------------------------------------
NEW_KEYS = ("save_every", "ddp_timeout")


def to_old_format(run: Path) -> None:
    """Rewrite a run directory the way the code before checkpoint version 2 wrote it: NumPy's RNG state as its
    array tuple (so ``weights_only=True`` alone cannot load it), no best_epoch, and config.json / the checkpoint's
    config without the settings added since."""
    for name in ("last.pt", "best.pt"):
        if not (run / name).is_file():
            continue
        state = load_checkpoint(run / name)
        rng = state["rng"]
        numpy_state = rng["numpy"]
        rng["numpy"] = (numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                        numpy_state["has_gauss"], numpy_state["gauss"])
        state["version"] = 1
        del state["best_epoch"]
        for key in NEW_KEYS:
            del state["config"][key]
        torch.save(state, run / name)
    values = json.loads((run / "config.json").read_text())
    for key in NEW_KEYS:
        del values[key]
    (run / "config.json").write_text(json.dumps(values, indent=2))


def test_a_run_directory_in_the_old_format_resumes_exactly_and_evaluates(tmp_path, capsys):
    overrides = {"mix.method": "cutmix", "mix.prob": 0.8}
    whole = train(tiny(tmp_path / "a", **overrides))
    cut = train(tiny(tmp_path / "b", **overrides), interrupt_at=9)
    to_old_format(cut.run_dir)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(cut.run_dir / "last.pt", weights_only=True)
    assert resume(cut.run_dir) == 0
    assert f"resuming {cut.run_dir} at epoch 2, step 3" in capsys.readouterr().err
    assert same_weights(weights(whole.run_dir), weights(cut.run_dir))
    summary = json.loads((cut.run_dir / "summary.json").read_text())
    assert summary["best_epoch"] == load_checkpoint(cut.run_dir / "best.pt")["epoch"]

    finished = train(tiny(tmp_path / "c", **overrides)).run_dir
    to_old_format(finished)
    assert cli.main(["eval", str(finished), "--suite", "cls", "--no-figures", "--no-progress", "--device",
                     "cpu"]) == 0
    assert json.loads((finished / "eval.json").read_text())["cls"]["num_samples"] == 96


# -- no work lost on a crash -------------------------------------------------------------------------------------
def crash_at(monkeypatch, step: int) -> None:
    """Make the training step raise at global ``step``: a crash, not a signal, so nothing is saved on the way out."""
    real = engine.Trainer._step

    def step_or_crash(self, images, labels):
        if self.global_step == step:
            raise RuntimeError("simulated crash")
        return real(self, images, labels)

    monkeypatch.setattr(engine.Trainer, "_step", step_or_crash)


def test_save_every_lets_a_crashed_run_resume_bit_exactly(tmp_path, monkeypatch, capsys):
    overrides = {"mix.method": "cutmix", "mix.per_sample": True, "mix.prob": 0.8, "mix.schedule": "linear"}
    whole = train(tiny(tmp_path / "a", **overrides))
    with monkeypatch.context() as m:
        crash_at(m, 11)  # epoch 2, step 5: the last checkpoint is the mid-epoch one at global step 10
        with pytest.raises(RuntimeError, match="simulated crash"):
            train(tiny(tmp_path / "b", save_every=5, **overrides))
    run = tmp_path / "b" / whole.run_dir.name
    state = load_checkpoint(run / "last.pt")
    assert (state["global_step"], state["epoch"], state["step_in_epoch"]) == (10, 1, 4)
    assert resume(run) == 0
    assert f"resuming {run} at epoch 2, step 4" in capsys.readouterr().err
    assert same_weights(weights(whole.run_dir), weights(run))
    assert [m["train_loss"] for m in whole.metrics] == [
        json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def fake_errors(monkeypatch, errors: dict[int, float]) -> None:
    """Validation errors by epoch (1-based), so that which epoch is best is known in advance."""

    def evaluate(self, loader, prefix="val"):
        err = errors[self.epoch + 1]
        return {f"{prefix}_loss": err, f"{prefix}_top1_err": err, f"{prefix}_top5_err": err / 2,
                f"{prefix}_images": 96}

    monkeypatch.setattr(engine.Trainer, "evaluate", evaluate)


def fail_write(monkeypatch, name: str, nth: int) -> None:
    """The ``nth`` write of checkpoint ``name`` fails as on a full disk."""
    real = engine.save_checkpoint
    count = {"n": 0}

    def save(state, path):
        if Path(path).name == name:
            count["n"] += 1
            if count["n"] == nth:
                raise OSError(errno.ENOSPC, "cannot write the checkpoint (No space left on device)", str(path))
        return real(state, path)

    monkeypatch.setattr(engine, "save_checkpoint", save)


def consistent(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    best = load_checkpoint(run / "best.pt")
    assert summary["best_epoch"] == best["epoch"] and summary["best_val_top1_err"] == best["best_val_top1_err"]
    assert summary["best_checkpoint"] == "best.pt"


def test_a_failed_best_write_cannot_leave_a_stale_best(tmp_path, monkeypatch, capsys):
    fake_errors(monkeypatch, {1: 0.5, 2: 0.3, 3: 0.4})
    with monkeypatch.context() as m:
        fail_write(m, "best.pt", 2)  # epoch 2 improves, and its best.pt write fails
        args = ["train", "--model", "resnet8", "--train-samples", "192", "--val-samples", "96", "--epochs", "3",
                "--batch-size", "32", "--out", str(tmp_path), "--name", "r", "--no-progress", "--device", "cpu"]
        assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"cutmix train: failed: {tmp_path / 'r' / 'best.pt'}: cannot write the checkpoint (No space "
                        "left on device)")
    assert "Traceback" not in err
    assert load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 1  # last.pt was not written past best.pt
    assert resume(tmp_path / "r") == 0
    consistent(tmp_path / "r")
    assert load_checkpoint(tmp_path / "r" / "best.pt")["epoch"] == 2


def test_a_failed_last_write_after_best_keeps_them_in_agreement(tmp_path, monkeypatch, capsys):
    fake_errors(monkeypatch, {1: 0.5, 2: 0.3, 3: 0.4})
    with monkeypatch.context() as m:
        fail_write(m, "last.pt", 2)  # epoch 2: best.pt written, then last.pt fails
        with pytest.raises(OSError, match="No space left"):
            train(tiny(tmp_path, epochs=3, name="r", **{"mix.method": "none"}))
    run = tmp_path / "r"
    assert load_checkpoint(run / "best.pt")["epoch"] == 2 and load_checkpoint(run / "last.pt")["epoch"] == 1
    fake_errors(monkeypatch, {2: 0.6, 3: 0.4})  # the redone epoch 2 does not reproduce its result (as on a GPU)
    assert resume(run) == 0
    assert "best.pt holds epoch 2, newer than last.pt" in capsys.readouterr().err
    consistent(run)
    assert load_checkpoint(run / "best.pt")["epoch"] == 2


def test_orphan_temporary_files_are_removed_on_resume(tmp_path, capsys):
    cut = train(tiny(tmp_path, **{"mix.method": "none"}), interrupt_at=3)
    orphans = [cut.run_dir / ".last.pt.x1y2.tmp", cut.run_dir / ".best.pt.abc.tmp", cut.run_dir / ".metrics.jsonl.tmp"]
    for path in orphans:
        path.write_bytes(b"half a file")
    (cut.run_dir / "notes.tmp").write_text("not ours")  # a visible file is the user's, left alone
    assert resume(cut.run_dir) == 0
    assert "removed 3 temporary file(s) left by a killed write" in capsys.readouterr().err
    assert not any(p.exists() for p in orphans) and (cut.run_dir / "notes.tmp").exists()


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    def full(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    args = ["train", "--model", "resnet8", "--train-samples", "64", "--val-samples", "32", "--epochs", "1",
            "--batch-size", "32", "--out", str(tmp_path), "--name", "d", "--no-progress", "--device", "cpu"]
    assert cli.main(args) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line or "failed" in line]
    assert err == [f"cutmix train: failed: {tmp_path / 'd' / 'best.pt'}: cannot write the checkpoint (No space left "
                   "on device)"]
    assert not list((tmp_path / "d").glob(".*.tmp"))


def test_two_resumes_of_one_run_cannot_run_at_once(tmp_path, capsys):
    cut = train(tiny(tmp_path, **{"mix.method": "none"}), interrupt_at=3)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from cutmix.train.rundir import RunLock; "
         f"RunLock({str(cut.run_dir)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert resume(cut.run_dir) == 2
        assert f"{cut.run_dir} is in use by another cutmix train (pid {holder.pid})" in capsys.readouterr().err
        assert load_checkpoint(cut.run_dir / "last.pt")["global_step"] == 3  # untouched
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert resume(cut.run_dir) == 0  # the lock died with its process


def test_rng_states_round_trip_in_both_forms():
    saved = ckpt.rng_state()
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(1))
    ckpt.set_rng_state(saved)
    assert (random.random(), np.random.rand(), np.random.randn()) == expected[:3] and torch.equal(torch.rand(1),
                                                                                                  expected[3])
    old = {"python": saved["python"], "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    again = np.random.rand()
    ckpt.set_rng_state(old)
    assert np.random.rand() == again
