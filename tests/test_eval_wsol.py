"""Weakly-supervised localisation: CAM and Grad-CAM maps, boxes from maps, IoU, scores, the whole evaluation."""

from __future__ import annotations

from collections import deque

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cutmix.data.shapes import load_shapes
from cutmix.evaluate.cam import cam_head, class_activation_maps, default_layer, grad_cam, normalise_maps
from cutmix.evaluate.wsol import (
    SWEEP_THRESHOLDS,
    box_iou,
    box_iou_any,
    cam_boxes,
    connected_components,
    evaluate_localization,
    localization_scores,
)
from cutmix.models import build_model

# -- references written out pixel by pixel


def ref_largest_box(cam: torch.Tensor, threshold: float, connectivity: int) -> tuple[int, int, int, int]:
    """Flood fill from each unvisited foreground pixel in raster order; the first of the largest regions wins."""
    h, w = cam.shape
    fg = (cam >= threshold * cam.max()).tolist()
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    seen = [[False] * w for _ in range(h)]
    best: list[tuple[int, int]] = []
    for y in range(h):
        for x in range(w):
            if not fg[y][x] or seen[y][x]:
                continue
            seen[y][x] = True
            region, queue = [], deque([(y, x)])
            while queue:
                cy, cx = queue.popleft()
                region.append((cy, cx))
                for dy, dx in steps:
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and fg[ny][nx] and not seen[ny][nx]:
                        seen[ny][nx] = True
                        queue.append((ny, nx))
            if len(region) > len(best):
                best = region
    if not best:
        return 0, 0, w, h
    ys, xs = [p[0] for p in best], [p[1] for p in best]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def ref_iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """IoU by counting pixels of the half-open boxes."""
    pa = {(x, y) for x in range(a[0], a[2]) for y in range(a[1], a[3])}
    pb = {(x, y) for x in range(b[0], b[2]) for y in range(b[1], b[3])}
    union = len(pa | pb)
    return len(pa & pb) / union if union else 0.0


def blank(h: int = 12, w: int = 16) -> torch.Tensor:
    return torch.zeros(1, h, w)


# -- IoU


def test_box_iou_known_cases():
    a = torch.tensor([[0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 2, 2], [3, 3, 3, 5]])
    b = torch.tensor([[0, 0, 4, 4], [5, 5, 8, 8], [2, 2, 6, 6], [2, 0, 4, 2], [3, 3, 3, 5]])
    # identical, disjoint, 4 / (16 + 16 - 4), half-open boxes sharing an edge, two empty boxes
    expected = torch.tensor([1.0, 0.0, 4 / 28, 0.0, 0.0])
    torch.testing.assert_close(box_iou(a, b), expected)
    for i in range(len(a)):
        assert box_iou(a[i : i + 1], b[i : i + 1]).item() == pytest.approx(ref_iou(a[i].tolist(), b[i].tolist()))


def test_box_iou_matches_pixel_counting_on_random_boxes():
    g = torch.Generator().manual_seed(0)
    corners = torch.randint(0, 10, (200, 2, 4), generator=g)
    boxes = torch.cat(
        [torch.minimum(corners[..., :2], corners[..., 2:]), torch.maximum(corners[..., :2], corners[..., 2:])], -1
    )
    a, b = boxes[:, 0], boxes[:, 1]
    expected = torch.tensor([ref_iou(x.tolist(), y.tolist()) for x, y in zip(a, b, strict=True)])
    torch.testing.assert_close(box_iou(a, b), expected)


def test_box_iou_any_ignores_padding():
    pred = torch.tensor([[0, 0, 4, 4], [0, 0, 4, 4]])
    gt = torch.tensor([[[0, 0, 4, 4], [2, 2, 6, 6]], [[0, 0, 4, 2], [50, 50, 60, 60]]])
    valid = torch.tensor([[False, True], [True, True]])
    # image 0: the perfect match is padding, so only 4/28 counts; image 1: max(8/16, 0)
    torch.testing.assert_close(box_iou_any(pred, gt, valid), torch.tensor([4 / 28, 0.5]))
    torch.testing.assert_close(box_iou_any(pred, gt), torch.tensor([1.0, 0.5]))  # no mask: all valid
    with pytest.raises(ValueError, match="at least one valid"):
        box_iou_any(pred, gt, torch.tensor([[False, False], [True, True]]))
    with pytest.raises(ValueError, match="gt_boxes"):
        box_iou_any(pred, gt[:1])


# -- boxes from maps


def test_single_blob_gives_its_box():
    cam = blank()
    cam[0, 3:7, 5:12] = 1.0
    assert cam_boxes(cam).tolist() == [[5, 3, 12, 7]]


def test_larger_of_two_blobs_wins():
    cam = blank()
    cam[0, 0:2, 0:2] = 1.0  # 4 pixels, brightest
    cam[0, 5:10, 8:14] = 0.6  # 30 pixels
    assert cam_boxes(cam, 0.15).tolist() == [[8, 5, 14, 10]]


def test_blob_with_a_ramp_below_the_threshold():
    cam = torch.linspace(0, 0.14, 16).expand(12, 16).clone()[None]  # everywhere below 0.15 * max
    cam[0, 4:8, 2:6] = 1.0
    assert cam_boxes(cam, 0.15).tolist() == [[2, 4, 6, 8]]
    # at a lower threshold the ramp's top columns join the blob into one region
    low = ref_largest_box(cam[0], 0.1, 8)
    assert cam_boxes(cam, 0.1).tolist() == [list(low)]
    assert low[2] == 16


def test_threshold_selects_the_region():
    cam = blank()
    cam[0, 0:2, 0:2] = 1.0  # small and bright
    cam[0, 5:10, 8:14] = 0.3  # large and dim
    assert cam_boxes(cam, 0.5).tolist() == [[0, 0, 2, 2]]
    assert cam_boxes(cam, 0.3).tolist() == [[8, 5, 14, 10]]  # >= threshold * max counts as foreground
    both = torch.cat([cam, cam])
    assert cam_boxes(both, torch.tensor([0.5, 0.2])).tolist() == [[0, 0, 2, 2], [8, 5, 14, 10]]


def test_threshold_is_relative_to_the_maximum():
    cam = blank()
    cam[0, 1:3, 1:3] = 7.0
    cam[0, 6:11, 6:12] = 3.0  # 3 / 7 of the max
    assert cam_boxes(cam, 0.5).tolist() == [[1, 1, 3, 3]]
    assert cam_boxes(cam, 0.4).tolist() == [[6, 6, 12, 11]]


def test_diagonal_touching_joins_with_8_connectivity_only():
    cam = blank()
    cam[0, 2:5, 2:5] = 1.0  # 9 pixels
    cam[0, 5:7, 5:7] = 1.0  # 4 pixels, touching the first at one corner
    assert cam_boxes(cam).tolist() == [[2, 2, 7, 7]]  # default: 8-connected
    assert cam_boxes(cam, connectivity=8).tolist() == [[2, 2, 7, 7]]
    assert cam_boxes(cam, connectivity=4).tolist() == [[2, 2, 5, 5]]


def test_equal_regions_the_first_in_raster_order_wins():
    cam = blank()
    cam[0, 6:8, 1:3] = 1.0
    cam[0, 1:3, 10:12] = 1.0  # same size, starts on an earlier row
    assert cam_boxes(cam).tolist() == [[10, 1, 12, 3]]


def test_zero_and_negative_maps_give_the_whole_image():
    cams = torch.stack([torch.zeros(12, 16), -torch.ones(12, 16) - torch.rand(12, 16)])
    assert cam_boxes(cams).tolist() == [[0, 0, 16, 12], [0, 0, 16, 12]]


def test_components_are_labelled_consistently():
    fg = torch.tensor([[[1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 1, 1]]], dtype=torch.bool)
    labels = connected_components(fg, 4)
    assert bool((labels[~fg] == 0).all())
    assert labels[0, 0, 0] == labels[0, 0, 1] != labels[0, 2, 0]
    assert labels[0, 1, 2] == labels[0, 2, 2] == labels[0, 2, 3] != labels[0, 0, 0]
    assert len(labels[fg].unique()) == 3
    labels8 = connected_components(fg, 8)  # (0, 1) and (1, 2) touch diagonally
    assert labels8[0, 0, 0] == labels8[0, 2, 3] != labels8[0, 2, 0]
    assert len(labels8[fg].unique()) == 2
    two = connected_components(torch.cat([fg, fg]), 4)  # ids are unique across the batch
    assert set(two[0][fg[0]].tolist()).isdisjoint(two[1][fg[0]].tolist())


@pytest.mark.parametrize("connectivity", [4, 8])
def test_batch_matches_flood_fill_reference(connectivity):
    g = torch.Generator().manual_seed(connectivity)
    coarse = torch.rand(24, 1, 4, 5, generator=g) ** 2
    cams = F.interpolate(coarse, size=(13, 17), mode="bilinear", align_corners=False)[:, 0]
    cams[3] = 0.0  # a blank map among the others
    cams[5] = torch.rand(13, 17, generator=g)  # speckle: many small regions
    thresholds = torch.rand(24, generator=g) * 0.9 + 0.05
    boxes = cam_boxes(cams, thresholds, connectivity=connectivity)
    for i in range(24):
        assert tuple(boxes[i].tolist()) == ref_largest_box(cams[i], float(thresholds[i]), connectivity), i
        assert cam_boxes(cams[i : i + 1], float(thresholds[i]), connectivity).tolist() == [boxes[i].tolist()]


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_cam_boxes_rejects_thresholds_outside_unit_interval(bad):
    with pytest.raises(ValueError, match="threshold"):
        cam_boxes(torch.rand(2, 4, 4), bad)


def test_cam_boxes_rejects_bad_maps():
    with pytest.raises(ValueError, match=r"cams must be .*\[N, H, W\]"):
        cam_boxes(torch.rand(4, 4))
    with pytest.raises(ValueError, match="NaN"):
        cam_boxes(torch.full((1, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        cam_boxes(torch.rand(3, 4, 4), torch.tensor([0.1, 0.2]))


# -- maps


@pytest.fixture(scope="module")
def resnet8():
    torch.manual_seed(0)
    model = build_model("resnet8", num_classes=4).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so train and eval mode differ
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model


def manual_cam(features: torch.Tensor, weight: torch.Tensor, classes: torch.Tensor, size: tuple[int, int]):
    """Zhou et al.'s sum over channels, image by image, then upsampling and min-max normalisation."""
    out = []
    for i in range(features.shape[0]):
        raw = (weight[classes[i]][:, None, None] * features[i]).sum(0)
        up = F.interpolate(raw[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        out.append((up - up.min()) / (up.max() - up.min()))
    return torch.stack(out)


def test_cam_of_feature_classifier_matches_manual_computation(resnet8):
    x = torch.randn(5, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    classes = torch.tensor([0, 3, 1, 2, 3])
    cams, logits = class_activation_maps(resnet8, x, classes)
    with torch.no_grad():
        features = resnet8.forward_features(x)
        torch.testing.assert_close(logits, resnet8(x))
        # the identity CAM rests on: a logit is the spatial mean of its raw map plus the bias
        raw_means = torch.einsum("kc,nchw->nkhw", resnet8.fc.weight, features).mean((2, 3))
        torch.testing.assert_close(raw_means + resnet8.fc.bias, logits, rtol=1e-5, atol=1e-5)
        expected = manual_cam(features, resnet8.fc.weight, classes, (24, 24))
    torch.testing.assert_close(cams, expected, rtol=1e-5, atol=1e-6)
    assert cams.shape == (5, 24, 24)
    assert cams.amin((1, 2)).tolist() == [0.0] * 5 and cams.amax((1, 2)).tolist() == [1.0] * 5
    predicted, _ = class_activation_maps(resnet8, x)  # classes=None: the predicted ones
    torch.testing.assert_close(predicted, class_activation_maps(resnet8, x, logits.argmax(1))[0])


def test_grad_cam_equals_relu_cam_for_a_gap_linear_head(resnet8):
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    classes = torch.tensor([1, 0, 3, 2])
    gcam, logits = grad_cam(resnet8, x, classes)
    with torch.no_grad():
        features = resnet8.forward_features(x)
        raw = torch.einsum("nc,nchw->nhw", resnet8.fc.weight[classes], features)
    # the gradient at the pooled map is w[k] / (h * w): Grad-CAM = ReLU(CAM) up to scale
    torch.testing.assert_close(gcam, normalise_maps(torch.relu(raw), (16, 16)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits, resnet8(x).detach())
    # layer3's output is forward_features' for a CIFAR ResNet: the hook path gives the same maps
    torch.testing.assert_close(grad_cam(resnet8, x, classes, layer="layer3")[0], gcam, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_cam(resnet8, x, classes, layer=resnet8.layer3)[0], gcam, rtol=1e-5, atol=1e-6)


def test_grad_cam_equals_cam_when_the_map_is_nonnegative():
    torch.manual_seed(3)
    model = build_model("resnet8", num_classes=3).eval()
    with torch.no_grad():
        model.fc.weight.abs_()  # features are post-ReLU, so every CAM is >= 0 and ReLU changes nothing
    x = torch.randn(3, 3, 16, 16)
    torch.testing.assert_close(grad_cam(model, x)[0], class_activation_maps(model, x)[0], rtol=1e-5, atol=1e-6)


def test_torchvision_resnet_through_hooks():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(4)
    model = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    x = torch.randn(2, 3, 64, 64)
    classes = torch.tensor([4, 1])
    cams, logits = class_activation_maps(model, x, classes)
    caught = []
    handle = model.layer4.register_forward_hook(lambda _m, _a, out: caught.append(out))
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x))
    handle.remove()
    torch.testing.assert_close(cams, manual_cam(caught[0], model.fc.weight, classes, (64, 64)), rtol=1e-5, atol=1e-5)
    assert default_layer(model) is model.layer4
    with torch.no_grad():
        raw = torch.einsum("nc,nchw->nhw", model.fc.weight[classes], caught[0])
    gcam, _ = grad_cam(model, x, classes)
    torch.testing.assert_close(gcam, normalise_maps(torch.relu(raw), (64, 64)), rtol=1e-4, atol=1e-5)


class ScaledHead(nn.Module):
    """avgpool and fc by name, but the fc input is not the plain average: CAM would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(2 * torch.flatten(self.avgpool(self.conv(x)), 1) + 1)


def test_hook_path_checks_that_fc_reads_the_average():
    torch.manual_seed(8)
    model = ScaledHead().eval()
    with pytest.raises(ValueError, match=r"ScaledHead\.fc does not take the global average.*gradcam"):
        class_activation_maps(model, torch.randn(2, 3, 8, 8))
    assert grad_cam(model, torch.randn(2, 3, 8, 8))[0].shape == (2, 8, 8)  # default layer: the conv


class ConvFlatLinear(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))


def test_model_without_gap_head_needs_gradcam():
    torch.manual_seed(5)
    model = ConvFlatLinear().eval()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"ConvFlatLinear.*method='gradcam'"):
        class_activation_maps(model, x)
    with pytest.raises(ValueError, match="gradcam"):
        cam_head(model)
    classes = torch.tensor([2, 0])
    gcam, logits = grad_cam(model, x, classes)
    # by hand: the gradient of logit k w.r.t. the conv output is fc.weight[k] reshaped to [C, h, w], where the
    # (in-place) ReLU after the conv lets it through; the map uses the conv output before that ReLU
    with torch.no_grad():
        acts = model[0](x)
        alpha = (model[3].weight[classes].view(2, 4, 8, 8) * (acts > 0)).mean((2, 3))
        raw = torch.relu((alpha[:, :, None, None] * acts).sum(1))
    torch.testing.assert_close(gcam, normalise_maps(raw, (8, 8)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits, model(x).detach())


def test_modes_and_gradients_are_left_as_found(resnet8):
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    expected_cam = class_activation_maps(resnet8, x)[0]
    expected_gcam = grad_cam(resnet8, x)[0]
    resnet8.fc.bias.requires_grad_(False)
    resnet8.train()
    try:
        torch.testing.assert_close(class_activation_maps(resnet8, x)[0], expected_cam)  # eval-mode statistics
        torch.testing.assert_close(grad_cam(resnet8, x)[0], expected_gcam)
        assert resnet8.training and all(m.training for m in resnet8.modules())
        assert all(p.grad is None for p in resnet8.parameters())
        assert not resnet8.fc.bias.requires_grad
        assert all(p.requires_grad for n, p in resnet8.named_parameters() if n != "fc.bias")
        with torch.inference_mode():  # an inference-mode input still gets its gradient map
            torch.testing.assert_close(grad_cam(resnet8, x.clone())[0], expected_gcam)
    finally:
        resnet8.fc.bias.requires_grad_(True)
        resnet8.eval()


def test_map_inputs_are_checked(resnet8):
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(ValueError, match="classes"):
        class_activation_maps(resnet8, x, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="classes"):
        grad_cam(resnet8, x, torch.tensor([0]))
    with pytest.raises(ValueError, match="x must be"):
        class_activation_maps(resnet8, x[0])


# -- scores


def test_localization_scores_by_hand():
    gt = torch.tensor([[0, 0, 4, 4]] * 4)
    pred = torch.tensor([[0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 2], [5, 5, 8, 8]])  # IoU 1, 1, 0.5, 0
    predictions = torch.tensor([1, 0, 2, 3])
    labels = torch.tensor([1, 2, 2, 3])  # right, wrong, right, right
    scores = localization_scores(pred, gt, None, predictions, labels)
    assert scores == {"top1_loc_acc": 2 / 4, "gt_known_loc_acc": 3 / 4, "mean_iou": 2.5 / 4, "top1_cls_acc": 3 / 4}
    strict = localization_scores(pred, gt, None, predictions, labels, iou_threshold=0.51)
    assert strict["gt_known_loc_acc"] == 2 / 4 and strict["top1_loc_acc"] == 1 / 4
    with pytest.raises(ValueError, match="predictions"):
        localization_scores(pred, gt, None, predictions[:3], labels)
    with pytest.raises(ValueError, match="iou_threshold"):
        localization_scores(pred, gt, None, predictions, labels, iou_threshold=0.0)


@pytest.fixture(scope="module")
def shapes16():
    return load_shapes("val", num_samples=16, size=32, num_classes=4)


MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_evaluate_localization_end_to_end(resnet8, shapes16):
    data = shapes16
    out = evaluate_localization(
        resnet8, data.images, data.labels, data.boxes, None, MEAN, STD, batch_size=6, examples=5
    )
    assert set(out) == {"method", "num_images", "iou_threshold", "top1_cls_acc", "results", "sweep", "best", "examples"}
    assert out["num_images"] == 16 and out["method"] == "cam"
    assert [r["threshold"] for r in out["sweep"]] == list(SWEEP_THRESHOLDS)
    assert [r["threshold"] for r in out["results"]] == [0.15]
    for r in [*out["results"], *out["sweep"], out["best"]]:
        assert set(r) == {"threshold", "top1_loc_acc", "gt_known_loc_acc", "mean_iou"}
        assert all(0.0 <= r[k] <= 1.0 for k in ("top1_loc_acc", "gt_known_loc_acc", "mean_iou"))
        assert r["top1_loc_acc"] <= min(r["gt_known_loc_acc"], out["top1_cls_acc"])
    assert out["best"]["gt_known_loc_acc"] >= out["results"][0]["gt_known_loc_acc"]
    assert out["best"]["gt_known_loc_acc"] == max(r["gt_known_loc_acc"] for r in out["sweep"])

    # the same numbers from the parts: maps of the true class on the normalised images, boxes, scores
    x = (data.images.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    cams, logits = class_activation_maps(resnet8, x, data.labels)
    boxes = cam_boxes(cams, 0.15)
    parts = localization_scores(boxes, data.boxes, None, logits.argmax(1), data.labels)
    assert out["top1_cls_acc"] == pytest.approx(parts["top1_cls_acc"])
    for key in ("top1_loc_acc", "gt_known_loc_acc", "mean_iou"):
        assert out["results"][0][key] == pytest.approx(parts[key], abs=1e-6)
    ex = out["examples"]
    assert ex["cams"].shape == (5, 32, 32) and ex["boxes"].tolist() == boxes[:5].tolist()
    assert ex["predictions"].tolist() == logits.argmax(1)[:5].tolist()
    torch.testing.assert_close(ex["ious"], box_iou_any(boxes[:5], data.boxes[:5, None]))


def test_evaluate_localization_gradcam_and_options(resnet8, shapes16):
    data = shapes16
    args = (resnet8, data.images, data.labels, data.boxes[:, None], torch.ones(16, 1, dtype=torch.bool), MEAN, STD)
    resnet8.train()
    try:
        out = evaluate_localization(*args, thresholds=(0.3, 0.15), method="gradcam", sweep=False)
        assert resnet8.training
    finally:
        resnet8.eval()
    assert out["sweep"] == [] and [r["threshold"] for r in out["results"]] == [0.3, 0.15]
    assert out["best"] in out["results"]
    same = evaluate_localization(*args, thresholds=(0.3, 0.15), method="gradcam", sweep=False, batch_size=16)
    for r, q in zip(same["results"], out["results"], strict=True):  # batches do not interact
        assert r == pytest.approx(q)
    for bad, match in [
        ({"thresholds": (0.0,)}, "thresholds"),
        ({"thresholds": ()}, "thresholds"),
        ({"method": "lrp"}, "method"),
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"examples": -1}, "examples"),
    ]:
        with pytest.raises(ValueError, match=match):
            evaluate_localization(*args, **bad)
    with pytest.raises(ValueError, match="mean and std"):
        evaluate_localization(resnet8, data.images, data.labels, data.boxes, None, (0.5,), (0.5,))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        evaluate_localization(resnet8, data.images, data.labels + 4, data.boxes, None, MEAN, STD)


def test_overlay_figure_is_written(tmp_path, shapes16):
    from cutmix.viz.cam import overlay_titles, plot_cam_overlays

    data = shapes16
    cams = torch.rand(6, 32, 32, generator=torch.Generator().manual_seed(7))
    pred = cam_boxes(cams)
    gt = torch.stack([data.boxes[:6], torch.zeros(6, 4, dtype=torch.long)], dim=1)
    valid = torch.tensor([[True, False]] * 6)
    titles = overlay_titles(data.classes, data.labels[:6], data.labels[:6].roll(1), box_iou_any(pred, gt, valid))
    assert titles[0].startswith(data.classes[int(data.labels[0])]) and "IoU" in titles[0]
    path = plot_cam_overlays(data.images[:6], cams, gt, valid, pred, titles, tmp_path / "fig" / "cams.png", cols=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="titles"):
        plot_cam_overlays(data.images[:6], cams, gt, valid, pred, titles[:2], tmp_path / "x.png")
