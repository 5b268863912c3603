"""Box sources for localisation: CUB-200-2011 and ImageNet val layouts built in tmp_path, and the shapes set."""

from __future__ import annotations

from pathlib import Path

import PIL.Image
import pytest
import torch

from cutmix.data.imageset import ImageSet
from cutmix.data.shapes import load_shapes
from cutmix.data.source import CorruptImageError
from cutmix.evaluate.boxsets import BoxSet, boxset_from_imageset, load_cub, load_imagenet_val, scale_box

W, H = 40, 30  # every fake image; resized to 20 x 20: x scales by 1/2, y by 2/3


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (W, H)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new("RGB", size, colour).save(path)


# -- CUB


CUB_IMAGES = [  # id, class id, path, is_train, colour, box (x, y, w, h)
    (1, 1, "001.Black_footed_Albatross/a.png", 0, (255, 0, 0), (4.0, 3.0, 20.0, 15.0)),
    (2, 1, "001.Black_footed_Albatross/b.jpg", 1, (0, 255, 0), (0.0, 0.0, 40.0, 30.0)),
    (3, 2, "002.Laysan_Albatross/c.png", 0, (0, 0, 255), (10.0, 6.0, 30.0, 24.0)),
    (4, 2, "002.Laysan_Albatross/d.png", 0, (9, 9, 9), (1.0, 1.5, 2.0, 3.0)),
]


def make_cub(root: Path) -> Path:
    base = root / "CUB_200_2011"
    rows = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": [], "bounding_boxes.txt": []}
    for i, cls, rel, train, colour, (x, y, w, h) in CUB_IMAGES:
        write_image(base / "images" / rel, colour)
        rows["images.txt"].append(f"{i} {rel}")
        rows["image_class_labels.txt"].append(f"{i} {cls}")
        rows["train_test_split.txt"].append(f"{i} {train}")
        rows["bounding_boxes.txt"].append(f"{i} {x} {y} {w} {h}")
    rows["classes.txt"] = ["1 001.Black_footed_Albatross", "", "2 002.Laysan_Albatross"]  # blank lines are skipped
    for name, lines in rows.items():
        (base / name).write_text("\n".join(lines) + "\n")
    return base


def test_cub_test_split(tmp_path):
    base = make_cub(tmp_path)
    data = load_cub(base, size=20)
    assert isinstance(data, BoxSet) and len(data) == 3 and data.name == "cub-test"
    assert data.classes == ["Black_footed_Albatross", "Laysan_Albatross"]
    assert data.labels.tolist() == [0, 1, 1]
    assert data.images.shape == (3, 3, 20, 20) and data.images.dtype == torch.uint8
    assert data.valid.tolist() == [[True]] * 3
    # x0 = 4/2, y0 = 3*2/3, x1 = 24/2, y1 = 18*2/3; x1 = 40/2, y1 = 30*2/3; (0.5, 1, 1.5, 3) -> halves up
    assert data.boxes[:, 0].tolist() == [[2, 2, 12, 12], [5, 4, 20, 20], [1, 1, 2, 3]]
    assert data.images[0, :, 5, 5].tolist() == [255, 0, 0]  # a PNG of one colour stays that colour
    assert bool((data.images[1] == torch.tensor([0, 0, 255]).view(3, 1, 1)).all())


def test_cub_train_split_parent_root_and_limit(tmp_path):
    make_cub(tmp_path)
    train = load_cub(tmp_path, size=20, split="train")  # the parent of CUB_200_2011 works too
    assert train.labels.tolist() == [0] and train.name == "cub-train"
    assert train.boxes[0, 0].tolist() == [0, 0, 20, 20]
    assert int(train.images[0, 1].float().mean().round()) == 255  # the JPEG decodes (green, up to compression)
    assert load_cub(tmp_path, size=20, limit=2).labels.tolist() == [0, 1]  # ids 1 and 3: spread, not the first two
    with pytest.raises(ValueError, match="limit"):
        load_cub(tmp_path, size=20, limit=0)
    with pytest.raises(ValueError, match="split"):
        load_cub(tmp_path, split="val")


def test_cub_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_cub(tmp_path / "nowhere")
    base = make_cub(tmp_path)
    (base / "bounding_boxes.txt").write_text("1 4 3 20 15\n2 0 0 forty 30\n")
    with pytest.raises(ValueError, match=r"bounding_boxes\.txt, line 2"):
        load_cub(base)
    (base / "bounding_boxes.txt").write_text("1 4 3 20\n")
    with pytest.raises(ValueError, match=r"bounding_boxes\.txt, line 1.*expected 5 fields"):
        load_cub(base)
    (base / "bounding_boxes.txt").write_text("1 4 3 20 15\n")
    with pytest.raises(ValueError, match=r"bounding_boxes\.txt has no line for image ids \[2, 3, 4\]"):
        load_cub(base)
    (base / "bounding_boxes.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"bounding_boxes\.txt"):
        load_cub(base)


def test_cub_corrupt_and_missing_images(tmp_path):
    base = make_cub(tmp_path)
    (base / "images" / "002.Laysan_Albatross" / "c.png").write_bytes(b"not a png")
    with pytest.raises(CorruptImageError, match=r"c\.png"):
        load_cub(base, size=20)
    (base / "images" / "002.Laysan_Albatross" / "c.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"c\.png"):
        load_cub(base, size=20)


# -- ImageNet val


def voc_xml(width: int, height: int, objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    body = "".join(
        f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, (x0, y0, x1, y1) in objects
    )
    return f"<annotation><size><width>{width}</width><height>{height}</height></size>{body}</annotation>"


IMAGENET = {  # stem: wnid, objects (inclusive pixel indices of the 40 x 30 original)
    "ILSVRC2012_val_00000001": ("n02", [("n02", (3, 2, 22, 16)), ("n02", (0, 0, 39, 29))]),
    "ILSVRC2012_val_00000002": ("n01", [("n01", (9, 5, 18, 8))]),
    "ILSVRC2012_val_00000003": ("n03", [("n03", (1, 1, 2, 2)), ("n03", (5, 5, 9, 9)), ("n03", (0, 3, 5, 14))]),
}


def make_imagenet(root: Path, flat: bool) -> tuple[Path, Path]:
    images, boxes = root / "val", root / "boxes" / "val"
    for stem, (wnid, objects) in IMAGENET.items():
        write_image(images / ("" if flat else wnid) / f"{stem}.JPEG", (200, 100, 50))
        (boxes / f"{stem}.xml").parent.mkdir(parents=True, exist_ok=True)
        (boxes / f"{stem}.xml").write_text(voc_xml(W, H, objects))
    return images, root / "boxes"


# [xmin, xmax + 1) x [ymin, ymax + 1) scaled by (1/2, 2/3), rounded halves up: e.g. n01's x0 = 9/2 = 4.5 -> 5,
# y0 = 5 * 2/3 = 3.33 -> 3, x1 = 19/2 = 9.5 -> 10, y1 = 9 * 2/3 = 6
EXPECTED_BOXES = {
    "n01": [[5, 3, 10, 6]],
    "n02": [[2, 1, 12, 11], [0, 0, 20, 20]],
    "n03": [[1, 1, 2, 2], [3, 3, 5, 7], [0, 2, 3, 10]],
}


@pytest.mark.parametrize("flat", [False, True])
def test_imagenet_val_boxes_labels_and_padding(tmp_path, flat):
    images, boxes = make_imagenet(tmp_path, flat)
    data = load_imagenet_val(images, boxes, size=20)
    assert data.classes == ["n01", "n02", "n03"] and data.name == "imagenet-val"
    assert data.images.shape == (3, 3, 20, 20)
    assert data.boxes.shape == (3, 3, 4) and data.valid.shape == (3, 3)
    for i in range(3):
        wnid = data.classes[int(data.labels[i])]
        m = len(EXPECTED_BOXES[wnid])
        assert data.valid[i].tolist() == [True] * m + [False] * (3 - m)
        assert data.boxes[i, :m].tolist() == EXPECTED_BOXES[wnid]
        assert data.boxes[i, m:].tolist() == [[0, 0, 0, 0]] * (3 - m)
    # a tree lists by class, then file; a flat folder by file name
    assert data.labels.tolist() == ([0, 1, 2] if not flat else [1, 0, 2])


def test_imagenet_val_class_list_orders_and_filters(tmp_path):
    images, boxes = make_imagenet(tmp_path, flat=False)
    data = load_imagenet_val(images, boxes, size=20, classes=["n03", "n01", "n99"])
    assert data.classes == ["n03", "n01", "n99"]
    assert data.labels.tolist() == [1, 0]  # n01's image, then n03's (the folder order); n02 left out
    assert data.valid.sum(1).tolist() == [1, 3]
    with pytest.raises(ValueError, match="none of the images"):
        load_imagenet_val(images, boxes, size=20, classes=["n99"])


def test_imagenet_val_errors(tmp_path):
    images, boxes = make_imagenet(tmp_path, flat=True)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_imagenet_val(tmp_path / "missing", boxes)
    with pytest.raises(FileNotFoundError, match="boxes directory"):
        load_imagenet_val(images, tmp_path / "nothing")
    xml = boxes / "val" / "ILSVRC2012_val_00000002.xml"
    xml.write_text("<annotation><object><name>n01</name>")
    with pytest.raises(ValueError, match=r"malformed XML in .*00000002\.xml"):
        load_imagenet_val(images, boxes)
    xml.write_text(voc_xml(W, H, [("n01", (1, 2, 3, 4))]).replace("<ymax>4</ymax>", ""))
    with pytest.raises(ValueError, match=r"00000002\.xml: object 0 is malformed"):
        load_imagenet_val(images, boxes)
    xml.unlink()
    with pytest.raises(FileNotFoundError, match=r"ILSVRC2012_val_00000002\.xml"):
        load_imagenet_val(images, boxes)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_imagenet_val(empty, boxes)


# -- shapes and the container


def test_boxset_from_shapes():
    data = load_shapes("val", num_samples=6, size=16, num_classes=3)
    boxes = boxset_from_imageset(data)
    assert boxes.boxes.shape == (6, 1, 4) and bool(boxes.valid.all())
    assert torch.equal(boxes.boxes[:, 0], data.boxes) and torch.equal(boxes.images, data.images)
    assert boxes.classes == data.classes and "6 images" in repr(boxes)
    no_boxes = ImageSet(data.images, data.labels, data.classes, None, "plain")
    with pytest.raises(ValueError, match="plain has no boxes"):
        boxset_from_imageset(no_boxes)


def test_boxset_checks_shapes():
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"boxes \[N, M, 4\]"):
        BoxSet(
            images,
            torch.zeros(2, dtype=torch.long),
            torch.zeros(2, 4, dtype=torch.long),
            torch.ones(2, 1, dtype=torch.bool),
            ["a"],
            "x",
        )


def test_scale_box_arithmetic():
    assert scale_box(0, 0, 40, 30, 40, 30, 20) == [0, 0, 20, 20]
    assert scale_box(-3, 1, 45, 29, 40, 30, 20) == [0, 1, 20, 19]  # clamped to the image
    assert scale_box(1, 3, 3, 9, 4, 12, 8) == [2, 2, 6, 6]
    assert scale_box(0.25, 0, 0.75, 1, 1, 1, 2) == [1, 0, 2, 2]  # 0.5 rounds up
