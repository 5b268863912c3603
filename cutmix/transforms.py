"""Batch transforms: thin samplers over :mod:`cutmix.functional` with torchvision v2's calling contract.

``mix(images, labels)`` or ``mix((images, labels))`` returns ``(images, targets)``: images keep their dtype and
memory format, targets are [N, num_classes] float32 rows that sum to 1. Labels may be class indices [N] or soft
labels [N, K] (e.g. from an earlier mix or label smoothing).

Randomness, drawn in this order from ``generator`` (or the global RNG): whether to mix (one draw per batch, or per
sample with ``per_sample=True``), the partner permutation, then the transform's own draws (lambda, box). In eval
mode (``.eval()``) a transform is the identity with one-hot targets, so that a model-side mix never leaks into
evaluation; it accepts a batch of 1 (an eval loader's last batch), which training refuses (no partner).

Validation: labels must be on the images' device. Value checks (class indices in range; soft labels finite,
non-negative, rows summing to 1 within 1e-3) run on CPU labels only: on an accelerator they would cost a host sync
per batch, so there an index out of range ends in a device-side assert and bad soft labels pass through.

``state_dict()`` carries the step counter and generator state, so a resumed run draws the same boxes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from cutmix import _ops, sampling
from cutmix._checks import (
    check_alpha,
    check_bool,
    check_choice,
    check_fill,
    check_fill_for,
    check_fraction,
    check_fused,
    check_generator,
    check_images,
    check_int,
    check_labels,
    check_num_classes,
    check_probability,
    check_sigma,
    check_target_dtype,
)
from cutmix.boxes import KINDS, PLACEMENTS, ROUNDINGS, box_lambda, place_boxes, sample_box, sample_boxes, sample_centres
from cutmix.functional import LABEL_MODES
from cutmix.schedule import Schedule, as_schedule


def unpack_batch(inputs: tuple[Any, ...]) -> tuple[Tensor, Tensor]:
    """Accept ``(images, labels)`` as two arguments or as one pair, like torchvision's v2 transforms."""
    if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)) and len(inputs[0]) == 2:
        inputs = tuple(inputs[0])
    if len(inputs) != 2:
        raise TypeError(
            f"expected mix(images, labels) or mix((images, labels)), got {len(inputs)} positional argument(s)"
        )
    return inputs[0], inputs[1]


def _is_dense(inputs: tuple[Any, ...]) -> bool:
    """Whether a call holds more than ``(images, labels)``: spatial targets, detection targets or tv_tensors."""
    if len(inputs) == 2 and type(inputs[0]) is Tensor and type(inputs[1]) is Tensor and inputs[1].ndim <= 2:
        return False  # the classification call, decided without a lookup
    from cutmix.tv import is_structured

    items = inputs[0] if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)) else inputs
    if len(items) > 2 or is_structured(inputs):
        return True
    images, extra = (items[0], items[1]) if len(items) == 2 else (None, None)
    spatial = isinstance(images, Tensor) and images.ndim == 4 and isinstance(extra, Tensor) and extra.ndim >= 3
    return ((spatial and extra.shape[-2:] == images.shape[-2:])  # a mask; other shapes are bad labels
            or (isinstance(extra, (list, tuple)) and bool(extra) and all(isinstance(t, dict) for t in extra)))


class _Replayable(nn.Module):
    """A step counter and an optional generator that travel in ``state_dict()``, so a resumed run draws the same."""

    step: int
    generator: torch.Generator | None

    def reseed(self, seed: int) -> None:
        """Re-seed this transform's generator (DataLoader workers call this so that they draw different boxes)."""
        if self.generator is not None:
            self.generator.manual_seed(seed)

    def get_extra_state(self) -> dict[str, Any]:
        return {"step": self.step, "generator": None if self.generator is None else self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        if state.get("generator") is not None and self.generator is not None:
            self.generator.set_state(state["generator"])


class BatchMix(_Replayable):
    """Shared machinery: argument checks, probability (float or schedule), pairing, RNG state, eval identity.

    Subclasses implement :meth:`mix_with`, given the partner permutation and, with ``per_sample=True``, which samples
    were selected for mixing.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        prob: float | Schedule = 1.0,
        per_sample: bool = False,
        label_smoothing: float = 0.0,
        generator: torch.Generator | None = None,
        inplace: bool = False,
        target_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes)
        self.prob = as_schedule(prob)
        self.per_sample = check_bool(per_sample, "per_sample")
        self.label_smoothing = check_fraction(label_smoothing, "label_smoothing")
        self.generator = check_generator(generator)
        self.inplace = check_bool(inplace, "inplace")
        self.target_dtype = check_target_dtype(target_dtype)
        self.step = 0

    # -- the contract -----------------------------------------------------------------------------------------
    def forward(self, *inputs: Any) -> Any:
        if _is_dense(inputs):  # masks, detection targets or tv_tensors: one geometry for all (cutmix.dense)
            from cutmix.dense import DenseMix

            return DenseMix(self)(*inputs)
        images, labels = unpack_batch(inputs)
        check_images(images, min_batch=2 if self.training else 1)  # eval is the identity, even for one image
        labels, k = check_labels(labels, images.shape[0], self.num_classes, device=images.device)
        self.check_call(images)
        drawn = self.draw(images.shape[0]) if self.training else None
        if drawn is None:
            return images, self.identity_targets(labels, k)
        return self.mix_with(images, labels, k, *drawn)

    def check_call(self, images: Tensor) -> None:
        """Checks of the call that depend on the transform's settings (none by default)."""

    def draw(self, n: int) -> tuple[Tensor, Tensor | None] | None:
        """Advance one step; draw whether to mix and the partners: ``(index, selected)``, or None for no mixing.

        ``selected`` [N] (bool, on the generator's device) marks the samples to mix with ``per_sample=True``; it is
        None in per-batch mode, where the whole batch is mixed.
        """
        p = check_probability(self.prob(self.step), "prob (schedule value)")
        self.step += 1
        selected = sampling.bernoulli(p, n if self.per_sample else 1, self.generator)
        if not self.per_sample and not bool(selected):
            return None
        return sampling.permutation(n, self.generator), selected if self.per_sample else None

    def mix_with(
        self, images: Tensor, labels: Tensor, num_classes: int, index: Tensor, selected: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Mix with given partners (drawing the transform's own randomness); returns ``(images, targets)``."""
        raise NotImplementedError

    def identity_targets(self, labels: Tensor, num_classes: int) -> Tensor:
        return _ops.one_hot(labels, num_classes, self.label_smoothing, self.target_dtype)

    def mixed_targets(self, labels: Tensor, num_classes: int, index: Tensor, lam: Tensor, label: str) -> Tensor:
        return _ops.mix_targets(labels, index, lam, num_classes, label, self.label_smoothing, self.target_dtype)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, prob={self.prob}, per_sample={self.per_sample}"


class CutMix(BatchMix):
    """CutMix (Yun et al., 2019): paste a box of a partner image; targets weighted by the exact pixel shares.

    ``box``: ``"uniform"`` (the paper), ``"gaussian"`` (centre-Gaussian ablation, ``sigma`` as a fraction of the
    side) or ``"fixed"`` (every box ``size`` times the side; 0.5 gives 16x16 on 32x32). ``placement``: ``"clip"``
    (the paper) or ``"inside"``; ``rounding``: ``"exact"`` (box sides rounded to the nearest pixel) or ``"reference"``
    (the released code's truncation, odd sides one pixel short); see :mod:`cutmix.boxes`. ``label``: ``"area"``
    (the paper), ``"onehot"`` or ``"complete"``; see :mod:`cutmix.functional`. ``prob`` may be a float or a schedule
    (``cutmix.schedule.Linear(0, 1, total_steps)`` is the paper's Scheduled CutMix). ``fused=True`` (with
    ``per_sample=True``, not in place) pastes in one pass over memory (a C kernel on a CPU, ``torch.compile`` on a
    GPU), bit-identical to the default eager op; see :func:`cutmix.functional.paste` for its build cost and fallback.
    On a CPU generator it also does the box arithmetic of the draws in C, and for class-index labels on a CPU into
    float32 or float64 targets the target mixing (the same draws and values, a fraction of the fixed cost).
    """

    def __init__(
        self,
        num_classes: int | None = None,
        alpha: float = 1.0,
        prob: float | Schedule = 1.0,
        per_sample: bool = False,
        box: str = "uniform",
        label: str = "area",
        *,
        placement: str = "clip",
        sigma: float = 0.25,
        size: float = 0.5,
        rounding: str = "exact",
        label_smoothing: float = 0.0,
        generator: torch.Generator | None = None,
        inplace: bool = False,
        target_dtype: torch.dtype = torch.float32,
        fused: bool = False,
    ) -> None:
        super().__init__(num_classes, prob=prob, per_sample=per_sample, label_smoothing=label_smoothing,
                         generator=generator, inplace=inplace, target_dtype=target_dtype)
        self.fused = check_fused(fused, inplace=self.inplace, per_sample=self.per_sample)
        self.rounding = check_choice(rounding, "rounding", ROUNDINGS)
        self.alpha = check_alpha(alpha)
        self.box = check_choice(box, "box", KINDS)
        self.label = check_choice(label, "label", LABEL_MODES)
        self.placement = check_choice(placement, "placement", PLACEMENTS)
        self.sigma = check_sigma(sigma)
        self.size = check_fraction(size, "size")

    def _box_kwargs(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "kind": self.box, "placement": self.placement, "sigma": self.sigma,
                "size": self.size, "rounding": self.rounding, "generator": self.generator}

    def sample(self, n: int, h: int, w: int, selected: Tensor | None) -> tuple[Tensor | tuple[int, ...], Tensor]:
        """This transform's own draws for a batch: ``(boxes, lam)``, one box (a tuple) or [N, 4], lam [N] float64.

        :mod:`cutmix.dense` calls it to move masks and detection boxes with the same geometry.
        """
        if selected is None:
            boxes: Tensor | tuple[int, int, int, int] = sample_box(h, w, **self._box_kwargs())
            x0, y0, x1, y1 = boxes
            return boxes, torch.full((n,), 1.0 - (x1 - x0) * (y1 - y0) / (h * w), dtype=torch.float64)
        if self.fused and selected.device.type == "cpu":  # the same draws and values, the arithmetic in C
            from cutmix import _native

            drawn = _native.sample(n, h, w, selected, **self._box_kwargs())
            if drawn is not None:
                return drawn
        boxes = sample_boxes(n, h, w, **self._box_kwargs()).masked_fill_(~selected[:, None], 0)  # unselected: empty
        return boxes, box_lambda(boxes, h, w)

    def mixed_targets(self, labels: Tensor, num_classes: int, index: Tensor, lam: Tensor, label: str) -> Tensor:
        """The base class's targets; with ``fused=True`` and CPU class indices, from one C call (the same bits)."""
        if (self.fused and labels.device.type == "cpu" and labels.ndim == 1
                and self.target_dtype in (torch.float32, torch.float64)):  # the same values, in one C call
            from cutmix import _native

            targets = _native.mix_targets(labels, index, _ops.label_weights(lam, label), num_classes,
                                          self.target_dtype)
            if targets is not None:
                return _ops.smooth(targets, self.label_smoothing)
        return super().mixed_targets(labels, num_classes, index, lam, label)

    def mix_with(self, images, labels, num_classes, index, selected):
        n, _, h, w = images.shape
        boxes, lam = self.sample(n, h, w, selected)
        targets = self.mixed_targets(labels, num_classes, index, lam, self.label)
        index = index.to(images.device, non_blocking=True)
        return _ops.paste(images, boxes, index, inplace=self.inplace, fused=self.fused), targets

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, alpha={self.alpha}, box={self.box!r}, label={self.label!r}, "
                f"placement={self.placement!r}" + (f", rounding={self.rounding!r}" if self.rounding != "exact" else "")
                + (", fused=True" if self.fused else ""))


class MixUp(BatchMix):
    """Mixup (Zhang et al., 2018): ``lam * x + (1 - lam) * x[perm]`` with lam ~ Beta(alpha, alpha).

    uint8 images are blended in float32 and rounded back to uint8.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        alpha: float = 1.0,
        prob: float | Schedule = 1.0,
        per_sample: bool = False,
        label: str = "area",
        *,
        label_smoothing: float = 0.0,
        generator: torch.Generator | None = None,
        inplace: bool = False,
        target_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(num_classes, prob=prob, per_sample=per_sample, label_smoothing=label_smoothing,
                         generator=generator, inplace=inplace, target_dtype=target_dtype)
        self.alpha = check_alpha(alpha)
        self.label = check_choice(label, "label", LABEL_MODES)

    def sample(self, n: int, selected: Tensor | None) -> Tensor:
        """This transform's own draw: lam [1] (per batch) or [N] float64 (per sample; 1 where not selected)."""
        lam = sampling.beta(self.alpha, 1 if selected is None else n, self.generator)
        if selected is not None:
            lam.masked_fill_(~selected, 1.0)  # unselected samples keep their own image and label
        return lam

    def mix_with(self, images, labels, num_classes, index, selected):
        n = images.shape[0]
        lam = self.sample(n, selected)
        targets = self.mixed_targets(labels, num_classes, index, lam.expand(n), self.label)
        weight = float(lam) if selected is None else lam
        return _ops.blend(images, weight, index.to(images.device, non_blocking=True), inplace=self.inplace), targets

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, label={self.label!r}"


class Cutout(BatchMix):
    """Cutout (DeVries & Taylor, 2017): fill a ``size`` x ``size`` pixel square at a uniform centre, clipped.

    Per sample by default, like the original. Targets are the (smoothed) one-hot labels; the permutation is drawn
    anyway so that the random stream has the same shape as CutMix's.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        size: int = 16,
        prob: float | Schedule = 1.0,
        per_sample: bool = True,
        *,
        value: float = 0.0,
        placement: str = "clip",
        label_smoothing: float = 0.0,
        generator: torch.Generator | None = None,
        inplace: bool = False,
        target_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(num_classes, prob=prob, per_sample=per_sample, label_smoothing=label_smoothing,
                         generator=generator, inplace=inplace, target_dtype=target_dtype)
        self.size = check_int(size, "size", low=1)
        self.value = float(check_fill(value))
        self.placement = check_choice(placement, "placement", PLACEMENTS)

    def check_call(self, images: Tensor) -> None:
        check_fill_for(self.value, images.dtype)

    def sample(self, n: int, h: int, w: int, selected: Tensor | None) -> Tensor:
        """This transform's own draw: the erased boxes, [4] for the batch or [N, 4] (empty where not selected)."""
        m = 1 if selected is None else n
        centres = sample_centres(m, h, w, generator=self.generator)
        sides = torch.tensor([min(self.size, w), min(self.size, h)], device=centres.device).expand(m, 2)
        boxes = place_boxes(centres, sides, h, w, self.placement)
        return boxes[0] if selected is None else boxes.masked_fill_(~selected[:, None], 0)

    def mix_with(self, images, labels, num_classes, index, selected):
        n, _, h, w = images.shape
        boxes = self.sample(n, h, w, selected)
        targets = self.identity_targets(labels, num_classes)
        return _ops.erase(images, boxes, self.value, inplace=self.inplace), targets

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, size={self.size}, value={self.value}"


class RandomChoice(_Replayable):
    """Apply one of ``transforms`` per batch, chosen with probabilities ``p`` (uniform by default).

    Modern recipes switch between CutMix and Mixup this way (e.g. ``p=[0.5, 0.5]``). The chosen transform sees
    this module's step count, so schedules advance with every batch whichever transform runs.
    """

    def __init__(
        self,
        transforms: Sequence[BatchMix],
        p: Sequence[float] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if isinstance(transforms, str) or not isinstance(transforms, (Sequence, nn.ModuleList)):
            raise TypeError(f"transforms must be a list of mixing transforms, got {type(transforms).__name__} "
                            "(wrap a single transform in a list)")
        if not transforms:
            raise ValueError("transforms must be a non-empty sequence of mixing transforms")
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}] must be callable, got {type(t).__name__}")
        if p is None:
            p = [1.0 / len(transforms)] * len(transforms)
        if len(p) != len(transforms):
            raise ValueError(f"p must have one probability per transform ({len(transforms)}), got {len(p)}")
        for i, pi in enumerate(p):
            check_probability(pi, f"p[{i}]")
        total = float(sum(p))
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"p must sum to 1, got {total}")
        self.transforms = nn.ModuleList(transforms)
        self.cumulative = torch.tensor(p, dtype=torch.float64).cumsum(0).tolist()
        self.generator = check_generator(generator)
        self.step = 0

    def forward(self, *inputs: Any) -> Any:
        dense = _is_dense(inputs)  # masks, boxes or tv_tensors go to the chosen transform as they are
        if not dense:
            inputs = unpack_batch(inputs)
        u = float(sampling.uniform(1, self.generator))
        choice = min(sum(u >= c for c in self.cumulative), len(self.transforms) - 1)
        transform = self.transforms[choice]
        transform.step = self.step
        if self.training:
            self.step += 1
        return transform(*inputs)

    def reseed(self, seed: int) -> None:
        super().reseed(seed)
        for i, t in enumerate(self.transforms):
            if hasattr(t, "reseed"):
                t.reseed(seed + i + 1)


class MixCollate:
    """A DataLoader ``collate_fn`` that mixes each collated batch inside the worker (uint8 stays uint8).

    ``DataLoader(ds, batch_size=128, collate_fn=MixCollate(CutMix(10)), num_workers=4)``. Each worker re-seeds
    an explicit generator from its worker seed (which the DataLoader derives from its own generator), so that
    workers draw different boxes and a seeded loader stays reproducible. Schedules count batches per worker here;
    mix in the main process when a schedule must follow global steps.
    """

    def __init__(self, mix: Callable[..., tuple[Tensor, Tensor]], collate_fn: Callable[[list], Any] | None = None):
        if collate_fn is None:
            from torch.utils.data import default_collate

            collate_fn = default_collate
        if not callable(mix):
            raise TypeError(f"mix must be callable (a batch transform such as CutMix), got {type(mix).__name__}")
        if not callable(collate_fn):
            raise TypeError(f"collate_fn must be callable or None, got {type(collate_fn).__name__}")
        self.mix = mix
        self.collate_fn = collate_fn
        self._seeded_worker: int | None = None

    def __call__(self, batch: list) -> tuple[Tensor, Tensor]:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._seeded_worker != info.id and hasattr(self.mix, "reseed"):
            self.mix.reseed(info.seed % 2**63)
            self._seeded_worker = info.id
        collated = self.collate_fn(batch)
        if _is_dense((collated,)):  # dicts, masks, tv_tensors: the structure goes to the transform as it is
            return self.mix(collated)
        return self.mix(*unpack_batch((collated,)))
