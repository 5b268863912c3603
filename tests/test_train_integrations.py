"""``cutmix train`` meets the field's tools: timm's mixing flags as aliases, TensorBoard events, plain progress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cutmix import cli

TINY = ["--train-samples", "128", "--val-samples", "64", "--batch-size", "32", "--threads", "1", "--no-compile"]


def resolved(capsys, *flags: str) -> dict:
    assert cli.main(["train", *flags, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("flags, mix, smoothing", [
    (["--cutmix", "1.0"], {"method": "cutmix", "alpha": 1.0, "prob": 1.0, "per_sample": False}, 0.1),
    (["--mixup", "0.2", "--mixup-prob", "0.5"], {"method": "mixup", "alpha": 0.2, "prob": 0.5}, 0.1),
    # timm's switch prob is the chance of CutMix, ours the chance of Mixup
    (["--mixup", "0.8", "--cutmix", "1.0", "--mixup-switch-prob", "0.3", "--smoothing", "0"],
     {"method": "cutmix+mixup", "alpha": 1.0, "mixup_alpha": 0.8, "switch_prob": 0.7}, 0.0),
    (["--cutmix", "0.5", "--mixup-mode", "elem"], {"method": "cutmix", "alpha": 0.5, "per_sample": True}, 0.1),
])
def test_timm_flags_map_onto_the_settings_with_timms_defaults(capsys, flags, mix, smoothing):
    config = resolved(capsys, *flags)
    assert {k: config["mix"][k] for k in mix} == pytest.approx(mix)
    assert config["optim"]["label_smoothing"] == pytest.approx(smoothing)


def test_smoothing_alone_only_smooths(capsys):
    default = resolved(capsys)
    config = resolved(capsys, "--smoothing", "0.2")
    assert config["mix"] == default["mix"] and config["optim"]["label_smoothing"] == pytest.approx(0.2)


def test_timm_mapping_matches_timms_own_mixup_for_the_same_flags():
    """The integration's Mixup, built from the same flags as timm's train.py builds it, agrees with our settings."""
    from cutmix.integrations.timm import mixup_from_flags

    mixup = mixup_from_flags({"mixup": 0.8, "cutmix": 1.0, "mixup_switch_prob": 0.3}, num_classes=10)
    assert (mixup.mixup_alpha, mixup.cutmix_alpha, mixup.switch_prob, mixup.label_smoothing) == (0.8, 1.0, 0.3, 0.1)
    assert mixup.mix_prob == 1.0


@pytest.mark.parametrize("flags, message", [
    (["--cutmix", "1", "--mix", "mixup"], "--mix and timm's mixing flags both set the regulariser"),
    (["--cutmix", "1", "--prob", "0.5"], "--prob and timm's mixing flags"),
    (["--cutmix-minmax", "0.2", "0.8"], "--cutmix-minmax: cutmix train has no equivalent"),
    (["--cutmix", "1", "--mixup-off-epoch", "5"], "--mixup-off-epoch: cutmix train has no equivalent"),
    (["--cutmix", "1", "--mixup-mode", "pair"], "--mixup-mode pair: cutmix train mixes per batch or per sample"),
    (["--mixup-prob", "0.5"], "--mixup-prob has no effect without --mixup or --cutmix > 0"),
])
def test_timm_flags_without_an_exact_counterpart_are_refused_in_one_line(capsys, flags, message):
    assert cli.main(["train", *flags, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def train(tmp_path: Path, name: str, *flags: str) -> Path:
    assert cli.main(["train", *TINY, "--epochs", "2", "--out", str(tmp_path), "--name", name, *flags]) == 0
    return tmp_path / name


def test_tensorboard_events_hold_the_epoch_records_and_change_no_draw(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plain = train(tmp_path, "plain", "--no-progress")
    logged = train(tmp_path, "logged", "--tensorboard", "--no-progress", "--prob", "1")
    capsys.readouterr()
    records = [json.loads(line) for line in (logged / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 2
    # the picture is drawn with its own seed, so the run trains exactly as without TensorBoard (same seed, prob 1
    # vs 0.5 differ, so compare a TensorBoard run against its own twin)
    twin = train(tmp_path, "twin", "--no-progress", "--prob", "1")
    twin_records = [json.loads(line) for line in (twin / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_loss"] for r in records] == [r["train_loss"] for r in twin_records]
    assert [r["val_top1_err"] for r in records] == [r["val_top1_err"] for r in twin_records]
    assert not list(plain.glob("events.out.tfevents.*"))

    events = EventAccumulator(str(logged), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2]
    assert [e.value for e in loss] == pytest.approx([r["train_loss"] for r in records], rel=1e-6)
    assert [e.value for e in events.Scalars("val/top1_err")] == pytest.approx([r["val_top1_err"] for r in records])
    assert "train/lr" in events.Tags()["scalars"] and "train/images_per_s" in events.Tags()["scalars"]
    images = events.Images("train/mixed_batch")
    assert [e.step for e in images] == [1, 2]
    assert (images[0].width, images[0].height) == (8 * 34 + 2, 2 * 34 + 2)  # 16 images of 32 px, 8 a row, padded


def test_tensorboard_resumes_into_the_same_directory(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    run = train(tmp_path, "run", "--tensorboard", "--no-progress")
    assert cli.main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    assert "changed: epochs 2 -> 3" in capsys.readouterr().err
    assert len(list(run.glob("events.out.tfevents.*"))) == 2  # one file per segment, read as one run by TensorBoard


def test_progress_to_a_file_is_plain_lines(tmp_path, capsys):
    train(tmp_path, "bars", "--progress")
    err = capsys.readouterr().err
    assert "\r" not in err and "epoch 2: train loss" in err
