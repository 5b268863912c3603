"""Unchecked kernels behind :mod:`cutmix.functional` and the transforms (callers validate arguments first).

Speed notes, measured on a CPU (see benchmarks/README.md):

* Gathers use ``index_select`` in memory order: advanced indexing ``x[index]`` is 10-20x slower for uint8, and
  ``index_select`` on a channels_last tensor is slow unless it is seen as the NHWC tensor it is in memory.
* Per-sample boxes are a per-pixel selection. ``torch.where`` with a broadcast mask costs about 1.8 ns per uint8
  element on a CPU. A box mask is the outer product of a row mask and a column mask, so the selection runs instead
  as ``out = x ^ ((x ^ p) & m)`` over the batch *viewed as 64-bit words*, ``m`` holding 0xFF bytes inside the box:
  bit-exact for every dtype (bytes move, no arithmetic happens) and 8 uint8 pixels per instruction. It needs rows
  that are contiguous in memory and no autograd; otherwise ``torch.where`` runs (it is one kernel on a GPU), as it
  does for float32/float64 batches too large for the cache, where one ``where`` pass beats three bitwise ones.
* Large samples on a CPU skip the per-pixel selection: one copy per sample (a view of the box: NumPy's where it is
  installed, whose slice and assignment cost a fraction of torch's dispatch, else an ``as_strided`` tensor)
  moves only the boxes' bytes, about a third of the batch, where the selection makes about four passes over all
  of it. With NumPy views the fixed cost is about 0.5 µs a box (64 boxes: 33 µs, against 119 µs for torch views),
  so the loop pays from 4 KiB a sample (128x3x32² float32 in place 0.52 ms against 0.95 ms for the selection;
  64x3x224² uint8 in place 0.84 ms, 1.13x clone, against 0.98 ms on torch views). Torch views pay from 64 KiB
  (64x3x224², one thread: float32 2.0x clone out of place and 1.0x in place, against 3.8x and 3.6x for the
  selection). In place, samples are written along the partner permutation's cycles (:func:`_write_order`), so few
  boxes are set aside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

Box = tuple[int, int, int, int]  # x0, y0, x1, y1


def _is_nhwc(t: Tensor) -> bool:
    """True when channels are innermost in memory (channels_last, also for views of such a tensor)."""
    return t.shape[1] > 1 and t.stride(1) == 1 and t.stride(3) == t.shape[1]


def gather(t: Tensor, index: Tensor) -> Tensor:
    """``t[index]`` along the batch, in ``t``'s memory format, at memory-copy speed."""
    if _is_nhwc(t):
        return t.permute(0, 2, 3, 1).index_select(0, index).permute(0, 3, 1, 2)
    return t.index_select(0, index)


def needs_grad(*tensors: Tensor) -> bool:
    """Whether autograd records an op on these tensors (the bit-level and per-sample fast paths do not support it)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def nonempty(box: Box | list[int]) -> bool:
    x0, y0, x1, y1 = box
    return x1 > x0 and y1 > y0


def memory_format(t: Tensor) -> torch.memory_format:
    return torch.channels_last if _is_nhwc(t) and not t.is_contiguous() else torch.contiguous_format


# -- per-sample selection ---------------------------------------------------------------------------------------
def box_masks(boxes: Tensor, height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Row mask [N, H] and column mask [N, W] (bool) of per-sample boxes [N, 4]."""
    boxes = boxes.to(device, non_blocking=True)
    ys = torch.arange(height, device=device)
    xs = torch.arange(width, device=device)
    rows = (ys >= boxes[:, 1:2]) & (ys < boxes[:, 3:4])
    cols = (xs >= boxes[:, 0:1]) & (xs < boxes[:, 2:3])
    return rows, cols


def box_mask(boxes: Tensor, height: int, width: int, device: torch.device) -> Tensor:
    """Boolean mask [N, 1, H, W] that is True inside each sample's box."""
    rows, cols = box_masks(boxes, height, width, device)
    return (rows[:, :, None] & cols[:, None, :])[:, None]


def layout(t: Tensor) -> str | None:
    """"nchw" or "nhwc" when the batch is densely packed in that order (rows contiguous in memory), else None."""
    _, c, h, w = t.shape
    if t.stride() == (c * h * w, h * w, w, 1):
        return "nchw"
    if t.stride() == (h * w * c, 1, w * c, c):
        return "nhwc"
    return None


def _words(t: Tensor) -> Tensor | None:
    """``t``'s memory as integer words [N, C or 1, H, row words], or None when its rows are not contiguous.

    NCHW keeps the channel planes ([N, C, H, W * bytes]); channels_last folds channels into rows ([N, 1, H,
    W * C * bytes]). Words are the widest integer type that tiles a row and respects the storage alignment.
    """
    n, c, h, w = t.shape
    packed = layout(t)
    if packed == "nchw":
        rows = t
    elif packed == "nhwc":
        rows = t.permute(0, 2, 3, 1).reshape(n, 1, h, w * c)
    else:
        return None
    words = int_words(rows.shape[-1] * rows.element_size(), rows.storage_offset() * rows.element_size())
    if rows.dtype == words:
        return rows
    try:
        return rows.view(words)  # one view, straight from the image dtype (each view is two dispatched ops)
    except RuntimeError:  # a stride of a size-1 dimension that the word size does not divide
        return rows.view(torch.uint8)


def int_words(row_bytes: int, offset_bytes: int) -> torch.dtype:
    """The widest integer type that tiles a memory row and respects the storage alignment."""
    for dtype, size in ((torch.int64, 8), (torch.int32, 4), (torch.int16, 2)):
        if row_bytes % size == 0 and offset_bytes % size == 0:
            return dtype
    return torch.uint8


# Above this size a float32/float64 batch no longer fits in cache and three memory-bound bitwise passes lose to one
# pass of ``torch.where`` (measured: 64x3x224x224 float32, 10 ms vs 7 ms on one thread); ``where`` stays slow for
# 1- and 2-byte dtypes at every size (uint8: 12 ms vs 2.2 ms).
_WORDS_MAX_BYTES = 4 << 20


def select_boxes(images: Tensor, source: Tensor, boxes: Tensor, *, inplace: bool, scratch: bool) -> Tensor:
    """``images`` with each sample's box [N, 4] taken from ``source`` (same shape, or [1, C, H, W] to broadcast).

    With ``scratch`` the function may overwrite ``source`` and return it as the result. With ``inplace`` the
    result is written into ``images``.
    """
    h, w = images.shape[-2:]
    grad = needs_grad(images, source)
    small_or_narrow = images.element_size() < 4 or images.numel() * images.element_size() <= _WORDS_MAX_BYTES
    if images.device.type == "cpu" and not grad and small_or_narrow:
        xw, sw = _words(images), _words(source)
        if xw is not None and sw is not None and xw.dtype == sw.dtype and xw.shape[1:] == sw.shape[1:]:
            rows, cols = box_masks(boxes, h, w, images.device)
            bytes_per_pixel = xw.shape[-1] * xw.element_size() // w
            col_bytes = cols.to(torch.uint8).repeat_interleave(bytes_per_pixel, dim=1)  # [N, row bytes]
            mask = rows.to(torch.uint8).mul_(255)[:, None, :, None] * col_bytes[:, None, None, :]
            mask = mask.view(xw.dtype)
            reuse = scratch and sw.shape == xw.shape
            diff = sw.bitwise_xor_(xw) if reuse else torch.bitwise_xor(sw, xw)
            diff &= mask  # (source ^ images) inside the box, 0 outside
            if inplace:
                xw ^= diff
                return images
            diff ^= xw
            return source if reuse else _unwords(diff, images)
    mask = box_mask(boxes, h, w, images.device)
    if grad:
        return images.copy_(torch.where(mask, source, images)) if inplace else torch.where(mask, source, images)
    if inplace:
        return torch.where(mask, source, images, out=images)
    if scratch and source.shape == images.shape and source.stride() == images.stride():
        return torch.where(mask, source, images, out=source)
    return torch.where(mask, source, images)


def _unwords(words: Tensor, like: Tensor) -> Tensor:
    """The inverse of :func:`_words` for a fresh word tensor: an image tensor shaped and laid out like ``like``."""
    n, c, h, w = like.shape
    flat = words.view(like.dtype)
    if like.is_contiguous():
        return flat.view(n, c, h, w)
    return flat.view(n, h, w, c).permute(0, 3, 1, 2)


# -- per-sample slice loops ----------------------------------------------------------------------------------------
# Samples of at least this many bytes take the slice loop on a CPU, by the views it would use: NumPy's cost less
# per box, so they pay from smaller samples (the module docstring has the measurements).
_LOOP_MIN_SAMPLE_BYTES = {"numpy": 4 << 10, "torch": 64 << 10}


def _loops(images: Tensor) -> bool:
    """True when per-sample boxes are cheaper as one slice op per sample than as one selection over the batch."""
    if images.device.type != "cpu" or needs_grad(images):
        return False
    sample_bytes = math.prod(images.shape[1:]) * images.element_size()
    return sample_bytes >= _LOOP_MIN_SAMPLE_BYTES["numpy" if _as_array(images) is not None else "torch"]


# Same-size integer dtypes that a slice loop sees a batch as in NumPy: bytes are moved, never converted (and NumPy
# has no bfloat16). A 16-byte element (complex128) keeps torch's views.
_INT_VIEWS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _as_array(t: Tensor) -> Any | None:
    """``t``'s memory as a NumPy array of same-size integers (shared, no copy), or None without NumPy.

    Why: the slice loops pay a fixed cost per box, and a NumPy slice plus assignment costs about half of torch's
    ``as_strided`` plus ``copy_`` dispatch (benchmarks/README.md). torch imports NumPy itself where it is installed.
    """
    words = _INT_VIEWS.get(t.element_size())
    if words is None:
        return None
    try:
        return t.view(words).numpy()
    except (RuntimeError, TypeError):  # torch built without NumPy, a conjugate view, a tensor subclass that refuses
        return None


def _box_viewer(t: Tensor, numpy: bool = True) -> Callable[[int, list[int]], Any]:
    """``view(i, box)``: ``t[i, :, y0:y1, x0:x1]`` without a copy, as a NumPy view (:func:`_as_array`; ``numpy``
    False skips it, for benchmarks), else as a tensor from one ``as_strided`` call (indexing dispatches one op per
    index, 2x the time) with the batch's strides read once (a quarter of the remaining per-view cost).
    :func:`_copy` and :func:`_set_aside` take both."""
    array = _as_array(t) if numpy else None
    if array is not None:
        return lambda i, box: array[i, :, box[1]:box[3], box[0]:box[2]]
    sn, sc, sh, sw = t.stride()
    channels, base, strides, as_strided = t.shape[1], t.storage_offset(), (sc, sh, sw), t.as_strided

    def view(i: int, box: list[int]) -> Tensor:
        x0, y0, x1, y1 = box
        return as_strided((channels, y1 - y0, x1 - x0), strides, base + i * sn + y0 * sh + x0 * sw)

    return view


def _copy(dst: Any, src: Any) -> None:
    """``dst[...] = src`` for two views of :func:`_box_viewer`."""
    if isinstance(dst, Tensor):
        dst.copy_(src)
    else:
        dst[...] = src


def _set_aside(view: Any) -> Any:
    """A copy of a :func:`_box_viewer` view, for an in-place write that would overwrite it before it is read."""
    return view.clone() if isinstance(view, Tensor) else view.copy()


def _write_order(partners: list[int]) -> list[int]:
    """The order in which an in-place paste writes its samples.

    A permutation is walked cycle by cycle (``i``, then the partner ``i`` reads from, then that one's partner...):
    every sample is written before the partner it reads, so only the last sample of each cycle reads a partner that
    has already been written (a random permutation of 64 has about 4.7 cycles). Any other index: in index order.
    """
    n = len(partners)
    if sorted(partners) != list(range(n)):
        return list(range(n))
    seen, order = [False] * n, []
    for start in range(n):
        i = start
        while not seen[i]:
            seen[i] = True
            order.append(i)
            i = partners[i]
    return order


def _paste_loop(images: Tensor, boxes: Tensor, index: Tensor, *, inplace: bool) -> Tensor:
    """Per-sample paste, one copy per sample.

    In place, sample ``i`` reads its partner ``j`` directly unless ``j`` is written before ``i``
    (:func:`_write_order`) and the two boxes overlap; only those partners' boxes are copied aside first.
    """
    boxes_, partners = boxes.tolist(), index.tolist()
    order = _write_order(partners) if inplace else range(len(partners))
    work = [(i, partners[i], boxes_[i]) for i in order if i != partners[i] and nonempty(boxes_[i])]
    read = _box_viewer(images)
    if inplace:
        rank = {i: r for r, i in enumerate(order)}
        patches = {i: _set_aside(read(j, box)) for i, j, box in work if rank[j] < rank[i] and _overlap(box, boxes_[j])}
        write = read
    else:
        images, patches = images.clone(), {}
        write = _box_viewer(images)
    for i, j, box in work:
        patch = patches.get(i)
        _copy(write(i, box), read(j, box) if patch is None else patch)
    return images


def _overlap(a: list[int], b: list[int]) -> bool:
    return max(a[0], b[0]) < min(a[2], b[2]) and max(a[1], b[1]) < min(a[3], b[3])


def _erase_loop(images: Tensor, boxes: Tensor, value: float, *, inplace: bool) -> Tensor:
    """Per-sample erase, one fill per sample."""
    out = images if inplace else images.clone()
    view = _box_viewer(out)
    # A NumPy view is filled with the integer of the same bits as ``value`` in the batch's dtype, converted by fill_.
    fill = torch.empty((), dtype=out.dtype).fill_(value)
    word = fill.view(_INT_VIEWS[out.element_size()]).item() if out.element_size() in _INT_VIEWS else None
    for i, box in enumerate(boxes.tolist()):
        if nonempty(box):
            v = view(i, box)
            v.fill_(fill) if isinstance(v, Tensor) else v.fill(word)
    return out


# -- the image ops ------------------------------------------------------------------------------------------------


def paste(images: Tensor, boxes: Tensor | Box, index: Tensor, *, inplace: bool = False, fused: bool = False) -> Tensor:
    """CutMix's image op: each image receives its partner's pixels inside its box (one shared box, or [N, 4]).

    ``fused`` (per-sample boxes, out of place; callers check both) runs one pass over memory: :mod:`cutmix._native`
    on a CPU, :mod:`cutmix._fused` (compiled) elsewhere.
    """
    if fused:
        return _paste_fused(images, boxes, index)
    if isinstance(boxes, tuple) or boxes.ndim == 1:
        x0, y0, x1, y1 = boxes if isinstance(boxes, tuple) else boxes.tolist()
        out = images if inplace else images.clone()
        if nonempty((x0, y0, x1, y1)):
            out[:, :, y0:y1, x0:x1] = gather(images[:, :, y0:y1, x0:x1], index)  # gathered before the write
        return out
    if _loops(images):
        return _paste_loop(images, boxes, index, inplace=inplace)
    return select_boxes(images, gather(images, index), boxes, inplace=inplace, scratch=True)


def _paste_fused(images: Tensor, boxes: Tensor, index: Tensor) -> Tensor:
    from cutmix import _fused  # imported at the first fused call only: the default path never pays for it

    def eager() -> Tensor:
        return select_boxes(images, gather(images, index), boxes, inplace=False, scratch=True)

    if not _fused.supports(images):  # autograd or an unusual layout: the eager op is the fused op's definition
        return eager()
    if images.device.type == "cpu":  # a hand-written pass: inductor's CPU code is 7x slower for uint8 (cutmix._native)
        from cutmix import _native

        return _native.paste(images, boxes, index, eager)
    rows, cols = box_masks(boxes, images.shape[2], images.shape[3], images.device)
    return _fused.paste(images, rows, cols, index, eager)


def erase(images: Tensor, boxes: Tensor | Box, value: float, *, inplace: bool = False) -> Tensor:
    """Cutout's image op: fill each box (one shared box, or [N, 4]) with ``value``."""
    if isinstance(boxes, tuple) or boxes.ndim == 1:
        x0, y0, x1, y1 = boxes if isinstance(boxes, tuple) else boxes.tolist()
        out = images if inplace else images.clone()
        out[:, :, y0:y1, x0:x1] = value
        return out
    if _loops(images):
        return _erase_loop(images, boxes, value, inplace=inplace)
    fill = torch.full((1, *images.shape[1:]), value, dtype=images.dtype, device=images.device)
    return select_boxes(images, fill.contiguous(memory_format=memory_format(images)), boxes, inplace=inplace,
                        scratch=False)


def blend(images: Tensor, lam: float | Tensor, index: Tensor, *, inplace: bool = False) -> Tensor:
    """Mixup's image op: ``lam * x + (1 - lam) * x[index]`` (``lam`` a number or [N] float64).

    Floating images use ``lerp``, which returns either input exactly at weight 0 or 1. uint8 images are mixed in
    float32 and rounded to the nearest integer; half-precision images with per-sample weights are mixed in float32
    too, so that the weights are not rounded to 8 bits.
    """
    n = images.shape[0]
    partner = gather(images, index)
    if isinstance(lam, Tensor):
        lam = lam.to(images.device, non_blocking=True).view(n, 1, 1, 1)
    if images.is_floating_point() and not (isinstance(lam, Tensor) and images.element_size() < 4):
        weight = lam.to(images.dtype) if isinstance(lam, Tensor) else lam
        if inplace:
            return images.lerp_(partner, 1.0 - weight)
        return partner.lerp_(images, weight)
    if images.is_floating_point():  # half precision with a weight per sample: weights stay float32
        mixed = partner.float().lerp_(images.float(), lam.float())
        return images.copy_(mixed) if inplace else mixed.to(images.dtype)
    mixed = partner.float()
    if isinstance(lam, Tensor):
        weight32 = lam.float()
        mixed.mul_(1.0 - weight32).addcmul_(images, weight32)
    else:
        mixed.mul_(1.0 - lam).add_(images, alpha=lam)
    mixed.round_()
    if inplace:
        return images.copy_(mixed)
    return mixed.to(images.dtype, memory_format=memory_format(images))


# -- targets ------------------------------------------------------------------------------------------------------
def label_weights(lam: Tensor, label: str) -> Tensor:
    """The weight of each image's own label given the share ``lam`` of its pixels that it keeps."""
    if label == "onehot":
        return (lam >= 0.5).to(lam.dtype)
    if label == "complete":
        return torch.where((lam > 0) & (lam < 1), torch.full_like(lam, 0.5), lam)
    return lam


def smooth(targets: Tensor, label_smoothing: float) -> Tensor:
    if label_smoothing == 0.0:
        return targets
    return targets.mul(1.0 - label_smoothing).add_(label_smoothing / targets.shape[1])


def one_hot(labels: Tensor, num_classes: int, label_smoothing: float, dtype: torch.dtype) -> Tensor:
    if labels.ndim == 2:
        return smooth(labels.to(dtype), label_smoothing)
    targets = torch.zeros(labels.shape[0], num_classes, dtype=dtype, device=labels.device)
    targets.scatter_(1, labels.long()[:, None], 1.0)
    return smooth(targets, label_smoothing)


def mix_targets(
    labels: Tensor, index: Tensor, lam: Tensor, num_classes: int, label: str, label_smoothing: float,
    dtype: torch.dtype,
) -> Tensor:
    """``w * y + (1 - w) * y[index]``, ``w = label_weights(lam)`` ([N] float64), computed in float64."""
    index = index.to(labels.device, non_blocking=True)
    w = label_weights(lam.to(labels.device, non_blocking=True), label)
    if labels.ndim == 2:
        y = labels.double()
        targets = w[:, None] * y + (1.0 - w[:, None]) * y[index]
    else:
        y = labels.long()[:, None]
        targets = torch.zeros(labels.shape[0], num_classes, dtype=torch.float64, device=labels.device)
        targets.scatter_add_(1, y, w[:, None]).scatter_add_(1, y[index], (1.0 - w)[:, None])
    return smooth(targets.to(dtype), label_smoothing)
