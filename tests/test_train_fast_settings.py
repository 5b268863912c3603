"""The fast preset's settings on a CPU: flags, the compile fallback, no per-step host syncs, channels_last, bf16,
resume of the kernel choice. CUDA-only checks are marked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from _helpers import RaisesOnCall
from _helpers import tiny_config as tiny

from cutmix.run import config as cfg
from cutmix.run.checkpoint import load_checkpoint
from cutmix.train import engine

pytest.importorskip("torchvision")

def test_fast_path_flags_reach_the_config():
    from cutmix import cli

    parser = cli.argparse.ArgumentParser()
    cli._train_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--preset", "cifar10-resnet18-fast", "--resident", "off", "--pad-mode",
                              "reflect", "--optim-impl", "foreach"])
    config = cli.build_config(args)
    assert (config.data.resident, config.data.pad_mode, config.optim.impl) == ("off", "reflect", "foreach")
    fast = (config.epochs, config.batch_size, config.optim.lr, config.amp, config.channels_last, config.compile)
    assert fast == (30, 512, 0.2, "bf16", True, True) and config.model.name == "preact_resnet18"


# -- the engine's fast settings on a CPU --------------------------------------------------------------------------
class _Counting(torch.nn.Module):
    """A working stand-in for a compiled model that counts its calls."""

    calls = 0

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        type(self).calls += 1
        return self.model(x)


def _fast_tiny(tmp_path: Path, **overrides) -> cfg.TrainConfig:
    """The fast preset shrunk to seconds on a CPU: shapes, ResNet-8, a few steps."""
    config = cfg.from_dict(cfg.load_preset("cifar10-resnet18-fast"))
    small = tiny(tmp_path)
    config.data = small.data
    config.model = small.model
    config.batch_size, config.eval_batch_size, config.epochs, config.max_steps = 32, 64, 1, 4
    config.out, config.progress, config.device, config.threads = str(tmp_path), False, "cpu", 1
    for key, value in overrides.items():
        cfg.apply_override(config, f"{key}={json.dumps(value) if not isinstance(value, str) else value}")
    return cfg.validate(config)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pt")["model"]


def test_fast_preset_falls_back_on_cpu_and_matches_the_plain_run(tmp_path, monkeypatch, capsys):
    """amp -> float32 and a failing compile -> eager, one line each; resident data on a CPU; same weights as a run
    with none of the fast settings."""
    monkeypatch.setattr(torch, "compile", lambda model, **kw: RaisesOnCall(model))
    monkeypatch.setattr(engine, "cpu_has_bf16", lambda: False)
    fast = engine.train(_fast_tiny(tmp_path / "fast", **{"data.resident": "on"}))
    err = capsys.readouterr().err
    assert err.count("amp=bf16 needs CUDA or a CPU with bf16 instructions (this one has none)") == 1
    assert err.count("torch.compile failed at the first step (RuntimeError: backend compiler failed)") == 1
    assert "second line" not in err and "SGD loop, channels_last on, compiled, data on the device" in err
    plain = engine.train(_fast_tiny(tmp_path / "plain", amp="none", compile=False, **{"data.resident": "off"}))
    assert fast.metrics[-1]["step"] == plain.metrics[-1]["step"] == 4
    a, b = _weights(fast.run_dir), _weights(plain.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert fast.metrics[-1]["train_loss"] == plain.metrics[-1]["train_loss"]


def test_a_working_compile_trains_every_step_through_the_compiled_model(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kw: _Counting(model))
    _Counting.calls = 0
    result = engine.train(_fast_tiny(tmp_path, amp="none"))
    assert _Counting.calls == 4 and result.metrics[-1]["step"] == 4


def test_no_host_sync_calls_in_the_training_step(tmp_path, monkeypatch):
    """With progress bars off, the step code reads no tensor on the host (.item(), float(), bool(), .tolist())."""
    calls: list[str] = []
    step_code = {"train_epoch", "_step", "_first_compiled_step", "accumulate"}

    def spy(name):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            frame = sys._getframe(1)
            if frame.f_code.co_filename == engine.__file__ and frame.f_code.co_name in step_code:
                calls.append(f"{name} in {frame.f_code.co_name}")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)

    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        spy(name)
    result = engine.train(tiny(tmp_path, epochs=1, max_steps=3, **{"mix.per_sample": True}))
    assert result.metrics[-1]["step"] == 3 and calls == []


@pytest.mark.parametrize("method", ["none", "cutmix", "mixup", "cutout"])
def test_channels_last_reaches_the_model_under_every_mix(tmp_path, request, method):
    from cutmix.models.resnet_cifar import FeatureClassifier

    layouts: list[bool] = []

    def watch(module: torch.nn.Module, inputs: tuple[torch.Tensor]) -> None:
        if isinstance(module, FeatureClassifier) and module.training:  # the model itself, wherever it is built
            layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last))

    hook = torch.nn.modules.module.register_module_forward_pre_hook(watch)
    request.addfinalizer(hook.remove)
    per_sample = method == "cutmix"
    engine.train(tiny(tmp_path, epochs=1, max_steps=2, channels_last=True, **{
        "data.train_samples": 64, "data.val_samples": 32, "mix.method": method, "mix.prob": 1.0,
        "mix.per_sample": per_sample}))
    assert layouts == [True, True]


def test_bf16_autocast_and_channels_last_work_together():
    from cutmix.losses import soft_target_cross_entropy
    from cutmix.models import build_model

    model = build_model("preact_resnet18", 10).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.dtype == torch.bfloat16
    soft_target_cross_entropy(logits, torch.tensor([1, 2])).backward()
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.grad.dtype == torch.float32 and conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_resume_restores_the_kernel_choice_of_this_machine(tmp_path):
    cut = engine.train(tiny(tmp_path, **{"optim.impl": "foreach"}), interrupt_at=3)
    state = load_checkpoint(cut.run_dir / "last.pt")
    state["optimizer"]["param_groups"][0]["foreach"] = None
    state["optimizer"]["param_groups"][0]["fused"] = True  # as if saved by a CUDA run with fused kernels
    config = cfg.load(cut.run_dir / "config.json")
    config.optim.impl = "loop"
    trainer = engine.Trainer(config, engine.distributed.setup("cpu"), cut.run_dir, state)
    group = trainer.optimizer.param_groups[0]
    assert trainer.optim_impl == "loop" and group["fused"] is None and group["foreach"] is False


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_steps_do_not_synchronise(tmp_path):
    """Loader, mix, forward, backward, fused SGD and the metric sums run under sync debug mode "error"."""
    config = _fast_tiny(tmp_path, device="cuda", compile=False, **{"data.resident": "on", "mix.per_sample": True})
    ctx = engine.distributed.setup("cuda")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trainer = engine.Trainer(config, ctx, run_dir)
    assert trainer.optim_impl == "fused" and trainer.data.info["resident"]
    trainer.train_model.train()
    batches = trainer.data.train.epoch(0)
    for _ in range(2):  # warm-up: cuDNN heuristics, allocator growth
        images, labels = next(batches)
        engine.accumulate(trainer.epoch_sums, *trainer._step(images, labels), labels)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            images, labels = next(batches)
            engine.accumulate(trainer.epoch_sums, *trainer._step(images, labels), labels)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(trainer.epoch_sums).all()


@pytest.mark.cuda
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_preset_compiles_and_trains(tmp_path, capsys):
    result = engine.train(_fast_tiny(tmp_path, device="cuda", max_steps=6))
    err = capsys.readouterr().err
    assert "torch.compile failed" not in err and "SGD fused, data on the device" in err
    assert result.metrics[-1]["step"] == 6 and torch.isfinite(torch.tensor(result.metrics[-1]["train_loss"]))


@pytest.mark.skipif(not engine.cpu_has_bf16(), reason="this CPU has no bf16 instructions")
def test_bf16_autocast_trains_on_a_cpu_that_has_bf16(tmp_path, capsys):
    """On a CPU with bf16 instructions --amp bf16 is honoured (no fallback line): the weights differ from float32's."""
    bf16 = engine.train(_fast_tiny(tmp_path / "bf16", compile=False, **{"data.resident": "off"}))
    assert "needs CUDA" not in capsys.readouterr().err
    plain = engine.train(_fast_tiny(tmp_path / "plain", amp="none", compile=False, **{"data.resident": "off"}))
    a, b = _weights(bf16.run_dir), _weights(plain.run_dir)
    assert all(torch.isfinite(a[k].float()).all() for k in a)
    assert not all(torch.equal(a[k], b[k]) for k in a)
    assert abs(bf16.metrics[-1]["train_loss"] - plain.metrics[-1]["train_loss"]) < 0.05
