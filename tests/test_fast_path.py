"""The GPU fast path, checked on a CPU: device-resident loader, compile fallback, SGD kernels, no per-step host syncs,
the fast preset's fallbacks, the step benchmark and the CIFAR-10 run scripts. CUDA-only checks are marked."""

from __future__ import annotations

import importlib.util
import io
import json
import statistics
import sys
import time
import zipfile
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from _helpers import tiny_config as tiny

from cutmix.data import crop_flip_params
from cutmix.run import config as cfg
from cutmix.run.checkpoint import load_checkpoint
from cutmix.runtime import seed_for, stream
from cutmix.train import engine
from cutmix.train.data import _crop_flip
from cutmix.train.loader import AUGMENT, MIX, InMemoryLoader, shard, use_resident
from cutmix.train.mixing import Regularizer

pytest.importorskip("torchvision")

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    """Import a file of scripts/ as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _set(n: int = 23, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8), torch.arange(n)


# -- the device-resident loader -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pad_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("world", [1, 2])
def test_resident_batches_equal_the_host_pipeline(pad_mode, world):
    images, labels = _set()
    augment = partial(_crop_flip, 2, pad_mode)
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
                            augment=partial(_crop_flip, 2, pad_mode))
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
        reg.seek(step, seed_for(0, MIX, 0, step))
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


# -- the engine's fast settings on a CPU --------------------------------------------------------------------------
class _RaisesOnCall(torch.nn.Module):
    """What a failed torch.compile looks like: the wrapper builds, the first call raises."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        raise RuntimeError("backend compiler failed\nsecond line of a long inductor error")


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
    monkeypatch.setattr(torch, "compile", lambda model, **kw: _RaisesOnCall(model))
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
def test_channels_last_reaches_the_model_under_every_mix(tmp_path, monkeypatch, method):
    layouts: list[bool] = []
    build = engine.build_model

    def watch(module: torch.nn.Module, inputs: tuple[torch.Tensor]) -> None:
        if module.training:
            layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last))

    def build_and_watch(*args, **kwargs):
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(watch)
        return model

    monkeypatch.setattr(engine, "build_model", build_and_watch)
    per_sample = method == "cutmix"
    engine.train(tiny(tmp_path, epochs=1, max_steps=2, channels_last=True, **{
        "data.train_samples": 64, "data.val_samples": 32, "mix.method": method, "mix.prob": 1.0,
        "mix.per_sample": per_sample}))
    assert layouts == [True, True]


def test_bf16_autocast_and_channels_last_work_together():
    from cutmix.models import build_model

    model = build_model("preact_resnet18", 10).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert logits.dtype == torch.bfloat16
    engine.soft_target_cross_entropy(logits, torch.tensor([1, 2])).backward()
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


# -- benchmarks -----------------------------------------------------------------------------------------------------
def test_step_benchmark_reports_the_share_of_a_step(tmp_path, capsys):
    from cutmix import cli
    from cutmix.bench import step

    out = tmp_path / "step.json"
    assert cli.main(["bench", "step", "--models", "resnet8:4x3x16x16", "--min-time", "0", "--rounds", "1",
                     "--json", str(out)]) == 0
    assert "| resnet8 | 4x3x16x16 |" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows] == list(step.VARIANTS)
    assert rows[0]["op_ms"] is None and rows[0]["step_growth"] is None
    for r in rows[1:]:
        assert r["step_ms"] > 0 and r["op_ms"] > 0
        assert r["op_share"] == pytest.approx(r["op_ms"] / r["step_ms"], abs=2e-3)
    with pytest.raises(ValueError, match="MODEL:NxCxHxW"):
        step.parse_cells("resnet8:4x3x16")
    assert step.parse_cells("tv:resnet50:2x3x64x64") == (("tv:resnet50", (2, 3, 64, 64)),)


def test_step_benchmark_times_eagerly_when_compile_fails(monkeypatch):
    from cutmix.bench import step

    monkeypatch.setattr(torch, "compile", lambda model, **kw: _RaisesOnCall(model))
    rows = step.cell("resnet8", (2, 3, 8, 8), torch.device("cpu"), compile=True, min_time=0.0, rounds=1)
    assert len(rows) == 3 and not any(r.compiled for r in rows)


def test_op_benchmark_defaults_per_device(capsys):
    from cutmix.bench import ops

    assert ops.main(["--shapes", "4,3,8,8", "--dtypes", "bfloat16", "--threads", "1", "--min-time", "0",
                     "--system-malloc"]) == 0
    out = capsys.readouterr().out
    assert "| 4x3x8x8 | bfloat16 | 1 | sample | cutout |" in out
    assert ops.CUDA_SHAPES == ((256, 3, 32, 32), (128, 3, 224, 224)) and set(ops.CUDA_DTYPES) == set(ops.DTYPES)


# -- the run scripts ----------------------------------------------------------------------------------------------
def _fake_run(root: Path, name: str, seed: int, errs: list[float], *, epochs: int | None = None,
              method: str = "cutmix", epoch_s: float = 10.0, finished: bool = True, **mix) -> None:
    run = root / name
    run.mkdir(parents=True)
    config = cfg.TrainConfig(seed=seed, epochs=epochs or len(errs))
    config.mix.method = method
    for k, v in mix.items():
        setattr(config.mix, k, v)
    cfg.save(config, run / "config.json")
    lines = [{"epoch": i + 1, "val_top1_err": e, "epoch_time_s": epoch_s, "train_images_per_s": 1000.0 * (i + 1)}
             for i, e in enumerate(errs)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    if finished:
        (run / "summary.json").write_text(json.dumps({"epochs": len(errs)}))


def test_collector_pools_seeds_into_a_markdown_table(tmp_path):
    collect = _script("collect_runs")
    _fake_run(tmp_path, "cutmix-s0", 0, [0.30, 0.12, 0.08, 0.06])
    _fake_run(tmp_path, "cutmix-s1", 1, [0.25, 0.09, 0.05, 0.07], epoch_s=20.0)
    _fake_run(tmp_path, "baseline-s0", 0, [0.40, 0.20], method="none")
    _fake_run(tmp_path, "cutmix-gaussian-s0", 0, [0.5], epochs=4, box="gaussian", finished=False)
    runs = collect.read_runs(tmp_path)
    rows = {r["group"]: r for r in (collect.summarise(g, 0.9) for g in collect.ordered_groups(runs, []))}
    cm = rows["cutmix"]
    assert cm["seeds"] == [0, 1] and cm["final_err"][0] == pytest.approx(6.5)
    assert cm["final_err"][1] == pytest.approx(statistics.stdev([6.0, 7.0]))
    assert cm["best_err"][0] == pytest.approx(5.5) and cm["train_s"] == pytest.approx(60.0)
    assert cm["time_to_target_s"] == pytest.approx((30.0 + 40.0) / 2) and cm["reached"] == 2  # err <= 10%
    assert rows["baseline"]["time_to_target_s"] is None and rows["baseline"]["final_err"] == (20.0, None)
    assert rows["cutmix-gaussian"]["unfinished"] == ["cutmix-gaussian-s0 (1/4 epochs)"]
    text = collect.report(runs, target_acc=0.9, order=["baseline", "cutmix"], environment={"gpu": "X"}, title="T")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| baseline | no mixing | 1 (0) | 20.00 | 20.00 | 20 | – |")
    assert table[2].startswith("| cutmix | CutMix, α=1, p=0.5 | 2 (0, 1) | 6.50 ± 0.71 | 5.50 ± 0.71 | 60 | 35 |")
    assert "centre-Gaussian box" in table[3] and "Unfinished, not averaged: cutmix-gaussian-s0 (1/4 epochs)" in text
    assert "Environment: gpu X." in text


def test_collector_bundle_round_trips(tmp_path):
    collect = _script("collect_runs")
    _fake_run(tmp_path / "runs", "mixup-s0", 0, [0.3, 0.2], method="mixup")
    (tmp_path / "runs" / "environment.json").write_text(json.dumps({"torch": "2.11"}))
    assert collect.main([str(tmp_path / "runs"), "--out", str(tmp_path / "a.md"), "--bundle",
                         str(tmp_path / "b.json")]) == 0
    assert collect.main(["--from-bundle", str(tmp_path / "b.json"), "--out", str(tmp_path / "c.md")]) == 0
    assert (tmp_path / "a.md").read_text() == (tmp_path / "c.md").read_text()
    assert "| mixup | Mixup, α=1, p=0.5 | 1 (0) | 20.00 |" in (tmp_path / "a.md").read_text()


def test_collector_merges_bundles_of_several_sessions(tmp_path):
    collect = _script("collect_runs")
    _fake_run(tmp_path / "one", "cutmix-s0", 0, [0.3], epochs=2, finished=False)
    _fake_run(tmp_path / "one", "cutmix-s1", 1, [0.3, 0.1])
    _fake_run(tmp_path / "two", "cutmix-s0", 0, [0.3, 0.2])
    _fake_run(tmp_path / "three", "cutmix-s0", 0, [0.4], epochs=2, finished=False)  # a later, unfinished restart
    bundles = [{"environment": {"gpu": g}, "runs": collect.read_runs(tmp_path / d)}
               for d, g in (("one", "A"), ("two", "B"), ("three", "B"))]
    runs, env = collect.merge_bundles(bundles)
    assert [(r["name"], len(r["metrics"])) for r in runs] == [("cutmix-s0", 2), ("cutmix-s1", 2)]
    assert env == {"1": "gpu A", "2": "gpu B"}
    assert collect.merge_bundles(bundles[1:])[1] == {"gpu": "B"}


def test_reproduce_plan_states_and_commands(tmp_path):
    rep = _script("reproduce_cifar10")
    runs = rep.plan([0, 1], [0])
    assert [r.name for r in runs[:6]] == ["baseline-s0", "mixup-s0", "cutout-s0", "cutmix-s0", "cutmix-p1-s0",
                                          "baseline-s1"]
    assert len(runs) == 15 and runs[-1].name == "cutmix-complete-s0"
    assert [r.name for r in rep.plan([0, 1], [0], ["cutmix-fixed"])] == ["cutmix-fixed-s0"]
    with pytest.raises(ValueError, match="unknown run"):
        rep.plan([0], [0], ["cutmix-huge"])
    run = tmp_path / "cutmix-s0"
    assert rep.state(run) == "new"
    run.mkdir()
    assert rep.state(run) == "broken"
    (run / "last.pt").write_bytes(b"")
    assert rep.state(run) == "resume"
    (run / "summary.json").write_text("{}")
    assert rep.state(run) == "done"
    fresh = rep.command(runs[3], "new", tmp_path, Path("/d"), "P", ["epochs=1"])
    assert fresh[fresh.index("--seed") + 1] == "0" and fresh[fresh.index("--name") + 1] == "cutmix-s0"
    assert fresh[-6:] == ["--set", "mix.alpha=1.0", "--set", "mix.prob=0.5", "--set", "epochs=1"]
    assert rep.command(runs[3], "resume", tmp_path, Path("/d"), "P", [])[-2:] == ["--resume", str(run)]
    for r in runs:  # every planned setting is a real one
        config = cfg.TrainConfig()
        for k, v in r.settings.items():
            cfg.apply_override(config, f"{k}={rep._literal(v)}")
        cfg.validate(config)


def test_train_until_stops_a_run_at_the_deadline():
    rep = _script("reproduce_cifar10")
    started = time.monotonic()
    code = rep.train_until([sys.executable, "-c", "import time; time.sleep(60)"], time.monotonic() + 0.3, grace=0.1)
    assert code is None and time.monotonic() - started < 10
    assert rep.train_until([sys.executable, "-c", "raise SystemExit(4)"], time.monotonic() + 60, grace=1) == 4


def _zip_of_images(path: Path, split: str, per_class: int) -> None:
    from PIL import Image

    g = torch.Generator().manual_seed(len(split))
    with zipfile.ZipFile(path, "w") as z:
        for cls in ("cat", "dog", "ship"):
            for i in range(per_class):
                buf = io.BytesIO()
                Image.fromarray((torch.rand(32, 32, 3, generator=g) * 255).to(torch.uint8).numpy()).save(buf, "PNG")
                z.writestr(f"{split}/{cls}/{i}.png", buf.getvalue())


@pytest.mark.slow
def test_reproduce_script_trains_collects_and_skips_finished_runs(tmp_path, capsys):
    rep = _script("reproduce_cifar10")
    _zip_of_images(tmp_path / "cifar10-train.zip", "train", 8)
    _zip_of_images(tmp_path / "cifar10-test.zip", "test", 4)
    args = ["--data", str(tmp_path), "--out", str(tmp_path / "runs"), "--only", "cutmix", "--seeds", "0",
            "--variant-seeds", "", "--collect", str(tmp_path / "cifar10.md"),
            *(a for s in ("model.name=resnet8", "epochs=1", "batch_size=8", "device=cpu", "compile=false",
                          "threads=1", f"data.cache_dir={tmp_path / 'cache'}") for a in ("--set", s))]
    assert rep.main(args) == 0
    assert (tmp_path / "runs" / "cutmix-s0" / "summary.json").is_file()
    assert "| cutmix | CutMix, α=1, p=0.5 | 1 (0) |" in (tmp_path / "cifar10.md").read_text()
    capsys.readouterr()
    assert rep.main(args) == 0  # nothing left to do
    assert "starting" not in capsys.readouterr().out


# -- CUDA (run by a GPU session) ------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("pad_mode", ["zeros", "reflect"])
def test_cuda_resident_equals_host(pad_mode):
    images, labels = _set(64, 32)
    augment = partial(_crop_flip, 4, pad_mode)
    host = InMemoryLoader(images, labels, 16, train=True, seed=2, augment=augment)
    gpu = InMemoryLoader(images, labels, 16, train=True, seed=2, augment=augment, device="cuda", resident=True)
    assert gpu.images.is_cuda
    for (xa, ya), (xb, yb) in zip(host.epoch(1), gpu.epoch(1), strict=True):
        assert xb.is_cuda and torch.equal(xa, xb.cpu()) and torch.equal(ya, yb.cpu())


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
