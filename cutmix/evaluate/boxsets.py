"""Images with ground-truth object boxes, for localisation: CUB-200-2011, ImageNet val (XML boxes), shapes.

Every loader resizes each image directly to ``size`` x ``size`` (no crop, aspect ratio not kept): the common WSOL
protocol (Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020), under which no
part of any object is cropped away. Box corners are scaled as continuous coordinates (pixel edges) by the same
factors, rounded to the nearest pixel edge (halves up) and clamped to the image.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from torch import Tensor

from cutmix._checks import check_positive_int
from cutmix.data.imageset import ImageSet
from cutmix.data.source import IMAGE_EXTENSIONS, CorruptImageError

_BILINEAR = getattr(PIL.Image, "Resampling", PIL.Image).BILINEAR  # Pillow < 9.1 has no Resampling enum


@dataclass
class BoxSet:
    """uint8 ``images`` [N, 3, H, W], int64 ``labels`` [N] indexing ``classes``, half-open int64 ``boxes``
    [N, M, 4] in image pixels (``x0, y0, x1, y1``), with ``valid`` bool [N, M] marking the real ones (images have
    different numbers of objects; the rest is padding)."""

    images: Tensor
    labels: Tensor
    boxes: Tensor
    valid: Tensor
    classes: list[str]
    name: str

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        shapes_ok = self.boxes.ndim == 3 and self.boxes.shape[0] == n and self.boxes.shape[2] == 4
        if self.labels.shape != (n,) or not shapes_ok or self.valid.shape != self.boxes.shape[:2]:
            shapes = [tuple(t.shape) for t in (self.images, self.labels, self.boxes, self.valid)]
            raise ValueError(
                "BoxSet needs images [N, C, H, W], labels [N], boxes [N, M, 4] and valid [N, M]; got shapes "
                + ", ".join(map(str, shapes))
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return (
            f"BoxSet(name={self.name!r}, {n} images {c}x{h}x{w}, {len(self.classes)} classes, "
            f"{int(self.valid.sum())} boxes)"
        )


def boxset_from_imageset(data: ImageSet) -> BoxSet:
    """An :class:`ImageSet` with one box per image (the shapes dataset) as a BoxSet with M = 1."""
    if data.boxes is None:
        raise ValueError(f"{data.name} has no boxes; only datasets that know their objects' boxes (shapes) do")
    valid = torch.ones(len(data), 1, dtype=torch.bool)
    return BoxSet(data.images, data.labels, data.boxes[:, None].long(), valid, list(data.classes), data.name)


# -- decoding and scaling


def _pick(n: int, limit: int | None) -> list[int]:
    """``limit`` indices spread evenly over ``range(n)`` (files are sorted by class, so the first few would not be)."""
    check_positive_int(limit, "limit", none_ok=True)
    if limit is None or limit >= n:
        return list(range(n))
    return [i * n // limit for i in range(limit)]


def _load_resized(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB uint8 [size, size, 3] and the original (width, height)."""
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with PIL.Image.open(path) as image:
            rgb = image.convert("RGB")
            return np.asarray(rgb.resize((size, size), _BILINEAR)), rgb.size
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... for damaged files
        raise CorruptImageError(f"cannot decode {path}: {type(exc).__name__}: {exc}") from exc


def _decode_all(paths: Sequence[Path], size: int) -> tuple[Tensor, list[tuple[int, int]]]:
    """Images [N, 3, size, size] decoded on a few threads (Pillow releases the GIL), and their original sizes."""
    check_positive_int(size, "size")
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(lambda p: _load_resized(p, size), paths))
    images = torch.from_numpy(np.stack([a for a, _ in decoded])).permute(0, 3, 1, 2).contiguous()
    return images, [wh for _, wh in decoded]


def scale_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int, size: int) -> list[int]:
    """A box with corners in pixel-edge coordinates of a width x height image, in a size x size resize."""
    sx, sy = size / width, size / height

    def edge(v: float, scale: float) -> int:
        return min(max(math.floor(v * scale + 0.5), 0), size)

    return [edge(x0, sx), edge(y0, sy), edge(x1, sx), edge(y1, sy)]


def _pad(boxes: list[list[list[int]]]) -> tuple[Tensor, Tensor]:
    """Ragged per-image box lists -> boxes [N, M, 4] padded with zeros and the validity mask [N, M]."""
    m = max(len(b) for b in boxes)
    out = torch.zeros(len(boxes), m, 4, dtype=torch.long)
    valid = torch.zeros(len(boxes), m, dtype=torch.bool)
    for i, image_boxes in enumerate(boxes):
        out[i, : len(image_boxes)] = torch.tensor(image_boxes, dtype=torch.long).view(-1, 4)
        valid[i, : len(image_boxes)] = True
    return out, valid


# -- CUB-200-2011


def _read_table(path: Path, fields: int, parse: Callable[[list[str]], object], maxsplit: int = -1) -> dict[int, object]:
    """``id value...`` lines of one of CUB's text files -> {id: parse(values)}; errors name file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"CUB file not found: {path} (expected the CUB_200_2011 layout)")
    table: dict[int, object] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=maxsplit)
        try:
            if len(parts) != fields + 1:
                raise ValueError(f"expected {fields + 1} fields, got {len(parts)}")
            table[int(parts[0])] = parse(parts[1:])
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: malformed line {line!r} ({exc})") from exc
    return table


def load_cub(root: str | os.PathLike[str], size: int = 224, split: str = "test", limit: int | None = None) -> BoxSet:
    """CUB-200-2011 from its release layout (``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``,
    ``bounding_boxes.txt``, ``classes.txt``, ``images/``) at ``root`` or ``root/CUB_200_2011``.

    ``split`` is "train" or "test" (the official split); ``limit`` keeps that many images spread evenly over the
    split. Boxes ``x y width height`` (pixels from the top-left corner) become ``[x, x + width)`` x ``[y, y +
    height)`` and are scaled with the image. Labels are class ids - 1; class names lose their ``001.`` prefix.
    """
    base = Path(root).expanduser()
    if not (base / "images.txt").is_file() and (base / "CUB_200_2011" / "images.txt").is_file():
        base = base / "CUB_200_2011"
    if not base.is_dir():
        raise FileNotFoundError(f"CUB root not found: {base} (expected a directory holding images.txt, ...)")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    files = _read_table(base / "images.txt", 1, lambda v: v[0], maxsplit=1)
    labels = _read_table(base / "image_class_labels.txt", 1, lambda v: int(v[0]))
    is_train = _read_table(base / "train_test_split.txt", 1, lambda v: int(v[0]) == 1)
    boxes = _read_table(base / "bounding_boxes.txt", 4, lambda v: [float(x) for x in v])
    class_names = _read_table(base / "classes.txt", 1, lambda v: v[0].split(".", 1)[-1], maxsplit=1)
    if sorted(class_names) != list(range(1, len(class_names) + 1)):
        raise ValueError(f"{base / 'classes.txt'}: class ids must be 1..K, got {sorted(class_names)[:5]}...")
    ids = sorted(i for i in files if is_train.get(i) == (split == "train"))
    tables = {"image_class_labels.txt": labels, "bounding_boxes.txt": boxes, "train_test_split.txt": is_train}
    for name, table in tables.items():
        missing = [i for i in files if i not in table]
        if missing:
            raise ValueError(f"{base / name} has no line for image ids {missing[:5]}")
    bad = [i for i in ids if labels[i] not in class_names]
    if bad:
        raise ValueError(
            f"{base / 'image_class_labels.txt'}: image {bad[0]} has class {labels[bad[0]]}, not in classes.txt"
        )
    if not ids:
        raise ValueError(f"{base}: the {split} split is empty")
    ids = [ids[i] for i in _pick(len(ids), limit)]
    images, sizes = _decode_all([base / "images" / str(files[i]) for i in ids], size)
    scaled = []
    for i, (w, h) in zip(ids, sizes, strict=True):
        x, y, bw, bh = boxes[i]
        scaled.append([scale_box(x, y, x + bw, y + bh, w, h, size)])
    box_t, valid = _pad(scaled)
    label_t = torch.tensor([labels[i] - 1 for i in ids], dtype=torch.long)
    return BoxSet(images, label_t, box_t, valid, [class_names[k] for k in sorted(class_names)], f"cub-{split}")


# -- ImageNet validation images with PASCAL-VOC XML boxes


def read_voc_boxes(path: Path) -> list[tuple[str, list[float]]]:
    """(name, [xmin, ymin, xmax, ymax]) of every ``<object>`` in a PASCAL-VOC XML file."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"malformed XML in {path}: {exc}") from exc
    out = []
    for k, obj in enumerate(root.iter("object")):
        try:
            name = (obj.findtext("name") or "").strip()
            box = obj.find("bndbox")
            if not name or box is None:
                raise ValueError("needs <name> and <bndbox>")
            out.append((name, [float(box.findtext(tag) or "") for tag in ("xmin", "ymin", "xmax", "ymax")]))
        except ValueError as exc:
            raise ValueError(f"{path}: object {k} is malformed ({exc})") from exc
    if not out:
        raise ValueError(f"{path} holds no <object> with a <bndbox>")
    return out


def _list_images(images_dir: Path) -> list[tuple[Path, str | None]]:
    """(path, class directory or None) of the images of an ImageFolder tree, or of a flat directory."""
    if not images_dir.is_dir():
        raise FileNotFoundError(f"ImageNet images directory not found: {images_dir}")

    def images_in(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))

    subdirs = sorted(d for d in images_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if subdirs:
        found: list[tuple[Path, str | None]] = [(p, d.name) for d in subdirs for p in images_in(d)]
    else:
        found = [(p, None) for p in images_in(images_dir)]
    if not found:
        raise ValueError(
            f"{images_dir} holds no images: expected <wnid>/<image> or a flat folder of images "
            f"with one of the extensions {', '.join(IMAGE_EXTENSIONS)}"
        )
    return found


def load_imagenet_val(
    images_dir: str | os.PathLike[str],
    boxes_dir: str | os.PathLike[str],
    size: int = 224,
    classes: Sequence[str] | None = None,
    limit: int | None = None,
) -> BoxSet:
    """ImageNet validation images (an ImageFolder tree of WordNet ids, or one flat folder) with the ILSVRC
    localisation boxes: one ``<image stem>.xml`` per image anywhere under ``boxes_dir``.

    The label is the class directory, or in a flat folder the first object's ``<name>``. ``classes`` fixes the
    label order (a model's class list) and keeps only those classes' images; default: the sorted wnids found. All
    of an image's objects are kept. ``xmin..xmax`` are read as inclusive pixel indices (half-open ``[xmin, xmax +
    1)``), then scaled with the image. ``limit`` keeps that many images spread evenly.
    """
    boxes_root = Path(boxes_dir).expanduser()
    if not boxes_root.is_dir():
        raise FileNotFoundError(f"ImageNet boxes directory not found: {boxes_root} (expected <image stem>.xml files)")
    xml = {p.stem: p for p in sorted(boxes_root.rglob("*.xml"))}
    found = _list_images(Path(images_dir).expanduser())
    objects: dict[int, list[tuple[str, list[float]]]] = {}

    def objects_of(i: int) -> list[tuple[str, list[float]]]:
        if i not in objects:
            path = found[i][0]
            if path.stem not in xml:
                raise FileNotFoundError(f"no box file {path.stem}.xml under {boxes_root} for image {path}")
            objects[i] = read_voc_boxes(xml[path.stem])
        return objects[i]

    # a tree names the class of every image; a flat folder only through the XML (parsed once, when needed)
    wnids = [folder if folder is not None else objects_of(i)[0][0] for i, (_, folder) in enumerate(found)]
    class_list = sorted(set(wnids)) if classes is None else list(classes)
    index = {c: i for i, c in enumerate(class_list)}
    keep = [i for i, w in enumerate(wnids) if w in index]
    if not keep:
        raise ValueError(f"none of the images in {images_dir} belongs to the given classes {class_list[:5]}...")
    keep = [keep[i] for i in _pick(len(keep), limit)]
    images, sizes = _decode_all([found[i][0] for i in keep], size)
    scaled = [
        [scale_box(x0, y0, x1 + 1, y1 + 1, w, h, size) for _, (x0, y0, x1, y1) in objects_of(i)]
        for i, (w, h) in zip(keep, sizes, strict=True)
    ]
    box_t, valid = _pad(scaled)
    labels = torch.tensor([index[wnids[i]] for i in keep], dtype=torch.long)
    return BoxSet(images, labels, box_t, valid, class_list, "imagenet-val")
