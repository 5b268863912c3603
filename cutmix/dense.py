"""Dense targets under CutMix, Cutout and Mixup: segmentation masks, soft and confidence maps, detection boxes.

One geometry for every target. The ops take the randomness of :mod:`cutmix.functional` as it is: ``boxes`` [4]
(one box for the batch) or [N, 4] (one per sample), half-open int64 ``(x0, y0, x1, y1)``; ``index[i]`` the image
whose pixels image ``i`` receives inside its box; ``lam`` the share each image keeps. So a mask pixel, and every
kept box, comes from the image whose pixels are at that place: call ``functional.paste(images, boxes, index)`` and
``paste_masks(masks, boxes, index)`` with the same arguments.

* Masks are [N, ..., H, W] (hard masks [N, H, W] or [N, 1, H, W] of any integer dtype or bool; soft or confidence
  maps [N, K, H, W] floating). They keep dtype, shape and memory format; an ignore value such as 255 is copied like
  any other pixel. The ops are vectorised over the batch (the image kernels of :mod:`cutmix._ops`).
* Cutout writes ``value`` into masks: pass the loss's ``ignore_index`` for hard masks (so the erased pixels are not
  trained on) and e.g. 0.0 for confidence maps.
* Mixup blends soft maps like images. A hard mask has no blended value: :func:`blend_masks` raises, or with
  ``hard="larger"`` keeps the mask of the image with the larger weight (ties keep the image's own, as the
  ``"onehot"`` label mode does); :func:`one_hot_masks` turns hard masks into soft maps that blend exactly.
* Detection targets are torchvision's: a list of N dicts ``{"boxes": [M_i, 4] xyxy, "labels": [M_i], ...}``
  (plain tensors or ``tv_tensors.BoundingBoxes`` in any axis-aligned format, kept). See :func:`paste_detections`.
  Boxes loop over images in Python because every image holds a different number of them (a ragged batch has no
  tensor form); the work per image is vectorised over its boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cutmix import _ops, tv
from cutmix._checks import check_choice, check_fraction, check_images, check_index, check_labels, check_positive_int
from cutmix.boxes import box_lambda, check_boxes
from cutmix.functional import _check_lam
from cutmix.transforms import CutMix, Cutout, MixUp
from cutmix.tv import boxes_xyxy, plain, wrap_like

HARD_MODES = ("error", "larger")
IMAGE_KEYS = ("image_id", "orig_size", "size")  # per-image values of a detection target, whatever their length
Box = tuple[int, int, int, int]


# -- masks ----------------------------------------------------------------------------------------------------------
def check_masks(masks: object, name: str = "masks") -> Tensor:
    """Masks or maps [N, ..., H, W] (at least 3-D) of an integer, bool or floating dtype, N, H, W > 0."""
    if not isinstance(masks, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [N, H, W] or [N, ..., H, W], got {type(masks).__name__}")
    if masks.ndim < 3:
        raise ValueError(f"{name} must have a batch and two spatial dimensions [N, ..., H, W], "
                         f"got shape {tuple(masks.shape)}")
    if masks.is_complex():
        raise TypeError(f"{name} must be integer, bool or floating, got {masks.dtype}")
    if masks.shape[0] == 0 or masks.shape[-1] == 0 or masks.shape[-2] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(masks.shape)}")
    return masks


def _boxes(boxes: Tensor | Box, n: int, height: int, width: int) -> Tensor:
    if isinstance(boxes, tuple):
        boxes = torch.tensor(boxes, dtype=torch.int64)
    return check_boxes(boxes, n, height, width)


def _as4d(masks: Tensor) -> Tensor:
    """[N, ..., H, W] as [N, C, H, W]: a view for 3-D and 4-D masks (what the image kernels take)."""
    if masks.ndim == 3:
        return masks.unsqueeze(1)
    if masks.ndim == 4:
        return masks
    return masks.reshape(masks.shape[0], -1, *masks.shape[-2:])


def _apply(masks: Tensor, op: Any, inplace: bool) -> Tensor:
    """Run an image kernel ``op(masks4d, inplace)`` on masks of any rank; returns ``masks``' shape and type."""
    x = plain(masks)
    x4 = _as4d(x)  # a view of x for 3-D, 4-D and contiguous masks
    if inplace and (x.ndim <= 4 or x.is_contiguous()):
        op(x4, True)
        return masks
    out = op(x4, False).reshape(x.shape)
    if inplace:
        x.copy_(out)
        return masks
    return wrap_like(out, masks)


def paste_masks(masks: Tensor, boxes: Tensor | Box, index: Tensor, *, inplace: bool = False) -> Tensor:
    """CutMix on masks or maps: each receives its partner's pixels inside its box (``functional.paste``'s rule)."""
    masks = check_masks(masks)
    n, h, w = masks.shape[0], *masks.shape[-2:]
    boxes = _boxes(boxes, n, h, w)
    index = check_index(index, n).to(masks.device, non_blocking=True)
    return _apply(masks, lambda x, ip: _ops.paste(x, boxes, index, inplace=ip), inplace)


def _check_fill(value: object, dtype: torch.dtype, name: str) -> int | float | bool:
    if dtype == torch.bool:
        if value not in (0, 1) or isinstance(value, float):
            raise ValueError(f"{name} for a bool mask must be True/False or 0/1, got {value!r}")
        return bool(value)
    if dtype.is_floating_point:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        return float(value)
    info = torch.iinfo(dtype)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} for a {dtype} mask must be an int (the loss's ignore_index, e.g. 255), "
                        f"got {type(value).__name__}")
    if not info.min <= value <= info.max:
        raise ValueError(f"{name}={value} does not fit a {dtype} mask (range [{info.min}, {info.max}])")
    return value


def erase_masks(masks: Tensor, boxes: Tensor | Box, *, value: float, inplace: bool = False) -> Tensor:
    """Cutout on masks: fill each box with ``value`` (the ``ignore_index`` of a hard mask, 0.0 for a confidence)."""
    masks = check_masks(masks)
    n, h, w = masks.shape[0], *masks.shape[-2:]
    boxes = _boxes(boxes, n, h, w)
    fill = _check_fill(value, masks.dtype, "value")
    return _apply(masks, lambda x, ip: _ops.erase(x, boxes, fill, inplace=ip), inplace)


def blend_masks(
    masks: Tensor, lam: float | Tensor, index: Tensor, *, hard: str = "error", inplace: bool = False
) -> Tensor:
    """Mixup on maps: ``lam * m + (1 - lam) * m[index]`` for floating maps, as ``functional.blend`` does on images.

    Hard masks (integer or bool) have no blended value. ``hard="error"`` raises; ``hard="larger"`` keeps, per
    image, the mask of the larger weight (``lam >= 0.5``: its own). To train on the exact mixture, convert them with
    :func:`one_hot_masks` first.
    """
    masks = check_masks(masks)
    check_choice(hard, "hard", HARD_MODES)
    n = masks.shape[0]
    index = check_index(index, n).to(masks.device, non_blocking=True)
    lam = _check_lam(lam, n)
    if masks.is_floating_point():
        return _apply(masks, lambda x, ip: _ops.blend(x, lam, index, inplace=ip), inplace)
    if hard == "error":
        raise ValueError(
            f"blend_masks cannot blend hard masks ({masks.dtype}): Mixup has no class for a blended pixel. Pass "
            "soft maps (one_hot_masks(masks, num_classes)), or hard='larger' to keep the mask of the larger weight"
        )
    own = torch.as_tensor(lam, dtype=torch.float64).to(masks.device).expand(n) >= 0.5
    own = own.view(n, *([1] * (masks.ndim - 1)))
    x = plain(masks)
    out = torch.where(own, x, _ops.gather(_as4d(x), index).reshape(x.shape))
    if inplace:
        x.copy_(out)
        return masks
    return wrap_like(out, masks)


def one_hot_masks(
    masks: Tensor, num_classes: int, *, ignore_index: int | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Hard masks [N, H, W] or [N, 1, H, W] as soft maps [N, K, H, W]; ``ignore_index`` pixels are all zeros.

    A soft cross-entropy on the (mixed) maps then ignores those pixels, and Mixup of two one-hot maps is exact.
    """
    masks = check_masks(masks)
    if masks.is_floating_point() or masks.dtype == torch.bool:
        raise TypeError(f"masks must hold integer class indices, got {masks.dtype}")
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W] or [N, 1, H, W], got shape {tuple(masks.shape)}")
    check_positive_int(num_classes, "num_classes")
    m = plain(masks).long()
    valid = torch.ones_like(m, dtype=torch.bool) if ignore_index is None else m != ignore_index
    if m.device.type == "cpu" and bool(((m < 0) | (m >= num_classes))[valid].any()):
        raise ValueError(f"masks must hold classes in [0, {num_classes - 1}]"
                         + ("" if ignore_index is None else f" or ignore_index={ignore_index}"))
    out = torch.zeros(m.shape[0], num_classes, *m.shape[1:], dtype=dtype, device=m.device)
    out.scatter_(1, m.where(valid, 0).unsqueeze(1), valid.unsqueeze(1).to(dtype))
    return out


def pasted_region(boxes: Tensor | Box, n: int, height: int, width: int) -> Tensor:
    """Bool [N, H, W]: True where image ``i`` shows its partner's pixels (for a loss that weights them)."""
    boxes = _boxes(boxes, n, height, width)
    return _ops.box_mask(boxes.expand(n, 4), height, width, boxes.device)[:, 0]


# -- detection targets ----------------------------------------------------------------------------------------------
def _regions(boxes: Tensor | Box, n: int, canvas_size: object) -> list[Box]:
    if (not isinstance(canvas_size, (tuple, list)) or len(canvas_size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in canvas_size)):
        raise ValueError(f"canvas_size must be the images' (height, width) as two ints > 0, got {canvas_size!r}")
    h, w = canvas_size
    b = _boxes(boxes, n, h, w)
    return [tuple(r) for r in b.expand(n, 4).tolist()]


def _check_targets(targets: object, n: int | None = None) -> Sequence[Mapping[str, Any]]:
    if not isinstance(targets, (list, tuple)):
        raise TypeError(f"targets must be a list of per-image dicts with 'boxes', got {type(targets).__name__}")
    if n is not None and len(targets) != n:
        raise ValueError(f"targets must hold one dict per image ({n}), got {len(targets)}")
    for i, t in enumerate(targets):
        if not isinstance(t, Mapping) or "boxes" not in t:
            raise TypeError(f"targets[{i}] must be a dict with 'boxes' [M, 4] (and 'labels' [M]), got "
                            f"{type(t).__name__}")
        if "keypoints" in t:
            raise ValueError(f"targets[{i}] has 'keypoints', which the dense ops do not move; drop them first")
    return targets


class _Target:
    """One image's target split into xyxy boxes (float64), its per-box values and its per-image values."""

    def __init__(self, target: Mapping[str, Any], i: int, canvas_size: tuple[int, int]) -> None:
        boxes = target["boxes"]
        self.xyxy, self.restore = boxes_xyxy(boxes, f"targets[{i}]['boxes']")
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4 or self.xyxy.is_complex():
            raise ValueError(f"targets[{i}]['boxes'] must be [M, 4], got shape {tuple(self.xyxy.shape)}")
        self.b = self.xyxy.double()
        if bool(((self.b[:, 2] <= self.b[:, 0]) | (self.b[:, 3] <= self.b[:, 1])).any()):
            raise ValueError(f"targets[{i}]['boxes'] must have x1 > x0 and y1 > y0 (boxes of positive size)")
        m = self.b.shape[0]
        self.per_box = {k: v for k, v in target.items() if k != "boxes" and k not in IMAGE_KEYS
                        and isinstance(v, Tensor) and v.ndim >= 1 and v.shape[0] == m}
        self.spatial = {k for k, v in self.per_box.items() if v.ndim >= 3 and tuple(v.shape[-2:]) == canvas_size}
        self.target, self.i = target, i

    def part(self, region: Box, inside: bool, min_visibility: float) -> tuple[Tensor, dict[str, Tensor]]:
        """The boxes left (``inside=False``: outside ``region``; True: inside it), filtered, with their values."""
        b, (rx0, ry0, rx1, ry1) = self.b, region
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        clip = torch.stack([b[:, 0].clamp(min=rx0), b[:, 1].clamp(min=ry0),
                            b[:, 2].clamp(max=rx1), b[:, 3].clamp(max=ry1)], dim=1)
        inter = (clip[:, 2] - clip[:, 0]).clamp(min=0) * (clip[:, 3] - clip[:, 1]).clamp(min=0)
        if inside:
            kept_area, new = inter, clip
        else:
            kept_area, new = area - inter, _outside_box(b, region, inter > 0)
        frac = kept_area / area
        keep = (kept_area > 0) & (frac >= min_visibility)
        values = {}
        for k, v in self.per_box.items():
            v = plain(v)[keep]
            if k == "area":
                v = _scaled(v, frac[keep])
            elif k in self.spatial:
                v = _crop_masks(v, region, inside)
            values[k] = v
        return new[keep].to(self.xyxy.dtype), values


def _scaled(area: Tensor, frac: Tensor) -> Tensor:
    """A per-box area times the kept fraction (exact for box areas, proportional for mask areas)."""
    out = area.double() * frac.to(area.device)
    return out.to(area.dtype) if area.is_floating_point() else out.round().to(area.dtype)


def _crop_masks(masks: Tensor, region: Box, inside: bool) -> Tensor:
    """Instance masks [M, ..., H, W] with the pixels outside (``inside``) or inside the region set to zero."""
    x0, y0, x1, y1 = region
    if inside:
        out = torch.zeros_like(masks)
        out[..., y0:y1, x0:x1] = masks[..., y0:y1, x0:x1]
        return out
    out = masks.clone()
    out[..., y0:y1, x0:x1] = 0
    return out


def _outside_box(b: Tensor, region: Box, overlaps: Tensor) -> Tensor:
    """The tight box of each box minus the region: it shrinks only along an axis whose whole extent it covers.

    If the region does not span a box's width, a full-height strip of the box stays visible, so its y-extent is
    kept; symmetric in x. A region inside the box (a hole) or over a corner leaves the box as it is.
    """
    rx0, ry0, rx1, ry1 = region
    out = b.clone()
    for lo, hi, r_lo, r_hi, span_lo, span_hi, s_lo, s_hi in (
        (1, 3, ry0, ry1, 0, 2, rx0, rx1),  # y-extent shrinks where the region spans the box's width
        (0, 2, rx0, rx1, 1, 3, ry0, ry1),
    ):
        spans = overlaps & (s_lo <= b[:, span_lo]) & (s_hi >= b[:, span_hi])
        covers_lo = spans & (r_lo <= b[:, lo])  # the region covers the box's low side: it starts at r_hi
        covers_hi = spans & (r_hi >= b[:, hi])
        out[:, lo] = torch.where(covers_lo, torch.full_like(b[:, lo], r_hi).minimum(b[:, hi]), out[:, lo])
        out[:, hi] = torch.where(covers_hi, torch.full_like(b[:, hi], r_lo).maximum(b[:, lo]), out[:, hi])
    return out


def _assemble(own: _Target, parts: list[tuple[Tensor, dict[str, Tensor]]], partner: _Target | None) -> dict:
    if partner is not None and set(partner.per_box) != set(own.per_box):
        raise ValueError(
            f"targets[{own.i}] and its partner targets[{partner.i}] must have the same per-box keys to be mixed, "
            f"got {sorted(own.per_box)} and {sorted(partner.per_box)}"
        )
    out = dict(own.target)
    out["boxes"] = own.restore(torch.cat([p[0] for p in parts]))
    for k, like in own.per_box.items():
        out[k] = wrap_like(torch.cat([p[1][k] for p in parts]), like)
    return out


def paste_detections(
    targets: Sequence[Mapping[str, Any]],
    boxes: Tensor | Box,
    index: Tensor,
    *,
    canvas_size: tuple[int, int],
    min_visibility: float = 0.0,
) -> list[dict[str, Any]]:
    """CutMix on detection targets: the boxes of each image after ``functional.paste(images, boxes, index)``.

    Image ``i`` keeps its own boxes outside its pasted region (shrunk to the tight box of what stays visible, where
    the region covers a whole side; visible fraction = area outside the region / original area) and gains its
    partner's boxes clipped to the region (kept fraction = clipped area / original area). A box is kept when that
    fraction is > 0 and >= ``min_visibility``; own boxes come first. Values with one entry per box ("labels",
    "iscrowd", "scores", ...) follow their boxes; "area" is scaled by the kept fraction; instance masks [M, H, W]
    are cut to the pixels that stay; "image_id" and other per-image values stay with the image. An image that
    receives nothing (empty box, or its own partner) keeps its target unchanged.
    """
    n = len(_check_targets(targets))
    regions = _regions(boxes, n, canvas_size)
    index_list = check_index(index, n).tolist()
    min_visibility = check_fraction(min_visibility, "min_visibility")
    parsed = [_Target(t, i, tuple(canvas_size)) for i, t in enumerate(targets)]
    out = []
    for i, (region, j) in enumerate(zip(regions, index_list, strict=True)):
        x0, y0, x1, y1 = region
        if j == i or x1 <= x0 or y1 <= y0:
            out.append(dict(targets[i]))
            continue
        parts = [parsed[i].part(region, False, min_visibility), parsed[j].part(region, True, min_visibility)]
        out.append(_assemble(parsed[i], parts, parsed[j]))
    return out


def erase_detections(
    targets: Sequence[Mapping[str, Any]],
    boxes: Tensor | Box,
    *,
    canvas_size: tuple[int, int],
    min_visibility: float = 0.0,
) -> list[dict[str, Any]]:
    """Cutout on detection targets: each image keeps the boxes that stay visible outside its erased box.

    The same rule as the own boxes of :func:`paste_detections`; the erased pixels hold no object.
    """
    n = len(_check_targets(targets))
    regions = _regions(boxes, n, canvas_size)
    min_visibility = check_fraction(min_visibility, "min_visibility")
    out = []
    for i, region in enumerate(regions):
        x0, y0, x1, y1 = region
        if x1 <= x0 or y1 <= y0:
            out.append(dict(targets[i]))
            continue
        own = _Target(targets[i], i, tuple(canvas_size))
        out.append(_assemble(own, [own.part(region, False, min_visibility)], None))
    return out


# -- the transform ------------------------------------------------------------------------------------------------
@dataclass
class MixParams:
    """What one call did, so that a loss can reuse it: ``boxes`` [N, 4] int64 (the pasted or erased region of each
    image; empty for Mixup and where nothing happened), ``index`` [N] (the partners; ``arange`` when not applied),
    ``lam`` [N] float64 (the share each image keeps) and ``op`` ("cutmix", "mixup", "cutout" or "none")."""

    boxes: Tensor
    index: Tensor
    lam: Tensor
    op: str

    def region(self, height: int, width: int) -> Tensor:
        """Bool [N, H, W]: where image ``i`` shows its partner's (or erased) pixels."""
        return pasted_region(self.boxes, self.boxes.shape[0], height, width)


def _roles(inputs: tuple[Any, ...]) -> list[str]:
    """Roles of plain positional arguments after the images: masks (>= 3-D), labels (1-D/2-D), detections."""
    roles = []
    for i, value in enumerate(inputs[1:], start=1):
        if isinstance(value, (list, tuple)) and value and all(isinstance(t, Mapping) for t in value):
            roles.append("detections")
        elif isinstance(value, Tensor) and value.ndim >= 3:
            roles.append("mask")
        elif isinstance(value, Tensor) and value.ndim in (1, 2) and "labels" not in roles:
            roles.append("labels")
        else:
            what = type(value).__name__ + (f" of shape {tuple(value.shape)}" if isinstance(value, Tensor) else "")
            raise TypeError(f"mix(images, ...): argument {i} is a {what}; expected class labels [N] / [N, K] "
                            "(once), masks [N, ..., H, W], or detection targets (a list of dicts with 'boxes')")
    return roles


class DenseMix(nn.Module):
    """A :class:`~cutmix.CutMix`, :class:`~cutmix.MixUp` or :class:`~cutmix.Cutout` applied to images and to every
    spatial target with one geometry (the transform's own draws, generator and schedule).

    Calls: ``images, targets, masks = mix(images, labels, masks)`` (any number of masks or maps, in any order after
    the images; labels optional); ``images, dets = mix(images, [{"boxes": ..., "labels": ...}, ...])``; or one dict
    or tuple of tv_tensors (``{"image": Image, "mask": Mask, "labels": y}``) which comes back with the same structure
    and types. Labels become the transform's soft targets. ``return_params=True`` appends a :class:`MixParams`.

    ``min_visibility``: the least visible fraction of a box to keep it (see :func:`paste_detections`).
    ``ignore_index``: what Cutout writes into integer masks; ``map_fill`` what it writes into floating maps.
    ``hard``: Mixup on hard masks, see :func:`blend_masks` (Mixup has no rule for boxes and raises).
    """

    def __init__(
        self,
        transform: CutMix | MixUp | Cutout,
        *,
        min_visibility: float = 0.0,
        ignore_index: int = 255,
        map_fill: float = 0.0,
        hard: str = "error",
        return_params: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(transform, (CutMix, MixUp, Cutout)):
            raise TypeError(f"transform must be a cutmix.CutMix, MixUp or Cutout, got {type(transform).__name__}")
        self.transform = transform
        self.min_visibility = check_fraction(min_visibility, "min_visibility")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__}")
        self.ignore_index = ignore_index
        self.map_fill = float(map_fill)
        self.hard = check_choice(hard, "hard", HARD_MODES)
        self.return_params = bool(return_params)

    def forward(self, *inputs: Any) -> Any:
        if tv.is_structured(inputs):
            flat = tv.flatten(inputs[0] if len(inputs) == 1 else inputs)
            images, labels, masks, dets, params = self._mix(flat.images, flat.labels, flat.masks, flat.detections)
            out = flat.rebuild(images, labels, masks, dets)
            return (out, params) if self.return_params else out
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        if not inputs:
            raise TypeError("expected mix(images, ...) with images [N, C, H, W], got no arguments")
        roles = _roles(inputs)
        labels = next((v for r, v in zip(roles, inputs[1:], strict=True) if r == "labels"), None)
        masks = [v for r, v in zip(roles, inputs[1:], strict=True) if r == "mask"]
        dets = [v for r, v in zip(roles, inputs[1:], strict=True) if r == "detections"]
        if len(dets) > 1:
            raise TypeError("expected at most one list of detection targets")
        images, targets, masks, new_dets, params = self._mix(inputs[0], labels, masks, dets[0] if dets else None)
        mixed = {"labels": iter([targets]), "mask": iter(masks), "detections": iter([new_dets])}
        out = (images, *(next(mixed[r]) for r in roles))
        return (*out, params) if self.return_params else out

    def _mix(
        self, images: Tensor, labels: Tensor | None, masks: list[Tensor], dets: list[dict[str, Any]] | None
    ) -> tuple[Tensor, Tensor | None, list[Tensor], list[dict[str, Any]] | None, MixParams]:
        t = self.transform
        check_images(images, min_batch=2 if t.training else 1)
        n, _, h, w = images.shape
        k = 0
        if labels is not None:
            labels, k = check_labels(labels, n, t.num_classes, device=images.device)
        t.check_call(images)
        for j, m in enumerate(masks):
            check_masks(m, f"masks[{j}]")
            if m.shape[0] != n or tuple(m.shape[-2:]) != (h, w):
                raise ValueError(f"masks[{j}] must be [{n}, ..., {h}, {w}] like the images, got {tuple(m.shape)}")
        if dets is not None:
            _check_targets(dets, n)
        drawn = t.draw(n) if t.training else None
        if drawn is None:
            params = MixParams(torch.zeros(n, 4, dtype=torch.int64), torch.arange(n),
                               torch.ones(n, dtype=torch.float64), "none")
            targets = None if labels is None else t.identity_targets(labels, k)
            return images, targets, list(masks), dets, params
        index, selected = drawn
        dev_index = index.to(images.device, non_blocking=True)
        targets = None
        if isinstance(t, CutMix):
            boxes, lam = t.sample(n, h, w, selected)
            box_t = _boxes(boxes, n, h, w).expand(n, 4)
            images = _ops.paste(images, boxes, dev_index, inplace=t.inplace, fused=t.fused)
            masks = [paste_masks(m, box_t, index) for m in masks]
            if dets is not None:
                dets = paste_detections(dets, box_t, index, canvas_size=(h, w), min_visibility=self.min_visibility)
            if labels is not None:
                targets = t.mixed_targets(labels, k, index, lam, t.label)
            return images, targets, masks, dets, MixParams(box_t.clone(), index, lam, "cutmix")
        if isinstance(t, Cutout):
            boxes = t.sample(n, h, w, selected)
            box_t = _boxes(boxes, n, h, w).expand(n, 4)
            images = _ops.erase(images, boxes, t.value, inplace=t.inplace)
            masks = [erase_masks(m, box_t, value=self.map_fill if m.is_floating_point() else self.ignore_index)
                     for m in masks]
            if dets is not None:
                dets = erase_detections(dets, box_t, canvas_size=(h, w), min_visibility=self.min_visibility)
            if labels is not None:
                targets = t.identity_targets(labels, k)
            return images, targets, masks, dets, MixParams(box_t.clone(), torch.arange(n), box_lambda(box_t, h, w),
                                                           "cutout")
        if dets is not None:
            raise ValueError("MixUp has no rule for detection boxes (a blended image holds both sets at partial "
                             "opacity); use CutMix or Cutout for detection targets")
        lam = t.sample(n, selected).expand(n)
        weight = float(lam[0]) if selected is None else lam
        images = _ops.blend(images, weight, dev_index, inplace=t.inplace)
        masks = [blend_masks(m, weight, index, hard=self.hard) for m in masks]
        if labels is not None:
            targets = t.mixed_targets(labels, k, index, lam, t.label)
        return images, targets, masks, dets, MixParams(torch.zeros(n, 4, dtype=torch.int64), index, lam, "mixup")



__all__ = [
    "DenseMix",
    "MixParams",
    "blend_masks",
    "check_masks",
    "erase_detections",
    "erase_masks",
    "one_hot_masks",
    "paste_detections",
    "paste_masks",
    "pasted_region",
]
