"""Calibration metrics (reliability bins, ECE, MCE, NLL, Brier) and the reliability diagram."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cutmix.evaluate.calibration import (
    calibration_summary,
    ece_from_bins,
    expected_calibration_error,
    max_calibration_error,
    reliability_bins,
)
from cutmix.evaluate.classify import topk_error

# Two bins (0, 0.5] and (0.5, 1]: bin 0 has mean confidence 0.3 and accuracy 1/2 (gap 0.2, 2 samples),
# bin 1 has mean confidence 0.75 and accuracy 2/4 (gap 0.25, 4 samples).
CONF = torch.tensor([0.2, 0.4, 0.9, 0.7, 0.8, 0.6], dtype=torch.float64)
CORRECT = torch.tensor([True, False, True, True, False, False])


def loop_bins(conf: list[float], correct: list[bool], num_bins: int) -> list[list[tuple[float, bool]]]:
    """The samples of each bin (lo, hi], a confidence of 0 in the first: one comparison per sample and bin."""
    out: list[list[tuple[float, bool]]] = [[] for _ in range(num_bins)]
    for c, ok in zip(conf, correct, strict=True):
        for b in range(num_bins):
            lo, hi = b / num_bins, (b + 1) / num_bins
            if lo < c <= hi or (b == 0 and c == 0.0):
                out[b].append((c, ok))
                break
    return out


def loop_ece_mce(conf: list[float], correct: list[bool], num_bins: int) -> tuple[float, float]:
    ece, mce = 0.0, 0.0
    for members in loop_bins(conf, correct, num_bins):
        if members:
            gap = abs(sum(ok for _, ok in members) / len(members) - sum(c for c, _ in members) / len(members))
            ece += len(members) / len(conf) * gap
            mce = max(mce, gap)
    return ece, mce


def test_ece_and_mce_on_a_hand_computed_two_bin_example():
    assert expected_calibration_error(CONF, CORRECT, 2) == pytest.approx(2 / 6 * 0.2 + 4 / 6 * 0.25)
    assert max_calibration_error(CONF, CORRECT, 2) == pytest.approx(0.25)
    bins = reliability_bins(CONF, CORRECT, 2)
    assert bins["edges"] == [0.0, 0.5, 1.0]
    assert bins["count"] == [2, 4]
    assert bins["confidence"] == pytest.approx([0.3, 0.75])
    assert bins["accuracy"] == pytest.approx([0.5, 0.5])
    assert ece_from_bins(bins) == pytest.approx(expected_calibration_error(CONF, CORRECT, 2))


def test_ece_and_mce_are_zero_for_a_perfectly_calibrated_construction():
    # in every bin the share of correct samples equals their (common) confidence
    conf = torch.tensor([0.25] * 4 + [0.5] * 2 + [0.75] * 4 + [1.0] * 2, dtype=torch.float32)
    correct = torch.tensor([1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1]).bool()  # 1/4, 1/2, 3/4 and 2/2 correct
    assert expected_calibration_error(conf, correct, 10) == 0.0
    assert max_calibration_error(conf, correct, 10) == 0.0


def test_ece_mce_and_bins_agree_with_a_loop_over_samples_on_random_data():
    g = torch.Generator().manual_seed(0)
    conf = torch.cat([torch.rand(500, generator=g, dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0])])
    correct = torch.rand(503, generator=g, dtype=torch.float64) < conf  # roughly calibrated, not exactly
    for num_bins in (1, 7, 15):
        ece, mce = loop_ece_mce(conf.tolist(), correct.tolist(), num_bins)
        assert expected_calibration_error(conf, correct, num_bins) == pytest.approx(ece, abs=1e-12)
        assert max_calibration_error(conf, correct, num_bins) == pytest.approx(mce, abs=1e-12)
        bins = reliability_bins(conf, correct, num_bins)
        members = loop_bins(conf.tolist(), correct.tolist(), num_bins)
        assert bins["count"] == [len(m) for m in members]
        assert bins["confidence"] == pytest.approx([sum(c for c, _ in m) / len(m) for m in members])
        assert bins["accuracy"] == pytest.approx([sum(ok for _, ok in m) / len(m) for m in members])
        assert ece_from_bins(bins) == pytest.approx(ece, abs=1e-12)


def test_bin_edges_are_right_closed_with_zero_in_the_first_bin():
    edges = reliability_bins(torch.tensor([0.5]), torch.tensor([True]), 5)["edges"]
    assert len(edges) == 6 and edges[0] == 0.0 and edges[-1] == 1.0
    # every edge as a confidence: 0 and edges[1] fall in bin 0, edges[i] in bin i - 1, 1.0 in the last bin
    bins = reliability_bins(torch.tensor(edges, dtype=torch.float64), torch.ones(6, dtype=torch.bool), 5)
    assert bins["count"] == [2, 1, 1, 1, 1]
    assert bins["confidence"][0] == pytest.approx(edges[1] / 2)
    assert bins["confidence"][1:] == edges[2:]
    last = reliability_bins(torch.tensor([1.0, 0.0]), torch.tensor([True, False]), 15)["count"]
    assert last[-1] == 1 and last[0] == 1 and sum(last) == 2


def test_empty_bins_have_none_for_confidence_and_accuracy():
    bins = reliability_bins(torch.tensor([0.6, 0.7, 0.7]), torch.tensor([True, False, True]), 4)
    assert bins["count"] == [0, 0, 3, 0]
    assert bins["confidence"][0] is None and bins["accuracy"][3] is None
    assert bins["accuracy"][2] == pytest.approx(2 / 3)
    json.dumps(bins, allow_nan=False)


def test_calibration_summary_matches_the_direct_formulas():
    g = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(64, 5, generator=g)
    labels = torch.randint(0, 5, (64,), generator=g)
    summary = calibration_summary(logits, labels, num_bins=10)
    json.dumps(summary, allow_nan=False)
    nll = brier = conf_sum = 0.0
    confidences, correct = [], []
    for row, y in zip(logits.double().tolist(), labels.tolist(), strict=True):
        exps = [math.exp(v) for v in row]
        p = [e / sum(exps) for e in exps]
        nll -= math.log(p[y])
        brier += sum((pk - (k == y)) ** 2 for k, pk in enumerate(p))
        confidences.append(max(p))
        correct.append(p.index(max(p)) == y)
        conf_sum += max(p)
    assert summary["nll"] == pytest.approx(nll / 64, rel=1e-9)
    assert summary["brier"] == pytest.approx(brier / 64, rel=1e-9)
    assert summary["mean_confidence"] == pytest.approx(conf_sum / 64, rel=1e-9)
    assert summary["accuracy"] == pytest.approx(1 - topk_error(logits, labels, 1))
    assert summary["accuracy"] == pytest.approx(sum(correct) / 64)
    assert summary["overconfidence"] == pytest.approx(summary["mean_confidence"] - summary["accuracy"])
    ece, mce = loop_ece_mce(confidences, correct, 10)
    assert summary["ece"] == pytest.approx(ece, abs=1e-9)
    assert summary["mce"] == pytest.approx(mce, abs=1e-9)
    assert summary["bins"]["count"] == [len(m) for m in loop_bins(confidences, correct, 10)]


def test_calibration_summary_is_stable_for_huge_logits():
    logits = torch.tensor([[1000.0, 0.0], [0.0, 1000.0], [0.0, 1000.0]])
    summary = calibration_summary(logits, torch.tensor([0, 1, 0]), num_bins=4)
    assert summary["nll"] == pytest.approx(1000 / 3)  # -log softmax = 0, 0 and 1000
    assert summary["brier"] == pytest.approx(2 / 3)  # 0, 0 and (1 - 0)^2 + (0 - 1)^2 = 2
    assert summary["mean_confidence"] == 1.0
    assert summary["bins"]["count"] == [0, 0, 0, 3]  # confidence exactly 1.0 lands in the last bin
    assert summary["ece"] == pytest.approx(1 / 3) and summary["mce"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: reliability_bins(CONF + 0.5, CORRECT), ValueError, r"confidences must lie in \[0, 1\]"),
        (lambda: reliability_bins(CONF.clone().fill_(float("nan")), CORRECT), ValueError, r"lie in \[0, 1\]"),
        (lambda: reliability_bins(CONF[None], CORRECT), ValueError, r"confidences must be a floating tensor \[N\]"),
        (lambda: reliability_bins(CONF.long(), CORRECT), ValueError, r"confidences must be a floating tensor \[N\]"),
        (lambda: reliability_bins(CONF[:0], CORRECT[:0]), ValueError, "confidences is an empty batch"),
        (lambda: reliability_bins(CONF.tolist(), CORRECT), TypeError, "confidences must be a floating torch.Tensor"),
        (lambda: reliability_bins(CONF, CORRECT.float()), TypeError, "correct must be a bool"),
        (lambda: reliability_bins(CONF, CORRECT[:4]), ValueError, r"correct must have the shape of confidences \(6,\)"),
        (lambda: reliability_bins(CONF, CORRECT, 0), ValueError, "num_bins must be >= 1"),
        (lambda: expected_calibration_error(CONF, CORRECT, 2.0), TypeError, "num_bins must be an int"),
        (lambda: max_calibration_error(CONF, CORRECT, -1), ValueError, "num_bins must be >= 1"),
        (lambda: calibration_summary(torch.zeros(3, 2), torch.tensor([0, 1, 2])), ValueError, r"labels must lie in"),
        (lambda: calibration_summary(torch.zeros(3), torch.tensor([0, 1, 1])), ValueError, r"logits must be \[N, K\]"),
        (
            lambda: ece_from_bins({"count": [0, 0], "accuracy": [None, None], "confidence": [None, None]}),
            ValueError,
            "bins hold no samples",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_plot_reliability_writes_pngs_for_one_run_and_for_an_overlay(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from cutmix.viz.metrics import RELIABILITY_SIZE, plot_reliability

    g = torch.Generator().manual_seed(4)
    logits = 2 * torch.randn(80, 4, generator=g)
    labels = torch.randint(0, 4, (80,), generator=g)
    summary = calibration_summary(logits, labels)
    sparse = reliability_bins(torch.tensor([0.6, 0.95]), torch.tensor([True, False]))  # mostly empty bins
    one = plot_reliability({"cutmix": summary["bins"]}, tmp_path / "one.png", title="reliability")
    many = plot_reliability({"baseline": summary, "cutmix": sparse}, tmp_path / "many.png")
    for path in (one, many):
        assert path.stat().st_size > 0
        with Image.open(path) as image:
            image.load()
            assert image.format == "PNG"
            assert image.width / image.height == pytest.approx(RELIABILITY_SIZE[0] / RELIABILITY_SIZE[1], rel=0.01)


def test_reliability_legend_shows_the_ece_a_summary_carries_and_computes_none():
    from cutmix.viz.metrics import _legend

    summary = calibration_summary(2 * torch.randn(50, 3, generator=torch.Generator().manual_seed(1)),
                                  torch.arange(50) % 3)
    assert _legend("cutmix", summary) == f"cutmix (ECE {100 * summary['ece']:.2f}%)"
    assert _legend("cutmix", summary["bins"]) == "cutmix"


def test_plot_reliability_rejects_bad_runs(tmp_path):
    from cutmix.viz.metrics import plot_reliability

    with pytest.raises(ValueError, match="bins_by_run is empty"):
        plot_reliability({}, tmp_path / "r.png")
    with pytest.raises(ValueError, match="run 'x' is not a reliability_bins dict"):
        plot_reliability({"x": {"count": [1]}}, tmp_path / "r.png")
    bins = reliability_bins(CONF, CORRECT, 2)
    with pytest.raises(ValueError, match="run 'y': edges must have one entry more"):
        plot_reliability({"y": {**bins, "edges": bins["edges"][:2]}}, tmp_path / "r.png")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_calibration_on_cuda_equals_the_cpu_one():
    g = torch.Generator().manual_seed(5)
    logits, labels = torch.randn(50, 6, generator=g), torch.randint(0, 6, (50,), generator=g)
    cpu, gpu = calibration_summary(logits, labels), calibration_summary(logits.cuda(), labels.cuda())
    assert gpu["bins"]["count"] == cpu["bins"]["count"]
    for key in ("ece", "mce", "nll", "brier", "accuracy", "mean_confidence"):
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-9, abs=1e-12)
