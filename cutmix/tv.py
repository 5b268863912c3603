"""torchvision v2 structures for the dense ops: take a batch apart into plain tensors by role, and put it back.

A batch may arrive as torchvision's v2 transforms see it: a dict ``{"image": Image, "mask": Mask, "labels": y}``,
a tuple ``(images, labels)`` or ``(Image, Mask, labels)``, with detection targets as a list of N per-image dicts
``{"boxes": BoundingBoxes, "labels": ...}`` anywhere in it. :func:`flatten` finds each part's *role* and
:meth:`Flat.rebuild` returns the same structure (container types, keys, order) with the same tensor types, the
labels replaced by whatever the caller computed (soft targets).

Roles, decided by type first and by place only for plain tensors, so that nothing is guessed silently:

* image: the one ``tv_tensors.Image`` [N, C, H, W]; without one, a plain tensor under the key ``"image"`` /
  ``"images"`` or the first plain tensor of a top-level tuple;
* labels: a plain tensor under the key ``"labels"`` / ``"label"`` of a top-level dict, or the next plain tensor of
  a top-level tuple after the image (class indices [N] or soft labels [N, K]);
* masks: every ``tv_tensors.Mask`` outside the detection targets, and plain tensors under the key ``"mask"`` /
  ``"masks"``, [N, ..., H, W] (hard masks, soft or confidence maps alike: they all follow the pixels);
* detections: a list or tuple of N dicts that all have ``"boxes"``; their content is left to
  :func:`cutmix.dense.paste_detections`, which keeps the types of the values it changes;
* passed through unchanged: None, bool, int, float, str and bytes.

Anything else (``Video``, ``KeyPoints``, a ``BoundingBoxes`` outside detection targets, a plain tensor elsewhere, a
PIL image, a NumPy array) raises a ``TypeError`` that names its type and where it was. torchvision is never
imported here: a tv_tensor can only exist once its module is loaded, so types are looked up in ``sys.modules``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

IMAGE_KEYS = ("image", "images")
LABEL_KEYS = ("labels", "label")
MASK_KEYS = ("mask", "masks")
_PASSTHROUGH = (type(None), bool, int, float, str, bytes)


def _tv_tensors() -> Any | None:
    """``torchvision.tv_tensors`` if it has been imported (no tv_tensor can exist otherwise), else None."""
    return sys.modules.get("torchvision.tv_tensors")


def is_tv_tensor(value: object) -> bool:
    """True for instances of torchvision's ``TVTensor`` subclasses (Image, Mask, BoundingBoxes, ...)."""
    tv = _tv_tensors()
    return tv is not None and isinstance(value, tv.TVTensor)


def plain(t: Tensor) -> Tensor:
    """``t`` as a plain ``torch.Tensor`` sharing its memory (tv_tensors unwrapped), so ops return plain results."""
    return t if type(t) is Tensor else t.as_subclass(Tensor)


def wrap_like(out: Tensor, like: Tensor) -> Tensor:
    """``out`` with the tensor type (and metadata, e.g. a box format and canvas size) of ``like``."""
    if type(like) is Tensor or not is_tv_tensor(like):
        return out
    return _tv_tensors().wrap(plain(out), like=like)


def boxes_xyxy(boxes: Tensor, name: str = "boxes") -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """Boxes as a plain xyxy tensor, and a function that turns xyxy results back into ``boxes``' type and format.

    Plain tensors are taken as xyxy (torchvision's detection models' format). ``BoundingBoxes`` in XYWH or CXCYWH
    are converted; rotated formats have no axis-aligned clipping and raise.
    """
    if not is_tv_tensor(boxes):
        if type(boxes) is not Tensor:
            raise TypeError(f"{name} must be a torch.Tensor or tv_tensors.BoundingBoxes, got {type(boxes).__name__}")
        return boxes, lambda out: out
    tv = _tv_tensors()
    if not isinstance(boxes, tv.BoundingBoxes):
        raise TypeError(f"{name} must be tv_tensors.BoundingBoxes or a plain tensor, got {type(boxes).__name__}")
    fmt = boxes.format.value.lower()
    if fmt not in ("xyxy", "xywh", "cxcywh"):
        raise ValueError(
            f"{name} has the rotated format {boxes.format.value}; only XYXY, XYWH and CXCYWH are supported"
        )
    if fmt == "xyxy":
        return plain(boxes), lambda out: wrap_like(out, boxes)
    from torchvision.ops import box_convert

    return box_convert(plain(boxes), fmt, "xyxy"), lambda out: wrap_like(box_convert(out, "xyxy", fmt), boxes)


@dataclass
class _Slot:
    """A place in the structure: its role, its position among the masks, and the tensor that was there."""

    role: str
    original: Any
    position: int = 0


@dataclass
class Flat:
    """A batch taken apart: plain ``images``, ``labels`` (or None), plain ``masks``, ``detections`` (or None)."""

    images: Tensor
    labels: Tensor | None
    masks: list[Tensor]
    detections: list[dict[str, Any]] | None
    template: Any = field(repr=False)

    def rebuild(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        masks: list[Tensor] | None = None,
        detections: list[dict[str, Any]] | None = None,
    ) -> Any:
        """The original structure with these values in place; parts not given keep their original values."""
        masks = self.masks if masks is None else list(masks)
        if len(masks) != len(self.masks):
            raise ValueError(f"masks must hold {len(self.masks)} tensors (one per mask in the input), got {len(masks)}")
        values = {"image": images, "labels": self.labels if labels is None else labels,
                  "detections": self.detections if detections is None else detections}

        def fill(node: Any) -> Any:
            if isinstance(node, _Slot):
                if node.role == "mask":
                    return wrap_like(masks[node.position], node.original)
                if node.role == "image":
                    return wrap_like(values["image"], node.original)
                return values[node.role]
            return _rebuild_container(node, [fill(v) for v in _children(node)])

        return fill(self.template)


def _children(node: Any) -> list[Any]:
    if isinstance(node, Mapping):
        return list(node.values())
    if isinstance(node, (list, tuple)):
        return list(node)
    return []


def _rebuild_container(node: Any, children: list[Any]) -> Any:
    if isinstance(node, Mapping):
        return type(node)(zip(node.keys(), children, strict=True))
    if isinstance(node, tuple) and hasattr(node, "_fields"):  # a namedtuple
        return type(node)(*children)
    if isinstance(node, (list, tuple)):
        return type(node)(children)
    return node


def _is_detections(node: Any) -> bool:
    return (isinstance(node, (list, tuple)) and len(node) > 0
            and all(isinstance(t, Mapping) and "boxes" in t for t in node))


def flatten(inputs: Any, name: str = "inputs") -> Flat:
    """Take ``inputs`` apart by role (see the module docstring); raises for types that have no role."""
    found: dict[str, Any] = {}
    masks: list[Tensor] = []
    tv = _tv_tensors()

    def claim(role: str, value: Any, where: str) -> _Slot:
        if role in found:
            raise ValueError(f"{name} holds two {role} entries: {found[role][0]} and {where}")
        found[role] = (where, value)
        return _Slot(role, value)

    def visit(node: Any, where: str, top: bool, key: str | None) -> Any:
        if tv is not None and isinstance(node, tv.TVTensor):
            if isinstance(node, tv.Image):
                return claim("image", node, where)
            if isinstance(node, tv.Mask):
                masks.append(node)
                return _Slot("mask", node, len(masks) - 1)
            if isinstance(node, tv.BoundingBoxes):
                raise TypeError(
                    f"{where} is a tv_tensors.BoundingBoxes outside detection targets; boxes of a batch must be "
                    "per-image targets: a list of N dicts, each with 'boxes' (and 'labels')"
                )
            raise TypeError(f"{where} is an unsupported {type(node).__name__}: the dense ops support tv_tensors.Image, "
                            "Mask and BoundingBoxes (in per-image detection targets)")
        if type(node) is Tensor:
            lowered = key.lower() if key is not None else None
            if lowered in IMAGE_KEYS or (top and key is None and "image" not in found and not _has_image(inputs)):
                return claim("image", node, where)
            if lowered in MASK_KEYS:
                masks.append(node)
                return _Slot("mask", node, len(masks) - 1)
            if top and (lowered in LABEL_KEYS or (key is None and "image" in found and "labels" not in found)):
                return claim("labels", node, where)
            raise TypeError(
                f"{where} is a plain torch.Tensor with no role here; wrap a spatial target in tv_tensors.Mask (or pass "
                f"it under {MASK_KEYS[0]!r}), images under {IMAGE_KEYS[0]!r} and class labels under {LABEL_KEYS[0]!r}"
            )
        if _is_detections(node):
            return claim("detections", node, where)
        if isinstance(node, Mapping):
            out = {k: visit(v, f"{where}[{k!r}]", top and node is inputs, str(k)) for k, v in node.items()}
            return type(node)(out) if type(node) is not dict else out
        if isinstance(node, (list, tuple)):
            return _rebuild_container(
                node, [visit(v, f"{where}[{i}]", top and node is inputs, None) for i, v in enumerate(node)]
            )
        if isinstance(node, _PASSTHROUGH):
            return node
        raise TypeError(f"{where} is an unsupported {type(node).__module__}.{type(node).__name__}; the dense ops "
                        "take tensors and tv_tensors (Image, Mask, BoundingBoxes in detection targets)")

    template = visit(inputs, name, True, None)
    if "image" not in found:
        raise ValueError(f"{name} holds no images: pass a tv_tensors.Image, a tensor under 'image', "
                         "or (images, labels)")
    where, images = found["image"]
    if images.ndim != 4:
        raise ValueError(f"{where} must be a batch [N, C, H, W], got shape {tuple(images.shape)}")
    n, _, h, w = images.shape
    for m in masks:
        if m.ndim < 3 or m.shape[0] != n or tuple(m.shape[-2:]) != (h, w):
            raise ValueError(f"every Mask in {name} must be [{n}, ..., {h}, {w}] like the images, "
                             f"got shape {tuple(m.shape)}")
    detections = found.get("detections", (None, None))[1]
    if detections is not None and len(detections) != n:
        raise ValueError(f"{found['detections'][0]} must hold one target dict per image ({n}), got {len(detections)}")
    labels = found.get("labels", (None, None))[1]
    return Flat(plain(images), labels, [plain(m) for m in masks],
                None if detections is None else list(detections), template)


def _has_image(inputs: Any) -> bool:
    """Whether a tv_tensors.Image or a tensor under an image key appears anywhere in ``inputs``."""
    tv = _tv_tensors()
    stack = [inputs]
    while stack:
        node = stack.pop()
        if tv is not None and isinstance(node, tv.Image):
            return True
        if isinstance(node, Mapping):
            if any(str(k).lower() in IMAGE_KEYS and isinstance(v, Tensor) for k, v in node.items()):
                return True
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)) and not _is_detections(node):
            stack.extend(node)
    return False


def is_structured(inputs: tuple[Any, ...]) -> bool:
    """Whether call arguments need :func:`flatten`: a dict, or tv_tensors anywhere at the top (cheap check)."""
    if len(inputs) == 1 and isinstance(inputs[0], Mapping):
        return True
    items = inputs[0] if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) else inputs
    return any(is_tv_tensor(v) or isinstance(v, Mapping) for v in items)


__all__ = ["Flat", "boxes_xyxy", "flatten", "is_structured", "is_tv_tensor", "plain", "wrap_like"]
