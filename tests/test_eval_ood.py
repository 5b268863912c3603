"""OOD detection: metrics against scikit-learn, brute force and hand cases; the synthetic OOD sets; the evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from cutmix.evaluate.common import predict_logits
from cutmix.evaluate.ood import (
    METRICS,
    OODResult,
    auroc,
    average_precision,
    detection_accuracy,
    detection_metrics,
    evaluate_ood,
    fit_to_size,
    gaussian_noise,
    grayscale_to_rgb,
    max_softmax_scores,
    shuffled_pixels,
    tnr_at_tpr,
    uniform_noise,
)


def _tied_scores(seed: int) -> tuple[Tensor, Tensor]:
    """In-scores shifted up, both rounded to one decimal so that many values tie within and across the sets."""
    g = torch.Generator().manual_seed(seed)
    s_in = (torch.rand(57, generator=g, dtype=torch.float64) * 0.8 + 0.2).mul(10).round().div(10)
    s_out = (torch.rand(43, generator=g, dtype=torch.float64) * 0.8).mul(10).round().div(10)
    return s_in, s_out


def _brute_tnr(s_in: Tensor, s_out: Tensor, tpr: float) -> float:
    """The best TNR over every candidate threshold that keeps at least ``tpr`` of the in-scores (loop reference)."""
    best = 0.0
    for delta in sorted(set(s_in.tolist()) | set(s_out.tolist())):
        if sum(v >= delta for v in s_in.tolist()) >= tpr * len(s_in) - 1e-9:
            best = max(best, sum(v < delta for v in s_out.tolist()) / len(s_out))
    return best


def _brute_detection_acc(s_in: Tensor, s_out: Tensor) -> float:
    best = 0.0
    for delta in [*sorted(set(s_in.tolist()) | set(s_out.tolist())), math.inf]:
        tpr = sum(v >= delta for v in s_in.tolist()) / len(s_in)
        tnr = sum(v < delta for v in s_out.tolist()) / len(s_out)
        best = max(best, 0.5 * tpr + 0.5 * tnr)
    return best


# -- metrics -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn_with_ties(seed):
    sk = pytest.importorskip("sklearn.metrics")
    s_in, s_out = _tied_scores(seed)
    y = torch.cat([torch.ones(len(s_in)), torch.zeros(len(s_out))]).numpy()
    s = torch.cat([s_in, s_out]).numpy()
    m = detection_metrics(s_in, s_out)
    assert m["auroc"] == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert m["aupr_in"] == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)
    assert m["aupr_out"] == pytest.approx(sk.average_precision_score(1 - y, -s), abs=1e-12)
    assert m["tnr_at_tpr95"] == pytest.approx(_brute_tnr(s_in, s_out, 0.95), abs=1e-12)
    assert m["detection_acc"] == pytest.approx(_brute_detection_acc(s_in, s_out), abs=1e-12)
    # sklearn's ROC curve: the best TNR among points with TPR >= 0.95 is the same number
    fpr, tpr, _ = sk.roc_curve(y, s)
    assert m["tnr_at_tpr95"] == pytest.approx(float((1 - fpr[tpr >= 0.95 - 1e-12]).max()), abs=1e-12)


def test_perfect_separation_gives_one_everywhere():
    m = detection_metrics(torch.tensor([0.9, 0.8, 0.95, 0.7]), torch.tensor([0.1, 0.3, 0.2]))
    assert m == {k: 1.0 for k in METRICS}


def test_reversed_separation():
    s_in, s_out = torch.tensor([0.1, 0.2]), torch.tensor([0.8, 0.9, 0.7])
    m = detection_metrics(s_in, s_out)
    assert m["auroc"] == 0.0 and m["tnr_at_tpr95"] == 0.0
    assert m["detection_acc"] == 0.5  # a constant decision is right on one set: the floor of this metric
    assert m["aupr_in"] == pytest.approx((1 / 4 + 2 / 5) / 2)  # positives found at ranks 4 and 5


def test_identical_distributions():
    s = torch.tensor([0.3, 0.5, 0.5, 0.9, 0.1])
    m = detection_metrics(s, s.clone())
    assert m["auroc"] == 0.5 and m["detection_acc"] == 0.5
    assert auroc(torch.full((7,), 0.4), torch.full((3,), 0.4)) == 0.5


def test_tnr_at_tpr95_hand_case_with_a_tie():
    # 20 in-scores 0, 0.05, ..., 0.95: accepting >= 19 of them allows thresholds up to 0.05. The OOD score equal to
    # the threshold is accepted (rule s >= delta), so only 0.0 is rejected: TNR = 1/4.
    s_in = torch.arange(20, dtype=torch.float64) / 20
    s_out = torch.tensor([0.0, 0.05, 0.06, 0.5], dtype=torch.float64)
    assert tnr_at_tpr(s_in, s_out) == 0.25
    assert tnr_at_tpr(s_in, s_out, tpr=1.0) == 0.0  # threshold 0: nothing is below it
    assert tnr_at_tpr(s_in, s_out, tpr=0.5) == 0.75  # threshold 0.5 (10 of 20 accepted)


def test_average_precision_hand_case():
    # Ranking (desc): pos 0.9, neg 0.8, pos 0.7 -> AP = 1/2 * 1 + 1/2 * 2/3
    assert average_precision(torch.tensor([0.9, 0.7]), torch.tensor([0.8])) == pytest.approx(0.5 + 1 / 3)
    # a tie between a positive and a negative enters as one step: precision 1/2 at recall 1
    assert average_precision(torch.tensor([0.5]), torch.tensor([0.5])) == 0.5


def test_detection_accuracy_hand_case():
    # threshold 0.5: in 3/4 accepted, out 2/2 rejected -> 0.5 * 0.75 + 0.5 * 1
    assert detection_accuracy(torch.tensor([0.6, 0.7, 0.5, 0.2]), torch.tensor([0.1, 0.3])) == 0.875


@pytest.mark.parametrize(
    "s_in, s_out, match",
    [
        (torch.tensor([]), torch.tensor([0.1]), "scores_in is empty"),
        (torch.tensor([0.1]), torch.tensor([]), "scores_out is empty"),
        (torch.zeros(2, 2), torch.tensor([0.1]), "scores_in must be a 1-D"),
        (torch.tensor([0.1, float("nan")]), torch.tensor([0.1]), "scores_in must be finite"),
    ],
)
def test_metrics_reject_bad_scores(s_in, s_out, match):
    with pytest.raises(ValueError, match=match):
        detection_metrics(s_in, s_out)


def test_tnr_rejects_bad_tpr():
    with pytest.raises(ValueError, match=r"tpr must be in \(0, 1\]"):
        tnr_at_tpr(torch.tensor([0.5]), torch.tensor([0.1]), tpr=0.0)


# -- OOD sets ------------------------------------------------------------------------------------------------------
def test_noise_sets_shape_dtype_seed():
    for make in (uniform_noise, gaussian_noise):
        x = make(20, (3, 32, 32), seed=1)
        assert x.shape == (20, 3, 32, 32) and x.dtype == torch.uint8
        assert torch.equal(x, make(20, (3, 32, 32), seed=1))
        assert not torch.equal(x, make(20, (3, 32, 32), seed=2))
    u = uniform_noise(20, (3, 32, 32)).double()
    assert abs(float(u.mean()) - 127.5) < 1.5  # std of the mean is 73.9 / sqrt(61440) = 0.3
    assert int(u.min()) == 0 and int(u.max()) == 255
    gn = gaussian_noise(20, (3, 32, 32), mean=0.5, std=0.25).double() / 255
    assert abs(float(gn.mean()) - 0.5) < 0.01
    assert 0.2 < float(gn.std()) < 0.25  # clipping at 2 std trims it a little
    assert torch.equal(gaussian_noise(2, (1, 2, 2), std=0.0), torch.full((2, 1, 2, 2), 128, dtype=torch.uint8))


def test_noise_sets_reject_bad_arguments():
    with pytest.raises(ValueError, match="shape must be"):
        uniform_noise(2, (32, 32))
    with pytest.raises(ValueError, match="n must be"):
        gaussian_noise(0, (3, 4, 4))
    with pytest.raises(ValueError, match="std must be"):
        gaussian_noise(2, (3, 4, 4), std=-1.0)


def test_fit_to_size_shapes_and_centre_crop():
    x = torch.randint(0, 256, (2, 3, 20, 30), dtype=torch.uint8)
    assert fit_to_size(x, 16).shape == (2, 3, 16, 16)
    assert fit_to_size(x.transpose(2, 3), 12).shape == (2, 3, 12, 12)
    assert fit_to_size(x, 40).shape == (2, 3, 40, 40)  # upsampling too
    # the shorter side already fits: no resampling, only the centre columns 4..11 of 16 are kept
    cols = torch.arange(16, dtype=torch.uint8).view(1, 1, 1, 16).expand(1, 3, 8, 16)
    assert torch.equal(fit_to_size(cols, 8), cols[..., 4:12])
    # a constant image stays constant through the antialiased resize
    const = torch.full((1, 3, 64, 48), 77, dtype=torch.uint8)
    assert torch.equal(fit_to_size(const, 32), torch.full((1, 3, 32, 32), 77, dtype=torch.uint8))
    with pytest.raises(TypeError, match="uint8"):
        fit_to_size(x.float(), 8)
    with pytest.raises(ValueError, match="size must be"):
        fit_to_size(x, 0)


def test_grayscale_to_rgb():
    g = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    rgb = grayscale_to_rgb(g)
    assert rgb.shape == (2, 3, 4, 4) and all(torch.equal(rgb[:, c], g[:, 0]) for c in range(3))
    assert grayscale_to_rgb(rgb) is rgb
    with pytest.raises(ValueError, match="1 or 3 channels"):
        grayscale_to_rgb(torch.zeros(1, 2, 4, 4))


def test_shuffled_pixels_keep_each_images_colours():
    x = torch.randint(0, 256, (3, 3, 6, 5), dtype=torch.uint8)
    y = shuffled_pixels(x, seed=4)
    assert torch.equal(y, shuffled_pixels(x, seed=4)) and not torch.equal(y, x)
    for i in range(3):  # the same multiset of (r, g, b) pixels
        px = sorted(map(tuple, x[i].flatten(1).T.tolist()))
        py = sorted(map(tuple, y[i].flatten(1).T.tolist()))
        assert px == py


# -- the evaluation ------------------------------------------------------------------------------------------------
class Confidence(nn.Module):
    """Two-class logits (k * (mean - 0.5), 0): confident on very dark or bright images, unsure on grey ones."""

    def __init__(self) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: Tensor) -> Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([self.k * (m - 0.5), torch.zeros_like(m)], dim=1)


def test_max_softmax_scores():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    x = torch.randint(0, 256, (7, 3, 4, 4), dtype=torch.uint8)
    s = max_softmax_scores(model, x, batch_size=3)
    assert s.dtype == torch.float32 and s.shape == (7,)
    torch.testing.assert_close(s, predict_logits(model, x).softmax(1).amax(1))


def test_evaluate_ood_separates_extremes_from_noise():
    # In-distribution images are black or white (confident); uniform noise averages to grey (unsure).
    n = 16
    in_images = (torch.arange(n) % 2 * 255).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 8, 8).contiguous()
    noise = uniform_noise(10, (3, 8, 8), seed=0)
    model = Confidence().train()
    result = evaluate_ood(model, in_images, {"uniform": noise, "shuffled": shuffled_pixels(in_images)}, batch_size=5)
    assert isinstance(result, OODResult) and model.training
    assert result.metrics["sets"]["uniform"] == {
        **detection_metrics(result.scores_in, result.scores_out["uniform"]),
        "mean_max_softmax": pytest.approx(float(result.scores_out["uniform"].double().mean())),
        "num_samples": 10,
    }
    assert result.metrics["sets"]["uniform"]["auroc"] == 1.0
    assert result.metrics["sets"]["shuffled"]["auroc"] == 0.5  # constant images: shuffling changes nothing
    assert result.metrics["average"]["auroc"] == 0.75
    assert result.scores_in.shape == (n,) and result.metrics["num_in"] == n
    import json

    json.dumps(result.metrics)


def test_evaluate_ood_rejects_bad_sets():
    model, x = Confidence(), torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="out_sets is empty"):
        evaluate_ood(model, x, {})
    with pytest.raises(ValueError, match=r"out_sets\['gray'\] has images of shape \(1, 8, 8\)"):
        evaluate_ood(model, x, {"gray": torch.zeros(2, 1, 8, 8, dtype=torch.uint8)})
    with pytest.raises(ValueError, match="fit_to_size"):
        evaluate_ood(model, x, {"big": torch.zeros(2, 3, 16, 16, dtype=torch.uint8)})
    with pytest.raises(ValueError, match=r"out_sets\['none'\] is an empty batch"):
        evaluate_ood(model, x, {"none": torch.zeros(0, 3, 8, 8, dtype=torch.uint8)})


# -- figures -------------------------------------------------------------------------------------------------------
def test_plots_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from cutmix.viz.robustness import plot_curve_panels, plot_curves_by_run, plot_score_histograms

    runs = {"baseline": {"x": [0, 8, 16], "y": [0.9, 0.5, 0.1]}, "cutmix": {"x": [0, 8, 16], "y": [0.9, 0.7, 0.2]}}
    paths = [
        plot_curves_by_run(runs, tmp_path / "a.png", "occlusion side (px)", "top-1 accuracy", "center"),
        plot_curve_panels({"center": runs, "boundary": runs}, tmp_path / "b.png", "side (px)", "accuracy"),
        plot_score_histograms(
            torch.rand(50), {"uniform": torch.rand(30), "gaussian": torch.rand(30)}, tmp_path / "c.png", "max softmax"
        ),
    ]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="equal lengths"):
        plot_curves_by_run({"r": {"x": [0, 1], "y": [1.0]}}, tmp_path / "d.png", "x", "y")
    with pytest.raises(ValueError, match="scores_out is empty"):
        plot_score_histograms(torch.rand(5), {}, tmp_path / "e.png")
