"""Detection targets under CutMix and Cutout: own boxes outside the region, the partner's inside it, clipped."""

from __future__ import annotations

import pytest
import torch

from cutmix import dense, functional

H, W = 32, 40
REGION = torch.tensor([10, 10, 20, 20])


def target(*boxes: list[float], label0: int = 1) -> dict[str, torch.Tensor]:
    b = torch.tensor(boxes, dtype=torch.float32).view(-1, 4)
    m = b.shape[0]
    return {"boxes": b, "labels": torch.arange(label0, label0 + m), "iscrowd": torch.zeros(m, dtype=torch.int64),
            "area": (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), "image_id": torch.tensor(label0)}


def mix_two(own: dict, partner: dict, min_visibility: float = 0.0, region: torch.Tensor = REGION) -> dict:
    out = dense.paste_detections([own, partner], region, torch.tensor([1, 0]), canvas_size=(H, W),
                                 min_visibility=min_visibility)
    return out[0]


def test_boxes_outside_the_region_survive_unchanged() -> None:
    own = target([0, 0, 5, 5], [21, 3, 30, 31], [0, 20, 40, 32])
    partner = target([25, 25, 30, 30], [0, 0, 9, 9], label0=10)  # both outside the region: not gained
    out = mix_two(own, partner, min_visibility=1.0)
    assert torch.equal(out["boxes"], own["boxes"]) and torch.equal(out["labels"], own["labels"])
    assert torch.equal(out["area"], own["area"]) and out["image_id"] is own["image_id"]
    assert out["boxes"].dtype == torch.float32 and out["labels"].dtype == torch.int64


def test_boxes_fully_inside_are_replaced_by_the_partners() -> None:
    own = target([12, 12, 18, 18], [11, 10, 20, 19])
    partner = target([11, 11, 19, 19], [15, 15, 25, 25], [0, 0, 4, 4], label0=10)
    out = mix_two(own, partner)
    assert out["boxes"].tolist() == [[11, 11, 19, 19], [15, 15, 20, 20]]  # gained, the second clipped to the region
    assert out["labels"].tolist() == [10, 11]
    assert out["area"].tolist() == [64.0, 25.0]  # scaled by the kept fraction: the clipped box's area
    assert out["iscrowd"].tolist() == [0, 0] and int(out["image_id"]) == 1  # per-image values stay


@pytest.mark.parametrize(("box", "visible", "fraction"), [
    ([5, 10, 15, 20], [5, 10, 10, 20], 0.5),  # the region spans the box's height: it shrinks along x
    ([12, 5, 18, 15], [12, 5, 18, 10], 0.5),  # spans its width: shrinks along y
    ([5, 5, 15, 15], [5, 5, 15, 15], 0.75),  # a corner: the tight box of what shows is the box
    ([8, 8, 22, 22], [8, 8, 22, 22], 1 - 100 / 196),  # a hole
])
def test_visibility_threshold_at_its_edges(box, visible, fraction) -> None:
    own, partner = target(box), target([0, 0, 1, 1], label0=10)
    kept = mix_two(own, partner, min_visibility=fraction)
    assert kept["boxes"].tolist() == [visible] and kept["labels"].tolist() == [1]
    assert kept["area"].item() == pytest.approx(float(own["area"]) * fraction)
    dropped = mix_two(own, partner, min_visibility=fraction + 1e-6)
    assert dropped["boxes"].shape == (0, 4) and dropped["labels"].shape == (0,)


def test_partner_boxes_threshold_at_its_edges() -> None:
    own, partner = target([0, 0, 1, 1]), target([15, 12, 25, 16], label0=10)  # half of it inside the region
    assert mix_two(own, partner, min_visibility=0.5)["boxes"].tolist() == [[0, 0, 1, 1], [15, 12, 20, 16]]
    assert mix_two(own, partner, min_visibility=0.5 + 1e-6)["boxes"].tolist() == [[0, 0, 1, 1]]
    edge = target([20, 12, 25, 16], label0=10)  # touches the region's edge: nothing of it is inside
    assert mix_two(own, edge)["boxes"].tolist() == [[0, 0, 1, 1]]


def tagged(n: int) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.uint8) + 1).view(n, 1, 1, 1).expand(n, 3, H, W).contiguous()


def random_targets(n: int, g: torch.Generator) -> list[dict[str, torch.Tensor]]:
    out = []
    for i in range(n):
        m = int(torch.randint(0, 6, (1,), generator=g))
        xy = torch.rand(m, 2, generator=g) * torch.tensor([W - 2, H - 2])
        wh = 1 + torch.rand(m, 2, generator=g) * torch.tensor([W / 2, H / 2])
        b = torch.cat([xy, (xy + wh).minimum(torch.tensor([W, H]))], 1).round()
        b[:, 2:] = torch.maximum(b[:, 2:], b[:, :2] + 1)
        out.append({"boxes": b, "labels": 100 * i + torch.arange(m)})
    return out


@pytest.mark.parametrize("kind", ["batch", "sample"])
def test_every_kept_box_comes_from_the_image_at_that_place(kind) -> None:
    from cutmix.boxes import sample_box, sample_boxes

    n = 6
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        targets = random_targets(n, g)
        index = torch.randperm(n, generator=g)
        boxes = (torch.tensor(sample_box(H, W, alpha=1.0, generator=g)) if kind == "batch"
                 else sample_boxes(n, H, W, alpha=1.0, generator=g))
        src = functional.paste(tagged(n), boxes, index)[:, 0].long() - 1
        out = dense.paste_detections(targets, boxes, index, canvas_size=(H, W), min_visibility=0.2)
        region = dense.pasted_region(boxes, n, H, W)
        for i, t in enumerate(out):
            for b, label in zip(t["boxes"].long().tolist(), t["labels"].tolist(), strict=True):
                x0, y0, x1, y1 = b
                origin = label // 100
                assert origin in (i, int(index[i]))
                patch = src[i, y0:y1, x0:x1]
                if origin != i:  # gained: every pixel of the clipped box is the partner's
                    assert (patch == origin).all() and region[i, y0:y1, x0:x1].all()
                else:  # kept: it still shows, and its edges touch own pixels
                    assert (patch == i).any()
            # own boxes that the region misses are kept unchanged
            for b, label in zip(targets[i]["boxes"].tolist(), targets[i]["labels"].tolist(), strict=True):
                x0, y0, x1, y1 = (int(v) for v in b)
                if not region[i, y0:y1, x0:x1].any():
                    assert label in t["labels"].tolist()
                    assert b in t["boxes"].tolist()


def test_cutout_keeps_what_stays_visible() -> None:
    own = target([5, 10, 15, 20], [12, 12, 18, 18], [0, 0, 3, 3])
    out = dense.erase_detections([own], REGION, canvas_size=(H, W), min_visibility=0.5)[0]
    assert out["boxes"].tolist() == [[5, 10, 10, 20], [0, 0, 3, 3]] and out["labels"].tolist() == [1, 3]


def test_bounding_boxes_keep_their_format_and_type() -> None:
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    own = {"boxes": tv_tensors.BoundingBoxes([[5, 10, 10, 10]], format="XYWH", canvas_size=(H, W)),
           "labels": torch.tensor([1])}
    partner = {"boxes": tv_tensors.BoundingBoxes([[15, 12, 10, 4]], format="XYWH", canvas_size=(H, W)),
               "labels": torch.tensor([7])}
    out = mix_two(own, partner)
    assert isinstance(out["boxes"], tv_tensors.BoundingBoxes) and out["boxes"].format.value == "XYWH"
    assert out["boxes"].canvas_size == (H, W)
    assert out["boxes"].as_subclass(torch.Tensor).tolist() == [[5, 10, 5, 10], [15, 12, 5, 4]]
    assert out["labels"].tolist() == [1, 7]


def test_images_without_boxes_and_self_partners() -> None:
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    full = {"boxes": torch.tensor([[12.0, 12, 14, 14]]), "labels": torch.tensor([1])}
    out = dense.paste_detections([empty, full], REGION, torch.tensor([1, 0]), canvas_size=(H, W))
    assert out[0]["boxes"].tolist() == [[12, 12, 14, 14]] and out[1]["boxes"].shape == (0, 4)
    same = dense.paste_detections([full], REGION, torch.tensor([0]), canvas_size=(H, W))
    assert torch.equal(same[0]["boxes"], full["boxes"])
    with pytest.raises(ValueError, match=r"targets\[0\] and its partner targets\[1\] must have the same per-box"):
        dense.paste_detections([empty, target([12, 12, 14, 14])], REGION, torch.tensor([1, 0]), canvas_size=(H, W))


@pytest.mark.parametrize(("targets", "error", "match"), [
    ({"boxes": torch.zeros(0, 4)}, TypeError, "targets must be a list of per-image dicts"),
    ([{"labels": torch.zeros(1)}], TypeError, r"targets\[0\] must be a dict with 'boxes'"),
    ([{"boxes": torch.zeros(2, 3)}], ValueError, r"targets\[0\]\['boxes'\] must be \[M, 4\]"),
    ([{"boxes": torch.tensor([[3.0, 0, 2, 4]])}], ValueError, "x1 > x0 and y1 > y0"),
])
def test_bad_targets(targets, error, match) -> None:
    with pytest.raises(error, match=match):
        dense.paste_detections(targets, REGION, torch.tensor([0]), canvas_size=(H, W))


def test_bad_min_visibility_and_canvas() -> None:
    t = [target([0, 0, 1, 1])]
    with pytest.raises(ValueError, match="min_visibility"):
        dense.paste_detections(t, REGION, torch.tensor([0]), canvas_size=(H, W), min_visibility=1.5)
    with pytest.raises(ValueError, match="canvas_size must be the images' "):
        dense.paste_detections(t, REGION, torch.tensor([0]), canvas_size=(H,))


def test_instance_masks_and_scores_follow_their_boxes() -> None:
    def with_masks(box: list[int], label: int) -> dict[str, torch.Tensor]:
        m = torch.zeros(1, H, W, dtype=torch.uint8)
        m[0, box[1]:box[3], box[0]:box[2]] = 1
        return {"boxes": torch.tensor([box], dtype=torch.float32), "labels": torch.tensor([label]),
                "masks": m, "scores": torch.tensor([0.5 + label / 100])}

    own, partner = with_masks([5, 10, 15, 20], 1), with_masks([15, 15, 25, 25], 2)
    out = mix_two(own, partner)
    assert out["labels"].tolist() == [1, 2] and out["scores"].tolist() == pytest.approx([0.51, 0.52])
    region = torch.zeros(H, W, dtype=torch.bool)
    region[10:20, 10:20] = True
    assert torch.equal(out["masks"][0], own["masks"][0] * ~region)  # own pixels under the paste are gone
    assert torch.equal(out["masks"][1], partner["masks"][0] * region)  # the partner's only inside the region
    assert out["masks"].dtype == torch.uint8
