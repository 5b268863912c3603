"""Classification metrics: top-k error, confusion matrix, per-class accuracy, the JSON summary and its figure."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cutmix.evaluate.classify import classification_summary, confusion_matrix, per_class_accuracy, topk_error

# Rank of the label among the logits, per row: 1st, 2nd, 3rd, 1st.
LOGITS = torch.tensor(
    [
        [3.0, 1.0, 2.0],
        [0.0, 5.0, 1.0],
        [2.0, 1.0, 0.0],
        [0.5, 0.1, 0.9],
    ]
)
LABELS = torch.tensor([0, 2, 2, 2])

# predictions / labels and the confusion matrix written out by hand (rows: true class, columns: predicted).
PREDICTIONS = torch.tensor([0, 1, 1, 2, 0, 2, 2])
TRUE = torch.tensor([0, 1, 2, 2, 1, 2, 0])
CONFUSION = torch.tensor(
    [
        [1, 0, 1, 0],
        [1, 1, 0, 0],
        [0, 1, 2, 0],
        [0, 0, 0, 0],
    ]
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_topk_error_on_a_hand_built_example(dtype):
    logits = LOGITS.to(dtype)
    assert topk_error(logits, LABELS, 1) == pytest.approx(0.5)
    assert topk_error(logits, LABELS, 2) == pytest.approx(0.25)
    assert topk_error(logits, LABELS, 3) == 0.0
    assert topk_error(logits, LABELS, 5) == 0.0  # k > K is clipped to K: every label is in the top K
    assert topk_error(logits, LABELS.int(), 1) == pytest.approx(0.5)


def test_topk_error_counts_exactly_the_samples_whose_label_ranks_within_k():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 7, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 7, (200,), generator=g)
    # rank of the label = number of logits strictly larger than the label's (no ties in continuous random data)
    rank = (logits > logits.gather(1, labels[:, None])).sum(dim=1)
    for k in range(1, 8):
        assert topk_error(logits, labels, k) == pytest.approx(float((rank >= k).double().mean()))


def test_confusion_matrix_matches_the_hand_written_one():
    got = confusion_matrix(PREDICTIONS, TRUE, 4)
    assert got.dtype == torch.int64 and torch.equal(got, CONFUSION)
    assert torch.equal(confusion_matrix(PREDICTIONS.to(torch.uint8), TRUE.int(), 3), CONFUSION[:3, :3])


def test_confusion_matrix_agrees_with_sklearn_on_random_data():
    metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(1)
    predictions, labels = torch.randint(0, 9, (300,), generator=g), torch.randint(0, 9, (300,), generator=g)
    expected = metrics.confusion_matrix(labels.numpy(), predictions.numpy(), labels=list(range(9)))
    assert torch.equal(confusion_matrix(predictions, labels, 9), torch.from_numpy(expected).long())


def test_per_class_accuracy_is_recall_and_nan_for_a_class_without_samples():
    acc = per_class_accuracy(CONFUSION)
    assert acc.dtype == torch.float64
    assert acc[:3].tolist() == pytest.approx([0.5, 0.5, 2 / 3])
    assert math.isnan(acc[3])


def test_classification_summary_is_json_ready_and_consistent():
    classes = ["circle", "square", "triangle", "star"]
    logits = torch.zeros(7, 4)
    logits[torch.arange(7), PREDICTIONS] = 1.0  # top-1 prediction = PREDICTIONS, top-2 ties among the rest
    summary = classification_summary(logits, TRUE, classes)
    json.dumps(summary, allow_nan=False)
    assert summary["num_samples"] == 7
    assert summary["top1_err"] == pytest.approx(3 / 7)
    assert summary["top5_err"] == 0.0  # K = 4 < 5: every label is in the top K
    assert summary["confusion"] == CONFUSION.tolist()
    assert summary["per_class_acc"]["circle"] == pytest.approx(0.5)
    assert summary["per_class_acc"]["triangle"] == pytest.approx(2 / 3)
    assert summary["per_class_acc"]["star"] is None
    # lowest first, ties kept in class order, the class without samples left out
    assert [w["class"] for w in summary["worst_classes"]] == ["circle", "square", "triangle"]
    assert [w["accuracy"] for w in summary["worst_classes"]] == pytest.approx([0.5, 0.5, 2 / 3])


def test_classification_summary_lists_fewer_worst_classes_when_there_are_fewer_classes():
    summary = classification_summary(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1]), ["a", "b"])
    assert summary["worst_classes"] == [{"class": "b", "accuracy": 0.0}, {"class": "a", "accuracy": 1.0}]
    assert summary["top1_err"] == 0.5 and summary["top5_err"] == 0.0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: topk_error(LOGITS[0], LABELS, 1), ValueError, r"logits must be \[N, K\]"),
        (lambda: topk_error(LOGITS.long(), LABELS, 1), TypeError, "logits must be a floating tensor"),
        (lambda: topk_error(LOGITS[:0], LABELS[:0], 1), ValueError, "logits is an empty batch"),
        (lambda: topk_error(LOGITS.clone().fill_(float("nan")), LABELS, 1), ValueError, "non-finite"),
        (lambda: topk_error(LOGITS, LABELS[:3], 1), ValueError, r"labels must have shape \(4,\)"),
        (lambda: topk_error(LOGITS, torch.tensor([0, 1, 2, 3]), 1), ValueError, r"labels must lie in \[0, 3\)"),
        (lambda: topk_error(LOGITS, LABELS.float(), 1), TypeError, "labels must be an integer"),
        (lambda: topk_error(LOGITS, LABELS, 0), ValueError, "k must be >= 1"),
        (lambda: topk_error(LOGITS, LABELS, 1.0), TypeError, "k must be an int"),
        (lambda: confusion_matrix(PREDICTIONS.float(), TRUE, 3), TypeError, "predictions must be an integer"),
        (lambda: confusion_matrix(PREDICTIONS, TRUE, 2), ValueError, r"predictions must lie in \[0, 2\)"),
        (lambda: confusion_matrix(PREDICTIONS, TRUE[:5], 3), ValueError, r"labels must have shape \(7,\)"),
        (lambda: confusion_matrix(PREDICTIONS[:0], TRUE[:0], 3), ValueError, "predictions is an empty batch"),
        (lambda: confusion_matrix(PREDICTIONS, TRUE, 0), ValueError, "num_classes must be >= 1"),
        (lambda: per_class_accuracy(CONFUSION[:3]), ValueError, "confusion must be a non-empty square"),
        (lambda: per_class_accuracy(CONFUSION.double()), TypeError, "confusion must hold integer counts"),
        (lambda: per_class_accuracy(-CONFUSION), ValueError, "negative counts"),
        (lambda: classification_summary(LOGITS, LABELS, ["a", "b"]), ValueError, "classes names 2 classes but logits"),
        (lambda: classification_summary(LOGITS, LABELS, ["a", "b", "a"]), ValueError, "duplicate names"),
        (lambda: classification_summary(LOGITS, LABELS, "abc"), TypeError, "classes must be a sequence"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_plot_confusion_writes_a_png_of_the_documented_aspect(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from cutmix.viz.metrics import CONFUSION_ASPECT, plot_confusion

    small = plot_confusion(CONFUSION, ["circle", "square", "triangle", "star"], tmp_path / "c.png", title="t")
    g = torch.Generator().manual_seed(2)
    large = confusion_matrix(torch.randint(0, 25, (400,), generator=g), torch.randint(0, 25, (400,), generator=g), 25)
    big = plot_confusion(large.tolist(), [f"class{i}" for i in range(25)], tmp_path / "big.png")
    for path in (small, big):
        assert path.stat().st_size > 0
        with Image.open(path) as image:
            image.load()
            assert image.format == "PNG"
            assert image.width / image.height == pytest.approx(CONFUSION_ASPECT, rel=0.01)
    with Image.open(small) as a, Image.open(big) as b:
        assert b.height > a.height  # the figure grows with the number of classes


def test_plot_confusion_rejects_mismatched_class_names(tmp_path):
    from cutmix.viz.metrics import plot_confusion

    with pytest.raises(ValueError, match="classes names 2 classes but confusion is 4 x 4"):
        plot_confusion(CONFUSION, ["a", "b"], tmp_path / "c.png")
    with pytest.raises(ValueError, match="confusion must be a non-empty square"):
        plot_confusion(CONFUSION[:2], ["a", "b"], tmp_path / "c.png")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_on_cuda_equal_the_cpu_ones():
    assert topk_error(LOGITS.cuda(), LABELS.cuda(), 2) == topk_error(LOGITS, LABELS, 2)
    got = confusion_matrix(PREDICTIONS.cuda(), TRUE.cuda(), 4)
    assert got.is_cuda and torch.equal(got.cpu(), CONFUSION)
    assert classification_summary(LOGITS.cuda(), LABELS.cuda(), list("abc")) == classification_summary(
        LOGITS, LABELS, list("abc")
    )
