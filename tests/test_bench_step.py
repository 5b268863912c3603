"""`cutmix bench step --formats`: the unmixed training step in each memory format / compile setting, side by side."""

from __future__ import annotations

import json

import pytest
import torch

from cutmix import cli
from cutmix.bench import step


def test_formats_are_timed_side_by_side_with_the_speedup_over_eager(tmp_path, capsys):
    out = tmp_path / "step.json"
    assert cli.main(["bench", "step", "--models", "resnet8:4x3x16x16", "--formats", "eager,channels_last",
                     "--min-time", "0", "--rounds", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| resnet8 | 4x3x16x16 | eager |" in text and "| resnet8 | 4x3x16x16 | channels_last |" in text
    rows = [r for r in json.loads(out.read_text())["rows"] if "format" in r]
    assert [r["format"] for r in rows] == ["eager", "channels_last"]
    eager, nhwc = rows
    assert eager["speedup"] == 1.0
    # stored to 3 decimals: a slow cell (a speedup of 0.035 under load) needs the absolute half-unit too
    assert nhwc["speedup"] == pytest.approx(eager["step_ms"] / nhwc["step_ms"], rel=0.01, abs=0.0006)
    for r in rows:
        assert r["images_per_s"] == pytest.approx(4 / r["step_ms"] * 1000, rel=0.01, abs=0.06)  # printed to 0.1


def test_a_failed_compile_is_timed_eagerly_and_says_so(monkeypatch):
    def broken(model, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    rows = step.compare_formats("resnet8", (2, 3, 8, 8), torch.device("cpu"), ("eager", "compile"), min_time=0.0,
                                rounds=1)
    assert [r.format for r in rows] == ["eager", "compile"] and not rows[1].compiled
    assert "(compile failed: eager)" in step.format_formats(rows)


def test_unknown_format_is_named(capsys):
    with pytest.raises(ValueError, match="formats: unknown 'nhwc'"):
        step.compare_formats("resnet8", (2, 3, 8, 8), torch.device("cpu"), ("nhwc",))
    assert cli.main(["bench", "step", "--models", "resnet8:2x3x8x8", "--formats", "eager,nhwc"]) == 2
    assert "--formats: unknown nhwc" in capsys.readouterr().err
