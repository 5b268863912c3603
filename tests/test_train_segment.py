"""``cutmix train --task segment``: masks follow the pixels under every regulariser, the loss skips the ignore index,
mIoU is exact on known confusions, runs train, resume exactly and refuse what they cannot honour."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from _helpers import free_port
from torch.nn import functional as F

from cutmix.models.segment import SegResNet, build_segmenter
from cutmix.run.config import TrainConfig
from cutmix.train.engine import train
from cutmix.train.errors import UsageError
from cutmix.train.segment import IGNORE, SegmentRegularizer, SegmentTask, check_config, miou, pixel_loss


def _config(tmp_path, **mix) -> TrainConfig:
    config = TrainConfig(task="segment", epochs=3, batch_size=32, threads=1, progress=False, out=str(tmp_path),
                         seed=3)
    config.data.train_samples, config.data.val_samples, config.data.train_eval_samples = 128, 64, 64
    config.data.image_size, config.data.num_classes = 16, 3
    for key, value in mix.items():
        setattr(config.mix, key, value)
    return config


def _tagged(n: int = 6, h: int = 7, w: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i filled with i + 1 in every channel, its mask filled with i + 1 too."""
    tags = torch.arange(1, n + 1, dtype=torch.uint8).view(n, 1, 1)
    return tags.expand(n, h, w)[:, None].expand(n, 3, h, w).float().contiguous(), tags.expand(n, h, w).clone()


class _Probe(torch.nn.Module):
    """Records the batch it is given and returns fixed scores for 11 classes."""

    def forward(self, x):
        self.seen = x.clone()
        return torch.zeros(x.shape[0], 11, *x.shape[-2:], requires_grad=True)


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("method", ["cutmix", "cutout"])
def test_every_mask_pixel_comes_from_the_image_at_that_place(method, per_sample) -> None:
    config = TrainConfig(task="segment")
    config.mix.method, config.mix.prob, config.mix.per_sample = method, 1.0, per_sample
    reg = SegmentRegularizer(config, 11, 100)
    images, masks = _tagged()
    changed = 0
    for step in range(8):
        reg.prepare(step, seed=step)
        probe = _Probe()
        _, _, mixed = reg(probe, images, masks)
        seen = probe.seen[:, 0]
        if method == "cutmix":  # the mask holds the tag of the image whose pixel is there
            assert torch.equal(mixed.long(), seen.long())
        else:  # erased pixels (value 0) carry the ignore index, the rest the image's own tag
            assert torch.equal(mixed == IGNORE, seen == 0)
            assert torch.equal(mixed[seen != 0].long(), seen[seen != 0].long())
        changed += int(not torch.equal(mixed, masks))
        assert mixed.dtype == masks.dtype and mixed.shape == masks.shape
    assert changed >= 6  # prob 1: (almost) every step mixes (a box can clip to nothing)


def test_mixup_trains_on_both_masks_weighted_by_lambda() -> None:
    config = TrainConfig(task="segment")
    config.mix.method, config.mix.prob = "mixup", 1.0
    reg = SegmentRegularizer(config, 4, 10)
    reg.prepare(0, seed=5)
    torch.manual_seed(0)
    images = torch.rand(4, 3, 5, 6)
    masks = torch.randint(0, 4, (4, 5, 6), dtype=torch.uint8)
    masks[0, 0] = IGNORE
    scores = torch.randn(4, 4, 5, 6)

    class Fixed(torch.nn.Module):
        def forward(self, x):
            self.seen = x
            return scores

    model = Fixed()
    loss, _, hard = reg(model, images, masks)
    reg.prepare(0, seed=5)  # the same draw again, with its parameters
    _, params = reg.mix(images)
    idx, w = params.index, params.lam.float()
    ce = lambda m: F.cross_entropy(scores, m.long(), ignore_index=IGNORE, reduction="none").sum((1, 2))  # noqa: E731
    valid = lambda m: (m != IGNORE).sum((1, 2)).float()  # noqa: E731
    expected = ((w * ce(masks) + (1 - w) * ce(masks[idx])).sum()
                / (w * valid(masks) + (1 - w) * valid(masks[idx])).sum())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert not torch.equal(idx, torch.arange(4))
    keep = w >= 0.5
    assert torch.equal(hard[keep], masks[keep]) and torch.equal(hard[~keep], masks[idx][~keep])


def test_pixel_loss_skips_the_ignore_index() -> None:
    torch.manual_seed(1)
    scores = torch.randn(2, 3, 4, 4)
    masks = torch.randint(0, 3, (2, 4, 4), dtype=torch.uint8)
    masks[1, :2] = IGNORE
    valid = masks != IGNORE
    manual = F.cross_entropy(scores.permute(0, 2, 3, 1)[valid], masks[valid].long())
    assert pixel_loss(scores, masks).item() == pytest.approx(manual.item(), rel=1e-6)
    assert pixel_loss(scores, torch.full_like(masks, IGNORE)).item() == 0.0  # nothing to train on: no NaN


def test_miou_of_a_known_confusion_matrix() -> None:
    confusion = torch.tensor([[8.0, 2, 0], [1, 3, 0], [0, 0, 0]])  # class 2 neither present nor predicted
    scores = miou(confusion)
    assert scores["iou"][0] == pytest.approx(8 / 11) and scores["iou"][1] == pytest.approx(3 / 6)
    assert scores["iou"][2] is None
    assert scores["miou"] == pytest.approx((8 / 11 + 0.5) / 2)
    assert scores["pixel_err"] == pytest.approx(3 / 14)
    task = SegmentTask()
    masks = torch.tensor([[[0, 1], [IGNORE, 2]]], dtype=torch.uint8)
    logits = F.one_hot(torch.tensor([[[0, 2], [1, 2]]]), 3).permute(0, 3, 1, 2).float()
    out = task.eval_scores(task.eval_sums(logits, masks), "val")
    assert out["val_iou"] == [1.0, 0.0, 0.5] and out["val_pixel_err"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("size", [(16, 16), (15, 21), (33, 32)])
def test_segresnet_scores_every_pixel(size) -> None:
    model = SegResNet(8, num_classes=5).eval()
    assert model(torch.rand(2, 3, *size)).shape == (2, 5, *size)


def test_torchvision_segmentation_models_by_name() -> None:
    model = build_segmenter("tv:lraspp_mobilenet_v3_large", 4).eval()
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 4, 64, 64)
    with pytest.raises(ValueError, match="not a torchvision segmentation model"):
        build_segmenter("tv:resnet18", 4)
    with pytest.raises(ValueError, match="--task segment takes resnet8"):
        build_segmenter("pyramidnet200", 4)


def test_a_segmentation_run_lowers_its_loss_and_writes_miou(tmp_path) -> None:
    result = train(_config(tmp_path, method="cutmix", prob=1.0))
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert len(lines[-1]["val_iou"]) == 4 and 0 <= lines[-1]["val_miou"] <= 1
    assert "train_eval_miou" in lines[-1] and lines[-1]["val_images"] == 64
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["task"] == "segment" and summary["best_val_miou"] == max(m["val_miou"] for m in lines)
    assert result.best == summary["best_val_miou"] and result.best_val_top1_err is None
    with pytest.raises(ValueError, match="--task segment run"):
        from cutmix.evaluate.runs import load_run

        load_run(result.run_dir)


def test_a_resumed_segmentation_run_matches_an_uninterrupted_one(tmp_path) -> None:
    whole = train(_config(tmp_path / "a", method="mixup", prob=1.0))
    stopped = train(_config(tmp_path / "b", method="mixup", prob=1.0), interrupt_at=5)
    assert stopped.interrupted
    resumed = train(None, resume=stopped.run_dir)
    assert [m["train_loss"] for m in resumed.metrics] == [m["train_loss"] for m in whole.metrics]
    assert [m["val_miou"] for m in resumed.metrics] == [m["val_miou"] for m in whole.metrics]


@pytest.mark.parametrize(("change", "message"), [
    ({"method": "feature-cutmix"}, "--mix feature-cutmix is not defined for masks"),
    ({"method": "cutmix+mixup"}, "--mix cutmix\\+mixup is not defined for masks"),
    ({"label": "onehot"}, "--label onehot weighs class targets"),
])
def test_settings_a_segmentation_run_cannot_honour_are_refused(change, message) -> None:
    config = TrainConfig(task="segment")
    for key, value in change.items():
        setattr(config.mix, key, value)
    with pytest.raises(UsageError, match=message):
        check_config(config)
    other = TrainConfig(task="segment")
    other.data.dataset = "cifar10"
    with pytest.raises(UsageError, match="--data shapes"):
        check_config(other)


def test_the_cli_refuses_in_one_line(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "cutmix", "train", "--task", "segment", "--mix", "manifold-mixup",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--mix manifold-mixup is not defined for masks" in lines[0]
    assert not list(tmp_path.iterdir())  # no run directory for a failed start


def test_run_names_say_the_task_and_the_rounding() -> None:
    from cutmix.train.rundir import run_name

    config = TrainConfig(task="segment")
    assert run_name(config) == "shapes-segment-resnet20-cutmix-s0"
    config = TrainConfig()
    config.mix.rounding = "reference"
    assert run_name(config) == "shapes-resnet20-cutmix-reference-s0"


@pytest.mark.slow
def test_ddp_segmentation_reduces_the_confusion_over_ranks(tmp_path) -> None:
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
           str(free_port()), "-m", "cutmix", "train", "--task", "segment", "--model", "resnet8", "--set",
           "data.num_classes=3", "--image-size", "16", "--train-samples", "128", "--val-samples", "70", "--epochs",
           "2", "--batch-size", "16", "--per-sample", "--prob", "1.0", "--device", "cpu", "--threads", "1", "--out",
           str(tmp_path), "--name", "ddp", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=root,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["val_images"] == 70 and len(lines[-1]["val_iou"]) == 4  # each image once, over both ranks
    assert len(lines[0]["train_pixels_per_rank"]) == 2
