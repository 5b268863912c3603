"""The device-resident loader, checked on a CPU: its batches equal the host pipeline's, every sample once per
epoch, and when it is used. The CUDA check is marked."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from cutmix.data import crop_flip_params
from cutmix.run import config as cfg
from cutmix.runtime import stream
from cutmix.train.data import crop_flip
from cutmix.train.loader import AUGMENT, InMemoryLoader, shard, use_resident

pytest.importorskip("torchvision")

def _set(n: int = 23, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8), torch.arange(n)


# -- the device-resident loader -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pad_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("world", [1, 2])
def test_resident_batches_equal_the_host_pipeline(pad_mode, world):
    images, labels = _set()
    augment = partial(crop_flip, 2, pad_mode)
    for rank in range(world):
        for train in (True, False):
            kwargs = {"train": train, "seed": 5, "rank": rank, "world_size": world,
                      "augment": augment if train else None}
            host = InMemoryLoader(images, labels, 4, **kwargs)
            resident = InMemoryLoader(images, labels, 4, resident=True, **kwargs)
            for epoch, start in ((0, 0), (3, 0), (3, 2)):  # a resume mid-epoch replays the same batches
                a, b = list(host.epoch(epoch, start)), list(resident.epoch(epoch, start))
                assert len(a) == len(b) == len(host) - start
                for (xa, ya), (xb, yb) in zip(a, b, strict=True):
                    assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("pad_mode", ["zeros", "reflect"])
def test_resident_batches_are_padded_cropped_and_flipped_samples_of_the_epoch_order(pad_mode):
    """Against a per-sample loop: pad, take the window at the drawn offsets, flip when drawn."""
    images, labels = _set()
    loader = InMemoryLoader(images, labels, 5, train=True, seed=1, resident=True,
                            augment=partial(crop_flip, 2, pad_mode))
    order = shard(23, epoch=2, seed=1, rank=0, world_size=1, shuffle=True, pad=True)
    for step, (x, y) in enumerate(loader.epoch(2)):
        idx = order[step * 5 : (step + 1) * 5]
        oy, ox, flips = crop_flip_params(5, 2, stream(1, AUGMENT, 0, 2, step))
        assert torch.equal(y, idx)
        for i, j in enumerate(idx.tolist()):
            padded = F.pad(images[j : j + 1].double(), (2, 2, 2, 2), mode="constant" if pad_mode == "zeros"
                           else "reflect")[0]
            window = padded[:, int(oy[i]) : int(oy[i]) + 8, int(ox[i]) : int(ox[i]) + 8]
            assert torch.equal(x[i], (window.flip(-1) if flips[i] else window).to(torch.uint8))


@pytest.mark.parametrize(("n", "world", "duplicates"), [(24, 1, 0), (24, 2, 0), (23, 2, 1), (22, 3, 2)])
def test_resident_epoch_draws_every_sample_once(n, world, duplicates):
    """Two batches per rank drop nothing: the ranks together see each sample once, plus the wrap-around padding
    that evens out the ranks (as DistributedSampler does), and each epoch has its own order."""
    images, labels = _set(n)
    batch = -(-n // world) // 2
    seen = {}
    for epoch in (4, 5):
        for rank in range(world):
            loader = InMemoryLoader(images, labels, batch, train=True, seed=3, rank=rank, world_size=world,
                                    resident=True)
            assert len(loader) == 2
            seen[epoch, rank] = torch.cat([y for _, y in loader.epoch(epoch)])
        everything = torch.cat([seen[epoch, r] for r in range(world)])
        assert sorted(set(everything.tolist())) == list(range(n)) and everything.numel() == n + duplicates
    for a in range(world):
        for b in range(a + 1, world):
            assert len(set(seen[4, a].tolist()) & set(seen[4, b].tolist())) <= duplicates
    assert not torch.equal(seen[4, 0], seen[5, 0])


def test_use_resident_decides_by_mode_device_and_free_memory():
    assert not use_resident("auto", "cpu", 10)
    assert use_resident("on", "cpu", 10) and not use_resident("off", "cuda", 10, free_bytes=10**12)
    assert use_resident("auto", "cuda", 250, free_bytes=1000)
    assert not use_resident("auto", "cuda", 251, free_bytes=1000)
    assert use_resident("auto", "cuda:1", 500, free_bytes=1000, fraction=0.5)
    with pytest.raises(ValueError, match=r"data\.resident must be one of"):
        use_resident("yes", "cpu", 1)


def test_resident_on_needs_an_in_memory_training_set():
    from cutmix.data import load_shapes
    from cutmix.train.data import _resident
    from cutmix.train.distributed import Context

    config = cfg.TrainConfig()
    config.data.resident = "on"
    shapes = load_shapes("val", num_samples=8)
    assert _resident(config, Context(), (shapes, shapes))
    with pytest.raises(ValueError, match=r"data\.resident='on' needs a training set held in memory"):
        _resident(config, Context(), (object(), shapes))
    config.data.resident = "auto"
    assert not _resident(config, Context(), (shapes, shapes))  # auto is off on a CPU


# -- CUDA (run by a GPU session) ------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("pad_mode", ["zeros", "reflect"])
def test_cuda_resident_equals_host(pad_mode):
    images, labels = _set(64, 32)
    augment = partial(crop_flip, 4, pad_mode)
    host = InMemoryLoader(images, labels, 16, train=True, seed=2, augment=augment)
    gpu = InMemoryLoader(images, labels, 16, train=True, seed=2, augment=augment, device="cuda", resident=True)
    assert gpu.images.is_cuda
    for (xa, ya), (xb, yb) in zip(host.epoch(1), gpu.epoch(1), strict=True):
        assert xb.is_cuda and torch.equal(xa, xb.cpu()) and torch.equal(ya, yb.cpu())
