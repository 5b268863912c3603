"""End-to-end training on CPU: artifacts, exact resume, every regulariser, DDP with gloo, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")

from _helpers import free_port
from _helpers import tiny_config as tiny

from cutmix import cli
from cutmix.run import config as cfg
from cutmix.run.checkpoint import load_checkpoint
from cutmix.train.engine import train

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_run_lowers_the_loss_and_writes_every_artifact(tmp_path):
    config = tiny(tmp_path, **{"mix.method": "none", "epochs": 3})
    result = train(config)
    run = result.run_dir
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.jsonl", "last.pt", "best.pt", "curves.png",
                                               "summary.json"}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2, 3] and lines == result.metrics
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert lines[-1]["val_images"] == 96 and 0 <= lines[-1]["val_top1_err"] <= 1
    assert lines[-1]["val_top5_err"] <= lines[-1]["val_top1_err"]
    assert cfg.load(run / "config.json") == config
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["best_val_top1_err"] == min(m["val_top1_err"] for m in lines)
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 3 and state["global_step"] == 3 * (192 // 32) and not state["interrupted"]
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pt")["model"]


@pytest.mark.parametrize("interrupt_at", [4, 6, 9])  # mid-epoch 1, at the epoch boundary, mid-epoch 2
def test_resume_after_interruption_reproduces_the_uninterrupted_weights(tmp_path, interrupt_at):
    overrides = {"mix.method": "cutmix", "mix.per_sample": True, "mix.prob": 0.8, "mix.schedule": "linear"}
    whole = train(tiny(tmp_path / "a", **overrides))
    cut = train(tiny(tmp_path / "b", **overrides), interrupt_at=interrupt_at)
    assert cut.interrupted and load_checkpoint(cut.run_dir / "last.pt")["global_step"] == interrupt_at
    resumed = train(None, resume=cut.run_dir)  # type: ignore[arg-type]
    assert not resumed.interrupted
    a, b = weights(whole.run_dir), weights(resumed.run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [m["train_loss"] for m in whole.metrics] == [m["train_loss"] for m in resumed.metrics]
    assert [m["val_top1_err"] for m in whole.metrics] == [m["val_top1_err"] for m in resumed.metrics]


# Per case: the settings, whether the model's input differs from the clean batch (pixel-level mixing), and whether
# the targets are soft (rows not one-hot). Each regulariser must show at least one of the two in its first steps.
@pytest.mark.parametrize(
    ("overrides", "changes_input", "soft_targets"),
    [
        ({"mix.method": "mixup"}, True, True),
        ({"mix.method": "cutout", "mix.cutout_size": 8}, True, False),
        ({"mix.method": "cutmix+mixup", "mix.prob": 1.0}, True, True),
        ({"mix.method": "cutmix", "mix.box": "gaussian", "mix.label": "onehot"}, True, False),
        ({"mix.method": "cutmix", "mix.box": "fixed", "mix.placement": "inside", "mix.label": "complete"}, True, True),
        ({"mix.method": "feature-cutmix", "mix.layers": ["layer2"], "mix.prob": 1.0}, False, True),
        ({"mix.method": "manifold-mixup", "mix.layers": ["", "layer1", "layer2"], "mix.prob": 1.0}, None, True),
        ({"mix.method": "none", "optim.label_smoothing": 0.1, "optim.schedule": "step"}, False, False),
    ],
)
def test_every_regulariser_trains_and_mixes(tmp_path, monkeypatch, overrides, changes_input, soft_targets):
    """A regulariser that never mixed would train too: so the steps' inputs and targets are compared as well."""
    from cutmix.train.mixing import Regularizer

    seen: list[tuple[bool, bool]] = []  # per step: (the model's input differs from the batch, the targets are soft)
    call = Regularizer.__call__

    def spy(self, model, images, labels):
        clean, inputs = images.clone(), []
        hook = model.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
        try:
            logits, targets = call(self, model, images, labels)
        finally:
            hook.remove()
        soft = targets.ndim == 2 and bool((targets.max(dim=1).values < 1).any())
        if targets.ndim == 1:
            assert torch.equal(targets, labels)  # unmixed: the class indices as they came
        seen.append((not torch.equal(inputs[0], clean), soft))
        return logits, targets

    monkeypatch.setattr(Regularizer, "__call__", spy)
    result = train(tiny(tmp_path, epochs=1, max_steps=3, **overrides))
    assert result.metrics[-1]["step"] == 3 and torch.isfinite(torch.tensor(result.metrics[-1]["train_loss"]))
    assert len(seen) == 3
    if changes_input is not None:
        assert any(changed for changed, _ in seen) == changes_input
    assert any(soft for _, soft in seen) == soft_targets


def test_mixing_changes_the_targets_the_model_sees(tmp_path):
    mixed = train(tiny(tmp_path, epochs=1, **{"mix.prob": 1.0}))
    plain = train(tiny(tmp_path, epochs=1, **{"mix.method": "none"}))
    assert mixed.metrics[0]["mean_top_target_per_rank"][0] < 0.95
    assert plain.metrics[0]["mean_top_target_per_rank"] == [1.0]


def test_cli_train_runs_and_reports_errors(tmp_path, capsys):
    args = ["train", "--model", "resnet8", "--train-samples", "64", "--val-samples", "32", "--epochs", "1",
            "--batch-size", "32", "--out", str(tmp_path), "--name", "cli", "--no-progress", "--device", "cpu"]
    assert cli.main(args) == 0
    assert (tmp_path / "cli" / "last.pt").is_file()
    assert cli.main([*args, "--name", "other", "--data", str(tmp_path / "missing.zip")]) == 2
    assert "missing.zip does not exist" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_zip_of_an_image_folder_trains(tmp_path):
    import zipfile
    from io import BytesIO

    from PIL import Image

    g = torch.Generator().manual_seed(0)
    with zipfile.ZipFile(tmp_path / "toy.zip", "w") as z:
        for cls in ("a", "b", "c"):
            for i in range(12):
                pixels = (torch.rand(12, 12, 3, generator=g) * 255).to(torch.uint8).numpy()
                buf = BytesIO()
                Image.fromarray(pixels).save(buf, format="PNG")
                z.writestr(f"toy/{cls}/{i}.png", buf.getvalue())
    config = tiny(tmp_path / "runs", **{"data.dataset": str(tmp_path / "toy.zip"),
                                        "data.val": str(tmp_path / "toy.zip"), "data.cache_dir": str(tmp_path / "c"),
                                        "batch_size": 8, "epochs": 1})
    config.data.train_samples = config.data.val_samples = None
    result = train(config)
    assert result.metrics[0]["val_images"] == 36


@pytest.mark.slow
def test_ddp_two_processes_with_gloo(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
           "-m", "cutmix", "train", "--model", "resnet8", "--train-samples", "128", "--val-samples", "70",
           "--epochs", "2", "--batch-size", "16", "--per-sample", "--prob", "1.0", "--device", "cpu",
           "--threads", "1", "--out", str(tmp_path), "--name", "ddp", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2
    assert lines[-1]["val_images"] == 70  # evaluation reduced over both ranks, each sample once
    per_rank = lines[0]["mean_top_target_per_rank"]
    assert len(per_rank) == 2 and per_rank[0] != per_rank[1]  # each rank mixes with its own stream
    state = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert state["global_step"] == 2 * (128 // 2 // 16) and len(state["rng"]) == 2
    assert not any(k.startswith("module.") for k in state["model"])


def test_show_draws_every_regulariser(tmp_path):
    from cutmix.data import load_shapes
    from cutmix.viz.grid import regulariser_rows

    data = load_shapes("val", num_samples=20)
    rows = regulariser_rows(data.images[:4], data.labels[:4], len(data.classes), seed=0)
    assert list(rows)[:3] == ["none", "Cutout 16px", "Mixup"] and len(rows) == 9
    for name, (images, targets) in rows.items():
        assert images.dtype == torch.uint8 and images.shape == (4, 3, 32, 32), name
        assert torch.allclose(targets.sum(1), torch.ones(4)), name
    assert torch.equal(rows["none"][0], data.images[:4])
    assert cli.main(["show", "-n", "4", "--out", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_saves_and_the_run_resumes(tmp_path, sig):
    import signal
    import time

    cmd = [sys.executable, "-m", "cutmix", "train", "--model", "resnet8", "--train-samples", "96",
           "--val-samples", "32", "--epochs", "200", "--batch-size", "32", "--device", "cpu", "--threads", "1",
           "--out", str(tmp_path), "--name", "sig", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "sig" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "last.pt saved" in err
    state = load_checkpoint(tmp_path / "sig" / "last.pt")
    assert state["interrupted"] and state["epoch"] >= 2
    lines = metrics.read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(1, len(lines) + 1))  # no gap, no repeat
    assert len(lines) == state["epoch"]


def test_a_signal_only_requests_a_stop_and_a_second_one_forces_it():
    """The first SIGTERM/SIGINT is deferred to the next step boundary (a whole state to save); the second is not."""
    import signal

    from cutmix.train.engine import ForcedStop, StopRequest

    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to the main thread, handled before kill returns
        assert stop.requested
        with pytest.raises(ForcedStop):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_wall_time_counts_every_resumed_segment(tmp_path):
    config = tiny(tmp_path, **{"mix.method": "none", "epochs": 2})
    first = train(config, interrupt_at=8)
    assert first.interrupted
    elapsed = load_checkpoint(first.run_dir / "last.pt")["elapsed_s"]
    assert elapsed > 0
    train(None, resume=first.run_dir)  # type: ignore[arg-type]
    summary = json.loads((first.run_dir / "summary.json").read_text())
    assert summary["wall_time_s"] >= round(elapsed, 1)
