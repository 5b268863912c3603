"""The engine's regulariser mixes with the requested probability: per batch, per sample and on a linear ramp."""

from __future__ import annotations

import pytest
import torch

from cutmix.run import config as cfg
from cutmix.runtime import seed_for
from cutmix.train.loader import MIX
from cutmix.train.mixing import Regularizer

pytest.importorskip("torchvision")

# -- the mix is applied with the requested probability ------------------------------------------------------------
def _changed(method: str, prob: float, steps: int, **mix) -> torch.Tensor:
    """[steps, 8]: which images of a batch the regulariser changed at each engine step (seeded like the engine).

    Image i is filled with the value i + 1, so that any paste, blend or erase (with 0) shows; 16x16 keeps empty
    CutMix boxes (side rounded to 0) below 0.1%.
    """
    config = cfg.MixConfig(method=method, prob=prob, **mix)
    seen: list[torch.Tensor] = []
    images = torch.arange(1, 9, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 3, 16, 16).contiguous()

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append((x != images).flatten(1).any(1))
        return torch.zeros(8, 4)

    reg = Regularizer(config, torch.nn.Identity(), 4, steps)
    for step in range(steps):
        reg.prepare(step, seed_for(0, MIX, 0, step))
        reg(model, images, torch.arange(8) % 4)
    return torch.stack(seen).float()


@pytest.mark.parametrize(("method", "prob"), [("cutmix", 0.5), ("cutmix", 0.2), ("mixup", 0.7)])
def test_a_batch_is_mixed_with_the_requested_probability(method, prob):
    steps = 1500
    rate = _changed(method, prob, steps).amax(1).mean().item()  # a mixed batch changes some image
    assert abs(rate - prob) < 4.5 * (prob * (1 - prob) / steps) ** 0.5 + 0.002  # 4.5 sigma


@pytest.mark.parametrize(("method", "prob", "expected"), [
    ("cutmix", 0.3, 0.3 * 7 / 8),  # a selected image whose partner is itself (P = 1/8) does not change
    ("cutout", 0.4, 0.4),
])
def test_samples_are_mixed_with_the_requested_probability(method, prob, expected):
    changed = _changed(method, prob, 1000, per_sample=True)
    assert abs(changed.mean().item() - expected) < 4.5 * (expected * (1 - expected) / changed.numel()) ** 0.5 + 0.002


def test_scheduled_probability_ramps_linearly():
    mixed = _changed("cutmix", 1.0, 2000, schedule="linear").amax(1)
    first, second = mixed[:1000].mean().item(), mixed[1000:].mean().item()
    assert abs(first - 0.25) < 0.06 and abs(second - 0.75) < 0.06  # the mean of a 0 -> 1 ramp over each half
