"""The benchmarks on a CPU: the step benchmark's share of a step, its eager fallback, the op benchmark's defaults,
the per-sample floor benchmark's self-check."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _helpers import RaisesOnCall

pytest.importorskip("torchvision")

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

    monkeypatch.setattr(torch, "compile", lambda model, **kw: RaisesOnCall(model))
    rows = step.cell("resnet8", (2, 3, 8, 8), torch.device("cpu"), compile=True, min_time=0.0, rounds=1)
    assert len(rows) == 3 and not any(r.compiled for r in rows)


def test_op_benchmark_defaults_per_device(capsys):
    from cutmix.bench import ops

    assert ops.main(["--shapes", "4,3,8,8", "--dtypes", "bfloat16", "--threads", "1", "--min-time", "0",
                     "--system-malloc"]) == 0
    out = capsys.readouterr().out
    assert "| 4x3x8x8 | bfloat16 | 1 | sample | cutout |" in out
    assert ops.CUDA_SHAPES == ((256, 3, 32, 32), (128, 3, 224, 224)) and set(ops.CUDA_DTYPES) == set(ops.DTYPES)


def test_idle_sleeps_before_every_timed_call_and_outside_its_time(monkeypatch):
    """``--idle`` puts the sleep before each sample, not inside it: a call that takes no time still reads ~0 µs."""
    from cutmix.bench import ops

    slept, calls, clock = [], [], [0.0]
    monkeypatch.setattr(ops.time, "sleep", lambda s: (slept.append(s), clock.__setitem__(0, clock[0] + s)))
    monkeypatch.setattr(ops.time, "perf_counter", lambda: clock[0])
    times = ops.time_all({"op": lambda: calls.append(1)}, torch.device("cpu"), min_time=0.02, rounds=2, idle=0.004)
    assert times == {"op": 0.0}
    timed = len(calls) - 3  # three warm-up calls, never after a sleep
    assert timed == len(slept) == 6 and set(slept) == {0.004}  # 10 ms a round: sleeps of 4 ms end it after three


def test_the_where_reference_is_a_per_sample_cutmix():
    """The benchmark's plain anchor mixes what it claims: each image takes one partner's pixels inside one box,
    and its target weighs the partner's label by exactly the share of pixels taken."""
    from cutmix.bench import ops

    n, h, w = 16, 12, 10
    x = torch.arange(n * 3 * h * w, dtype=torch.float32).reshape(n, 3, h, w)  # every pixel of every sample differs
    out, targets = ops.where_reference(x, torch.arange(n), n, torch.Generator().manual_seed(3))
    assert torch.allclose(targets.sum(1), torch.ones(n))
    mixed = 0
    for i in range(n):
        taken = (out[i] != x[i]).all(0)  # [H, W]: all channels from elsewhere, or none
        assert torch.equal(taken, (out[i] != x[i]).any(0))
        if not taken.any():
            assert targets[i, i] == 1
            continue
        mixed += 1
        rows, cols = taken.any(1).nonzero().flatten(), taken.any(0).nonzero().flatten()
        assert taken.sum() == len(rows) * len(cols) == (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)  # a box
        others = targets[i].clone()
        others[i] = 0
        partner = int(others.argmax())
        assert torch.equal(out[i][:, taken], x[partner][:, taken])
        assert targets[i, partner].item() == pytest.approx(taken.sum().item() / (h * w), abs=1e-6)
    assert mixed >= n // 2


def test_the_floor_benchmark_checks_its_parts_and_prints_them():
    """benchmarks/sample_floor.py times the op's own box copies on NumPy and on torch views (each checked
    against the per-pixel selection first) and prints one row per dtype and layout with the box share."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "sample_floor.py"
    done = subprocess.run([sys.executable, str(script), "--shape", "8,3,9,13", "--min-time", "0.01"],
                          capture_output=True, text=True, check=True)
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("| uint8 |")
            or line.startswith("| float32 |")]
    assert [r[1] for r in rows] == ["nchw", "channels_last", "nchw", "channels_last"], done.stdout
    for r in rows:
        assert 0.0 < float(r[2]) < 1.0 and r[3].endswith("(1.00×)") and "".join(r).count("×") == 8


def test_the_out_of_place_benchmark_checks_every_kernel_and_prints_them():
    """benchmarks/out_of_place.py checks each kernel against the per-pixel selection before timing it (an odd
    shape, so boxes reach the edges) and prints one line per dtype, clone first."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "out_of_place.py"
    done = subprocess.run([sys.executable, str(script), "--shape", "8,3,9,13", "--min-time", "0.01"],
                          capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["uint8", "float32"], done.stdout
    for line in lines:
        assert line.split(": ")[1].startswith("clone ") and "(1.00x)" in line
        kernels = re.findall(r"([a-z][a-z, ]*?) [0-9,]+ \([0-9.]+x\)", line.split(": ")[1])
        assert kernels == ["clone", "library", "interleaved", "interleaved, per channel", "write once",
                           "whole rows", "native"], line


def test_the_native_variants_benchmark_checks_each_copy_order_and_prints_it():
    """benchmarks/native_variants.py builds its variants and the shipped kernel, checks each bit for bit, and prints
    the build time and one line per shape and dtype."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "native_variants.py"
    done = subprocess.run([sys.executable, str(script), "--shapes", "8,3,9,13;4,3,80,90", "--min-time", "0.01"],
                          capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"build of the kernel library \(paste\.c, boxes\.c\): [0-9.]+ s", lines[0]), done.stdout
    assert [line.split(":")[0] for line in lines[1:]] == ["8x3x9x13 uint8", "8x3x9x13 float32", "4x3x80x90 uint8",
                                                         "4x3x80x90 float32"], done.stdout
    for line in lines[1:]:
        timings, chosen = line.split(": ", 1)[1].rsplit("; by size: ", 1)
        kernels = re.findall(r"([a-z][a-z, _]*?) [0-9,]+ \([0-9.]+x\)", timings)
        assert kernels == ["copy_", "three spans", "whole plane, then box", "rows, then box", "cached stores",
                           "streamed stores"], line
        assert chosen == "cached", line  # batches far below _native.STREAM_BYTES
