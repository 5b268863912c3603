"""MixCallback in a real Lightning Trainer: soft targets in training, hard labels in validation, schedules, resume."""

from __future__ import annotations

import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")

import cutmix  # noqa: E402
from cutmix.integrations.lightning import MixCallback  # noqa: E402

pytestmark = [  # Lightning's advice on workers and logging, and its use of a deprecated torch pytree API
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
]

K = 4


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, K))
        self.train_targets: list[torch.Tensor] = []
        self.train_steps: list[int] = []
        self.val_labels: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        images, targets = batch
        self.train_targets.append(targets.clone())
        self.train_steps.append(self.global_step)
        return cutmix.SoftTargetCrossEntropy()(self.net(images), targets)

    def validation_step(self, batch, batch_idx):
        images, labels = batch
        self.val_labels.append(labels.clone())
        return torch.nn.functional.cross_entropy(self.net(images), labels)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n: int = 12) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.rand(n, 3, 8, 8, generator=g), torch.arange(n) % K)
    return torch.utils.data.DataLoader(data, batch_size=4, shuffle=False)  # 3 batches per epoch


def fit(model, callback, max_steps, tmp_path, ckpt_path=None, val=True):
    trainer = pl.Trainer(max_steps=max_steps, accelerator="cpu", devices=1, callbacks=[callback], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=1 if val else 0, default_root_dir=tmp_path)
    trainer.fit(model, loader(), loader() if val else None, ckpt_path=ckpt_path)
    return trainer


def cutmix_callback(seed: int, **kwargs) -> MixCallback:
    return MixCallback(cutmix.CutMix(K, alpha=1.0, generator=torch.Generator().manual_seed(seed), **kwargs))


def test_training_sees_soft_targets_and_validation_hard_labels(tmp_path):
    model = Tiny()
    trainer = fit(model, cutmix_callback(0), 3, tmp_path)
    assert trainer.global_step == 3 and len(model.train_targets) == 3
    for t in model.train_targets:
        assert t.dtype == torch.float32 and t.shape == (4, K)
        torch.testing.assert_close(t.sum(1), torch.ones(4))
    assert any(((t > 0) & (t < 1)).any() for t in model.train_targets)  # really mixed
    assert model.val_labels, "validation did not run"
    for labels in model.val_labels:
        assert labels.dtype == torch.int64 and torch.equal(labels, torch.arange(4) % K)


def test_schedule_follows_the_trainer_step(tmp_path):
    model = Tiny()
    fit(model, cutmix_callback(1, prob=cutmix.schedule.Linear(0.0, 1.0, 2)), 3, tmp_path, val=False)
    assert model.train_steps == [0, 1, 2]
    onehot = torch.nn.functional.one_hot(torch.arange(4) % K, K).float()
    assert torch.equal(model.train_targets[0], onehot)  # prob 0 at step 0
    assert ((model.train_targets[2] > 0) & (model.train_targets[2] < 1)).any()  # prob 1 at step 2


def test_callback_state_round_trips_through_a_checkpoint(tmp_path):
    straight = Tiny()
    fit(straight, cutmix_callback(7), 5, tmp_path / "straight", val=False)

    first = Tiny()
    callback = cutmix_callback(7)
    trainer = fit(first, callback, 3, tmp_path / "first", val=False)
    ckpt = tmp_path / "three.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)["callbacks"][callback.state_key]["transform"]["_extra_state"]
    assert saved["step"] == 3 and torch.equal(saved["generator"], callback.transform.generator.get_state())

    resumed = Tiny()
    other = cutmix_callback(12345)  # a different seed: only the checkpoint can make it draw the same boxes
    fit(resumed, other, 5, tmp_path / "resumed", ckpt_path=ckpt, val=False)
    assert resumed.train_steps == [3, 4]
    for a, b in zip(straight.train_targets[:3], first.train_targets, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(straight.train_targets[3:], resumed.train_targets, strict=True):
        assert torch.equal(a, b)


def test_tuple_batches_are_refused_with_the_reason():
    callback = cutmix_callback(0)
    with pytest.raises(TypeError, match="must be a list or a dict, got a tuple"):
        callback.on_train_batch_start(None, None, (torch.zeros(2, 3, 8, 8), torch.arange(2)), 0)


def test_dict_batches_with_keys():
    callback = MixCallback(cutmix.MixUp(K, generator=torch.Generator().manual_seed(0)), keys=("pixel_values", "y"))

    class FakeTrainer:
        global_step = 5

    batch = {"pixel_values": torch.rand(4, 3, 8, 8), "y": torch.arange(4), "id": "kept"}
    callback.on_train_batch_start(FakeTrainer(), None, batch, 0)
    assert batch["y"].shape == (4, K) and batch["id"] == "kept"
    assert callback.transform.step == 6  # set to the trainer's step, then advanced by the draw
