"""The SGD kernels (plain loop, foreach, fused): what auto picks, the fallbacks, and that every choice steps alike."""

from __future__ import annotations

import pytest
import torch

from cutmix.run import config as cfg
from cutmix.train import engine

pytest.importorskip("torchvision")

# -- SGD kernels ----------------------------------------------------------------------------------------------------
def _params() -> list[torch.nn.Parameter]:
    p = torch.nn.Parameter(torch.linspace(-1, 1, 6))
    p.grad = torch.linspace(0.5, -0.5, 6)
    return [p]


def test_sgd_auto_on_cpu_is_the_plain_loop_and_every_choice_steps_alike():
    optimizer, impl = engine.build_optimizer(_params(), cfg.OptimConfig(), torch.device("cpu"))
    assert impl == "loop" and optimizer.param_groups[0]["foreach"] is False
    results = {}
    for choice in ("loop", "foreach", "fused"):
        params = _params()
        optimizer, impl = engine.build_optimizer(params, cfg.OptimConfig(impl=choice), torch.device("cpu"))
        assert impl in engine.SGD_IMPLS and (impl == choice or not engine._sgd_runs(choice, "cpu"))
        for _ in range(3):
            optimizer.step()
        results[impl] = params[0].detach().clone()
    reference = results.pop("loop")
    for impl, value in results.items():
        assert torch.allclose(value, reference, atol=1e-6), impl


def test_sgd_falls_back_along_fused_foreach_loop(monkeypatch):
    runs = {"fused": False, "foreach": True}
    monkeypatch.setattr(engine, "_sgd_runs", lambda impl, device: runs[impl])
    cuda = torch.device("cuda")  # only the choice is made here: SGD does not look at the device when built
    assert engine.build_optimizer(_params(), cfg.OptimConfig(), cuda)[1] == "foreach"
    runs["foreach"] = False
    assert engine.build_optimizer(_params(), cfg.OptimConfig(), cuda)[1] == "loop"
    runs["fused"] = True
    assert engine.build_optimizer(_params(), cfg.OptimConfig(), cuda)[1] == "fused"
    assert engine.build_optimizer(_params(), cfg.OptimConfig(impl="foreach"), cuda)[1] == "loop"


def test_bad_fast_settings_are_named():
    for key, value, message in (("data.resident", "maybe", "data.resident"), ("data.pad_mode", "edge", "pad_mode"),
                                ("optim.impl", "apex", "optim.impl")):
        config = cfg.TrainConfig()
        cfg.apply_override(config, f"{key}={value}")
        with pytest.raises(ValueError, match=message):
            cfg.validate(config)
