"""Checkpoints are written atomically: a killed write leaves the previous checkpoint intact."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("numpy")

from cutmix.run import checkpoint as ckpt


def state(value: float) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "epoch": int(value)}


def test_round_trip(tmp_path):
    path = ckpt.save_checkpoint(state(1.0), tmp_path / "last.pt")
    loaded = ckpt.load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], torch.full((3,), 1.0)) and loaded["epoch"] == 1


def test_killed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(state(1.0), path)
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")  # some bytes reach the disk, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(state(2.0), path)
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.load_checkpoint(path)["epoch"] == 1  # the old one, complete
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_truncated_and_missing_files_are_named(tmp_path):
    path = tmp_path / "last.pt"
    ckpt.save_checkpoint(state(1.0), path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match=r"last\.pt is unreadable or truncated"):
        ckpt.load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match=r"nothere\.pt does not exist"):
        ckpt.load_checkpoint(tmp_path / "nothere.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no 'model' entry"):
        ckpt.load_checkpoint(tmp_path / "other.pt")


def test_rng_state_round_trip():
    import random

    import numpy as np

    saved = ckpt.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1))
    ckpt.set_rng_state(saved)
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])
