"""A timm-compatible ``Mixup`` and ``FastCollateMixup`` on cutmix's exact, vectorised ops (timm is not needed).

A drop-in for ``timm.data.Mixup``: the same constructor (argument names, order and defaults of timm 1.0) and the
same call, ``x, target = mixup_fn(x, y)``. As in timm, sample ``i`` is mixed with sample ``N - 1 - i`` (the batch
reversed), ``switch_prob`` picks CutMix over Mixup when both are enabled, ``mixup_enabled = False`` turns mixing
off, and targets are smoothed one-hot labels mixed by λ (off = smoothing / num_classes, on = 1 - smoothing + off).

What differs from timm, and why:

* **Vectorised in every mode.** timm loops over the samples in Python in ``"elem"`` and ``"pair"`` modes (a slice
  copy or a blend per sample). Here a mode only decides how the parameters are drawn (one set for the batch, one per
  pair, one per sample); one per-pixel selection and one blend then mix the whole batch.
* **Any batch size, odd too.** timm asserts an even batch. Here the middle sample of an odd batch is its own partner
  in ``"batch"`` and ``"elem"`` modes (its image and its target stay its own) and has no pair in ``"pair"`` mode
  (it is left unmixed).
* **Exact λ.** A target weighs each label by the share of pixels its image contributes after the box is clipped at
  the border, computed in float64 and returned as float32 whatever the images' dtype (timm builds per-sample λ in
  the images' dtype, so bf16 batches get 8-bit label weights). ``correct_lam=False`` (timm's option to weigh by the
  sampled λ, which is wrong for clipped boxes) is refused. With ``cutmix_minmax`` the box is drawn as timm draws it.
* **Seeded by ``generator=``** (a ``torch.Generator``) instead of NumPy's global RNG, so that a run can be replayed;
  ``state_dict()`` carries the stream, and DataLoader workers re-seed it from their worker seed.
* **Out of place.** The input batch is left as it was (timm mixes ``x`` in place). uint8 batches work in every mode
  (Mixup is rounded to the nearest integer, as timm's fast collate does).

Draws per call, in this order, for M items (1 in ``"batch"`` mode, N // 2 pairs in ``"pair"`` mode, N samples in
``"elem"`` mode): whether each item is mixed (M uniforms), CutMix or Mixup (M uniforms, only when both are enabled),
λ ~ Beta(cutmix_alpha) then λ ~ Beta(mixup_alpha) (M each, for the enabled ones), then the boxes (see
:func:`sample_timm_boxes`).

:func:`mixup_from_flags` builds a ``Mixup`` from the values of timm's ``train.py`` flags (:func:`timm_flags` lists
them with timm's defaults, :func:`add_timm_flags` adds them to an ``argparse`` parser), so that a CLI can take them
as aliases.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import get_worker_info

from cutmix import functional as F
from cutmix import sampling
from cutmix._checks import check_positive_int
from cutmix.boxes import box_lambda
from cutmix.integrations.timm_flags import TimmFlag, add_timm_flags, timm_flags  # noqa: F401 (public here too)

MODES = ("batch", "pair", "elem")


def _number(value: object, name: str, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [{low}, {high}], got {type(value).__name__}")
    if not low <= value <= high:  # also rejects nan
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)


def _minmax(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"cutmix_minmax must be None or a pair (min, max) of image fractions, got {value!r}")
    low = _number(value[0], "cutmix_minmax[0]", 0.0, 1.0)
    high = _number(value[1], "cutmix_minmax[1]", 0.0, 1.0)
    if not low < high:
        raise ValueError(f"cutmix_minmax must satisfy min < max, got {value!r}")
    return low, high


def sample_timm_boxes(
    lam: Tensor, height: int, width: int, minmax: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """timm's CutMix boxes for sampled ``lam`` [M], as int64 [M, 4] ``(x0, y0, x1, y1)`` half-open.

    Without ``minmax`` (timm's ``rand_bbox``): sides ``int(side * sqrt(1 - lam))``, centre uniform over the pixels
    (row, then column), the box spanning ``c - s // 2`` to ``c + (s + 1) // 2``, clipped at the border. With
    ``minmax`` (``rand_bbox_minmax``): each side uniform in ``[int(side * min), int(side * max))`` (height, then
    width), the box uniform inside the image (row, then column); ``lam`` is not used.
    """
    m = lam.shape[0]
    device = lam.device
    size = torch.tensor([width, height], device=device)
    if minmax is None:
        ratio = (1.0 - lam.double()).clamp(0.0, 1.0).sqrt()
        sides = (ratio[:, None] * size.double()).floor().long()
        cy, cx = sampling.randint(height, m, generator), sampling.randint(width, m, generator)
        centres = torch.stack([cx, cy], dim=1).to(device)
        lo = (centres - sides // 2).clamp_min(0)
        hi = torch.minimum(centres + (sides + 1) // 2, size)
        return torch.cat([lo, hi], dim=1)
    low = [int(height * minmax[0]), int(width * minmax[0])]
    high = [int(height * minmax[1]), int(width * minmax[1])]
    if low[0] >= high[0] or low[1] >= high[1]:
        raise ValueError(f"cutmix_minmax={minmax} leaves no box size for a {height}x{width} image: "
                         f"int(side * min) must be < int(side * max) for both sides")
    cut_h = low[0] + sampling.randint(high[0] - low[0], m, generator)
    cut_w = low[1] + sampling.randint(high[1] - low[1], m, generator)
    y0 = sampling.randint(height - cut_h + 1, m, generator)
    x0 = sampling.randint(width - cut_w + 1, m, generator)
    return torch.stack([x0, y0, x0 + cut_w, y0 + cut_h], dim=1).to(device)


class Mixup(nn.Module):
    """timm's ``Mixup`` (same arguments and defaults), vectorised, for any batch size, with exact λ.

    ``generator`` seeds the draws (the global torch RNG when None). ``off_epoch`` is timm's ``--mixup-off-epoch``:
    :meth:`set_epoch` turns mixing off from that (0-based) epoch on; 0 never does. In eval mode, or with
    ``mixup_enabled = False``, images pass unchanged with smoothed one-hot targets.
    """

    modes: tuple[str, ...] = MODES

    def __init__(
        self,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: Sequence[float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        correct_lam: bool = True,
        label_smoothing: float = 0.1,
        num_classes: int = 1000,
        multi_label: bool = False,
        *,
        generator: torch.Generator | None = None,
        off_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.mixup_alpha = _number(mixup_alpha, "mixup_alpha", 0.0)
        self.cutmix_alpha = _number(cutmix_alpha, "cutmix_alpha", 0.0)
        self.cutmix_minmax = _minmax(cutmix_minmax)
        if self.cutmix_minmax is not None:
            self.cutmix_alpha = 1.0  # as in timm: minmax turns CutMix on (its λ is then unused)
        if self.mixup_alpha == 0.0 and self.cutmix_alpha == 0.0:
            raise ValueError("mixup_alpha > 0, cutmix_alpha > 0 or cutmix_minmax is needed: nothing would be mixed")
        self.mix_prob = _number(prob, "prob", 0.0, 1.0)
        self.switch_prob = _number(switch_prob, "switch_prob", 0.0, 1.0)
        if mode not in self.modes:
            raise ValueError(f"mode must be one of {', '.join(map(repr, self.modes))}; got {mode!r}")
        self.mode = mode
        if correct_lam is not True:
            raise ValueError("correct_lam must be True: targets always weigh labels by the exact pixel share after "
                             "clipping (the sampled λ mislabels clipped boxes)")
        self.correct_lam = True
        self.label_smoothing = _number(label_smoothing, "label_smoothing", 0.0, 1.0)
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.multi_label = bool(multi_label)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator
        if isinstance(off_epoch, bool) or not isinstance(off_epoch, int) or off_epoch < 0:
            raise ValueError(f"off_epoch must be an int >= 0 (0: never turn mixing off), got {off_epoch!r}")
        self.off_epoch = off_epoch
        self.mixup_enabled = True
        self._seeded_worker: int | None = None

    # -- the call ---------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``(mixed images, targets [N, num_classes] float32)``; ``x`` itself is not modified."""
        n = self._check_images(x)
        index = torch.arange(n - 1, -1, -1)
        if not (self.training and self.mixup_enabled):
            return x, self._targets(target, index, None)
        if self.mode == "batch":
            return self._mix_batch(x, target, index)
        h, w = x.shape[-2:]
        lam, use_cutmix, boxes = self._draw(n if self.mode == "elem" else n // 2, h, w)
        if self.mode != "elem":  # a pair (i, N-1-i) shares its parameters; the middle of an odd batch is unmixed
            lam, use_cutmix, boxes = (_mirror(t, n, identity) for t, identity in
                                      ((lam, 1.0), (use_cutmix, False), (boxes, 0)))
        return self._mix_per_sample(x, index, lam, use_cutmix, boxes), self._targets(target, index, lam)

    def _mix_batch(self, x: Tensor, target: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        lam, use_cutmix, boxes = self._draw(1, *x.shape[-2:])
        if float(lam) == 1.0:
            return x, self._targets(target, index, None)
        if bool(use_cutmix):
            return F.paste(x, boxes[0], index), self._targets(target, index, float(lam))
        return F.blend(x, float(lam), index), self._targets(target, index, float(lam))

    def _draw(self, m: int, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
        """Per item: the exact share kept ``lam`` [M] float64 (1 where unmixed), ``use_cutmix`` [M], boxes [M, 4]."""
        g = self.generator
        apply = sampling.uniform(m, g) < self.mix_prob
        both = self.mixup_alpha > 0 and self.cutmix_alpha > 0
        if both:
            use_cutmix = sampling.uniform(m, g) < self.switch_prob
        else:
            use_cutmix = torch.full_like(apply, self.cutmix_alpha > 0)
        lam_cut = sampling.beta(self.cutmix_alpha, m, g) if self.cutmix_alpha > 0 else None
        lam_mix = sampling.beta(self.mixup_alpha, m, g) if self.mixup_alpha > 0 else None
        if lam_cut is None or lam_mix is None:
            lam = lam_cut if lam_mix is None else lam_mix
        else:
            lam = torch.where(use_cutmix, lam_cut, lam_mix)
        lam = torch.where(apply, lam, torch.ones_like(lam))
        use_cutmix &= apply
        boxes = torch.zeros(m, 4, dtype=torch.long, device=lam.device)
        if self.cutmix_alpha > 0:
            boxes = sample_timm_boxes(lam, height, width, self.cutmix_minmax, g).masked_fill_(~use_cutmix[:, None], 0)
            lam = torch.where(use_cutmix, box_lambda(boxes, height, width), lam)
        return lam, use_cutmix, boxes

    def _mix_per_sample(self, x: Tensor, index: Tensor, lam: Tensor, use_cutmix: Tensor, boxes: Tensor) -> Tensor:
        """CutMix where ``use_cutmix`` (boxes are empty elsewhere), Mixup with weight ``lam`` elsewhere."""
        if self.mixup_alpha == 0:
            return F.paste(x, boxes, index)
        if self.cutmix_alpha == 0:
            return F.blend(x, lam, index)
        return _switch_mix(x, index, lam, use_cutmix, boxes)

    def _targets(self, target: Tensor, index: Tensor, lam: Tensor | float | None) -> Tensor:
        s = self.label_smoothing
        if self.multi_label:
            n = index.shape[0]
            if not isinstance(target, Tensor) or target.shape != (n, self.num_classes):
                shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
                raise ValueError(f"target must be dense multi-labels [{n}, {self.num_classes}] with multi_label=True, "
                                 f"got {shape}")
            y = target.double() * (1.0 - s) + 0.5 * s  # timm smooths each label towards 0.5
            if lam is None:
                return y.float()
            w = torch.as_tensor(lam, dtype=torch.float64).to(y.device).reshape(-1, 1)
            return (w * y + (1.0 - w) * y[index.to(y.device)]).float()
        if lam is None:
            return F.one_hot(target, self.num_classes, label_smoothing=s)
        return F.mix_targets(target, index, lam, num_classes=self.num_classes, label_smoothing=s)

    @staticmethod
    def _check_images(x: object) -> int:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor of images [N, C, H, W], got {type(x).__name__}")
        if x.ndim != 4 or x.shape[0] < 1:
            raise ValueError(f"x must be a non-empty batch of images [N, C, H, W], got shape {tuple(x.shape)}")
        return x.shape[0]

    # -- timm's training-loop switches, reproducibility ---------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """timm's ``--mixup-off-epoch``: mixing is on before ``off_epoch`` and off from it on (when it is > 0)."""
        self.mixup_enabled = not (self.off_epoch and epoch >= self.off_epoch)

    def reseed(self, seed: int) -> None:
        """Re-seed the generator (DataLoader workers do, so that they draw different boxes)."""
        if self.generator is not None:
            self.generator.manual_seed(seed)

    def _reseed_for_worker(self) -> None:
        info = get_worker_info()
        if info is not None and self._seeded_worker != info.id:
            self.reseed(info.seed % 2**63)
            self._seeded_worker = info.id

    def get_extra_state(self) -> dict[str, Any]:
        state = None if self.generator is None else self.generator.get_state()
        return {"generator": state, "mixup_enabled": self.mixup_enabled}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.mixup_enabled = bool(state["mixup_enabled"])
        if state.get("generator") is not None and self.generator is not None:
            self.generator.set_state(state["generator"])

    def extra_repr(self) -> str:
        return (f"mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
                f"cutmix_minmax={self.cutmix_minmax}, prob={self.mix_prob}, switch_prob={self.switch_prob}, "
                f"mode={self.mode!r}, label_smoothing={self.label_smoothing}, num_classes={self.num_classes}")


def _switch_mix(x: Tensor, index: Tensor, lam: Tensor, use_cutmix: Tensor, boxes: Tensor) -> Tensor:
    """CutMix samples and Mixup samples in one batch: a paste over the batch, then a blend of the Mixup rows only.

    The paste leaves the Mixup rows as they are (their boxes are empty); each Mixup row is then its own image and
    its partner's, both as they were, interpolated with ``lerp`` like :func:`cutmix.functional.blend` (uint8 and
    half precision in float32, uint8 rounded). Blending the whole batch and choosing between the two results per
    sample costs three times as much; the rows are found on the generator's device (a host sync only with a CUDA
    generator).
    """
    out = F.paste(x, boxes, index)
    rows = (~use_cutmix & (lam < 1)).nonzero()[:, 0].to(x.device)
    if rows.numel() == 0:
        return out
    k = rows.numel()
    weight = lam.to(x.device).index_select(0, rows).view(-1, 1, 1, 1)
    both = x.index_select(0, torch.cat([index.to(x.device).index_select(0, rows), rows]))  # partners, then images
    if x.dtype in (torch.float32, torch.float64):
        mixed = both[:k].lerp_(both[k:], weight.to(x.dtype))
    else:  # uint8 and half precision are mixed in float32 (one conversion of both halves), uint8 rounded
        both = both.float()
        mixed = both[:k].lerp_(both[k:], weight.float())
        if x.dtype == torch.uint8:
            mixed.round_()
        mixed = mixed.to(x.dtype)
    return out.index_copy_(0, rows, mixed)


def _mirror(per_pair: Tensor, n: int, identity: float | bool | int) -> Tensor:
    """Per-sample values of ``n`` samples from per-pair ones: pair ``i`` is samples ``i`` and ``n - 1 - i``."""
    middle = per_pair.new_full((n % 2, *per_pair.shape[1:]), identity)
    return torch.cat([per_pair, middle, per_pair.flip(0)])


class FastCollateMixup(Mixup):
    """timm's ``FastCollateMixup``: a DataLoader ``collate_fn`` that stacks uint8 images and mixes them.

    ``collate_fn(batch)`` with ``batch`` a list of ``(image, label)``: images are uint8 tensors [C, H, W] or NumPy
    uint8 arrays laid out as ``numpy_layout`` (``"HWC"``, as ``np.asarray(pil_image)`` gives, or ``"CHW"``, as
    timm's ``ToNumpy`` gives; 2-D arrays are one channel). Returns ``(uint8 images [N, C, H, W], targets)``. Mode
    ``"half"`` (timm's) mixes the first half of the batch with the reversed second half and returns only that half.
    """

    modes = (*MODES, "half")

    def __init__(self, *args: Any, numpy_layout: str = "HWC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if numpy_layout not in ("HWC", "CHW"):
            raise ValueError(f"numpy_layout must be 'HWC' or 'CHW', got {numpy_layout!r}")
        self.numpy_layout = numpy_layout

    def forward(self, batch: Sequence[tuple[Any, Any]], _: Any = None) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        self._reseed_for_worker()
        images, labels = stack_uint8(batch, self.numpy_layout)
        if self.mode != "half":
            return super().forward(images, labels)
        n, half = images.shape[0], images.shape[0] // 2
        index = torch.arange(n - 1, -1, -1)
        if not (self.training and self.mixup_enabled):
            return images[:half], self._targets(labels, index, None)[:half]
        lam, use_cutmix, boxes = self._draw(half, *images.shape[-2:])
        pad = n - half
        lam = torch.cat([lam, lam.new_ones(pad)])
        use_cutmix = torch.cat([use_cutmix, use_cutmix.new_zeros(pad)])
        boxes = torch.cat([boxes, boxes.new_zeros(pad, 4)])
        mixed = self._mix_per_sample(images, index, lam, use_cutmix, boxes)
        return mixed[:half], self._targets(labels, index, lam)[:half]


def stack_uint8(batch: Sequence[tuple[Any, Any]], numpy_layout: str = "HWC") -> tuple[Tensor, Tensor]:
    """``[(uint8 image, label), ...]`` -> ``(uint8 images [N, C, H, W], int64 labels [N])``."""
    if not isinstance(batch, Sequence) or not batch:
        raise ValueError(f"batch must be a non-empty list of (image, label) pairs, got {type(batch).__name__}")
    images = []
    for i, item in enumerate(batch):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"batch[{i}] must be an (image, label) pair, got {type(item).__name__}")
        img = item[0]
        if not isinstance(img, Tensor):
            img = torch.from_numpy(_as_chw(img, numpy_layout, i))
        if img.dtype != torch.uint8 or img.ndim != 3:
            raise TypeError(f"batch[{i}] image must be uint8 [C, H, W], got {img.dtype} {tuple(img.shape)}")
        if img.shape != (images[0].shape if images else img.shape):
            raise ValueError(f"batch[{i}] image has shape {tuple(img.shape)}, batch[0] has {tuple(images[0].shape)}")
        images.append(img)
    labels = torch.as_tensor([int(item[1]) for item in batch], dtype=torch.long)
    return torch.stack(images), labels


def _as_chw(array: Any, layout: str, i: int) -> Any:
    import numpy as np

    if not isinstance(array, np.ndarray):
        raise TypeError(f"batch[{i}] image must be a uint8 tensor or NumPy array, got {type(array).__name__}")
    if array.ndim == 2:
        array = array[None]
    elif layout == "HWC" and array.ndim == 3:
        array = array.transpose(2, 0, 1)
    return np.ascontiguousarray(array)


def mixup_from_flags(
    values: argparse.Namespace | Mapping[str, Any], num_classes: int, *, generator: torch.Generator | None = None,
) -> Mixup | None:
    """A :class:`Mixup` from parsed timm flag values, as timm's ``train.py`` builds it; None when none is active.

    ``values`` is a namespace or mapping keyed by the flags' ``dest`` (``mixup``, ``cutmix_minmax``, ...; keys that
    are not timm mixing flags are ignored, missing ones take timm's defaults). As in timm, nothing is mixed unless
    ``mixup > 0``, ``cutmix > 0`` or ``cutmix_minmax`` is set; ``--smoothing`` then belongs to the loss, which is
    the caller's.
    """
    raw = vars(values) if isinstance(values, argparse.Namespace) else values
    if not isinstance(raw, Mapping):
        raise TypeError(f"values must be an argparse.Namespace or a mapping, got {type(values).__name__}")
    v = {f.dest: raw.get(f.dest, f.default) for f in timm_flags()}
    for f in timm_flags():  # values that arrive as None (an unset CLI alias) mean timm's default
        if v[f.dest] is None:
            v[f.dest] = f.default
    if not (v["mixup"] > 0 or v["cutmix"] > 0 or v["cutmix_minmax"] is not None):
        return None
    return Mixup(mixup_alpha=v["mixup"], cutmix_alpha=v["cutmix"], cutmix_minmax=v["cutmix_minmax"],
                 prob=v["mixup_prob"], switch_prob=v["mixup_switch_prob"], mode=v["mixup_mode"],
                 label_smoothing=v["smoothing"], num_classes=num_classes, generator=generator,
                 off_epoch=v["mixup_off_epoch"])
