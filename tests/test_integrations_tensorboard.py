"""TensorBoardLogger: the event file holds every scalar of the epoch records and the mixed-batch grid."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cutmix.integrations.tensorboard import TensorBoardLogger, epoch_scalars, image_grid

RECORDS = [  # the training engine's epoch records; epoch 1 has no evaluation
    {"epoch": 1, "step": 39, "lr": 0.0999, "train_loss": 2.13, "train_top1_err": 0.805, "epoch_time_s": 12.1,
     "train_images_per_s": 411.3, "mean_top_target_per_rank": [0.864]},
    {"epoch": 2, "step": 78, "lr": 0.0998, "train_loss": 1.89, "train_top1_err": 0.693, "val_loss": 1.71,
     "val_top1_err": 0.61, "val_top5_err": 0.12, "val_images": 1000, "epoch_time_s": 12.4,
     "train_images_per_s": 401.3, "mean_top_target_per_rank": [0.90, 0.80], "note": "text is skipped"},
]


def test_event_file_holds_the_scalars_and_the_grid(tmp_path):
    with TensorBoardLogger(tmp_path) as tb:
        for record in RECORDS:
            tb.log_epoch(record, step=record["epoch"])
        batch = torch.arange(5 * 3 * 6 * 7, dtype=torch.int64).remainder(256).to(torch.uint8).view(5, 3, 6, 7)
        tb.log_images("train/mixed", batch, step=2)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    approx = pytest.approx
    assert scalars["train/loss"] == [(1, approx(2.13)), (2, approx(1.89))]
    assert scalars["train/top1_err"] == [(1, approx(0.805)), (2, approx(0.693))]
    assert scalars["train/lr"] == [(1, approx(0.0999)), (2, approx(0.0998))]
    assert scalars["train/images_per_s"] == [(1, approx(411.3)), (2, approx(401.3))]
    assert scalars["val/loss"] == [(2, approx(1.71))] and scalars["val/top5_err"] == [(2, approx(0.12))]
    assert scalars["val/top1_err"] == [(2, approx(0.61))]
    assert scalars["mix/mean_top_target"] == [(1, approx(0.864)), (2, approx(0.85))]
    assert scalars["mix/mean_top_target/rank1"] == [(2, approx(0.80))]
    assert scalars["time/epoch_s"] == [(1, approx(12.1)), (2, approx(12.4))]
    assert not {"epoch", "step", "note"} & set(scalars)
    (image,) = events.Images("train/mixed")
    assert image.step == 2 and (image.width, image.height) == (5 * 9 + 2, 8 + 2)  # 5 images of 7+2 by 6+2 px


def test_grid_places_every_image_exactly():
    images = torch.randint(0, 256, (5, 3, 4, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    grid = image_grid(images, nrow=3, padding=1)
    assert grid.shape == (3, 2 * 5 + 1, 3 * 7 + 1)
    for i in range(5):
        r, c = divmod(i, 3)
        tile = grid[:, 1 + r * 5: 1 + r * 5 + 4, 1 + c * 7: 1 + c * 7 + 6]
        assert torch.equal(tile, images[i].float() / 255)
    assert grid[:, 6:, 15:].abs().sum() == 0  # the empty sixth slot
    normalised = image_grid(torch.tensor([-2.0, 2.0]).view(2, 1, 1, 1), padding=0)
    assert torch.equal(normalised, torch.tensor([[[0.0, 1.0]]]))
    with pytest.raises(ValueError, match=r"1 or 3 channels, got \(2, 2, 4, 4\)"):
        image_grid(torch.zeros(2, 2, 4, 4))


def test_scalars_of_nested_and_odd_values():
    got = dict(epoch_scalars({"epoch": 3, "flag": True, "eval": {"top1_err": 0.25}, "none": None, "empty": []}))
    assert got == {"eval/top1_err": 0.25}
