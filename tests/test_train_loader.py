"""Counter-based input pipeline: shards, epochs, replay from any step, and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch

from cutmix.run.config import OptimConfig
from cutmix.runtime import seed_for
from cutmix.train.engine import lr_factor
from cutmix.train.loader import InMemoryLoader, shard


def test_seed_for_is_stable_and_distinct():
    assert seed_for(0, 1, 2) == seed_for(0, 1, 2)
    assert len({seed_for(0, 1, r, e, s) for r in range(2) for e in range(3) for s in range(50)}) == 300
    assert 0 <= seed_for(-5, 2**40) < 2**63


@pytest.mark.parametrize("world", [1, 2, 3])
def test_eval_shards_partition_the_set(world):
    parts = [shard(10, epoch=0, seed=0, rank=r, world_size=world, shuffle=False, pad=False) for r in range(world)]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))


def test_train_shards_pad_like_distributed_sampler():
    parts = [shard(10, epoch=4, seed=1, rank=r, world_size=3, shuffle=True, pad=True) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    assert set(torch.cat(parts).tolist()) == set(range(10))
    again = [shard(10, epoch=4, seed=1, rank=r, world_size=3, shuffle=True, pad=True) for r in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(parts, again, strict=True))
    other = shard(10, epoch=5, seed=1, rank=0, world_size=1, shuffle=True, pad=True)
    assert not torch.equal(other, shard(10, epoch=4, seed=1, rank=0, world_size=1, shuffle=True, pad=True))


def flip_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def make_loader(**kwargs) -> InMemoryLoader:
    images = torch.arange(23 * 3 * 4 * 4, dtype=torch.int64).remainder(251).to(torch.uint8).view(23, 3, 4, 4)
    labels = torch.arange(23)
    return InMemoryLoader(images, labels, 5, seed=7, augment=flip_augment, **kwargs)


def test_training_epoch_sees_each_sample_at_most_once_and_drops_the_tail():
    loader = make_loader(train=True)
    labels = torch.cat([y for _, y in loader.epoch(0)])
    assert len(loader) == 4 and labels.numel() == 20 and labels.unique().numel() == 20


def test_evaluation_keeps_order_and_the_last_partial_batch():
    loader = make_loader(train=False)
    assert torch.equal(torch.cat([y for _, y in loader.epoch(0)]), torch.arange(23)) and len(loader) == 5


def test_resume_from_any_step_replays_the_same_batches():
    loader = make_loader(train=True)
    full = list(loader.epoch(3))
    for start in range(len(loader)):
        tail = list(make_loader(train=True).epoch(3, start))
        assert len(tail) == len(full) - start
        for (xa, ya), (xb, yb) in zip(full[start:], tail, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_ranks_draw_disjoint_batches():
    a = torch.cat([y for _, y in make_loader(train=True, rank=0, world_size=2).epoch(0)])
    b = torch.cat([y for _, y in make_loader(train=True, rank=1, world_size=2).epoch(0)])
    assert not set(a.tolist()) & set(b.tolist())


def test_batch_larger_than_the_set_is_an_error():
    with pytest.raises(ValueError, match="batch_size 50 is larger than the 23 training samples"):
        InMemoryLoader(torch.zeros(23, 3, 4, 4, dtype=torch.uint8), torch.zeros(23, dtype=torch.long), 50,
                       train=True)


def test_lr_schedules():
    cos = OptimConfig(schedule="cosine", warmup_epochs=1)
    assert lr_factor(0, 100, 10, cos) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, cos) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, cos) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, cos) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, cos) == pytest.approx(0.0, abs=1e-12)
    step = OptimConfig(schedule="step", milestones=[0.5, 0.75], gamma=0.1)
    assert [lr_factor(s, 300, 1, step) for s in (0, 149, 150, 224, 225, 299)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(7, 10, 1, OptimConfig(schedule="constant")) == 1.0
    assert math.isfinite(lr_factor(0, 1, 1, cos))
