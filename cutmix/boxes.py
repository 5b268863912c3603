"""Box samplers for CutMix and Cutout, and the exact area -> lambda rule.

A box is four integers ``(x0, y0, x1, y1)``, half-open: it covers columns ``x0 <= x < x1`` and rows
``y0 <= y < y1``. Boxes come as int64 tensors of shape [N, 4] (one per sample) or [4] (one for the whole batch).

The paper's sampler (Yun et al. 2019, Eq. 2 and Algorithm A1): lambda ~ Beta(alpha, alpha), box side
``side * sqrt(1 - lambda)`` in each dimension (rounded to whole pixels), centre uniform over the pixels, box
clipped at the border. Clipping shrinks the box, so the label weight must be recomputed from what was pasted:
``lambda = 1 - (clipped area) / (H * W)``; :func:`box_lambda` does that exactly.

Placement (an explicit choice, since libraries differ and the difference is large):

* ``"clip"`` (the paper): centre uniform, box clipped. At 32x32 with alpha=1 the mean pasted area is 0.3210 of the
  image (exactly 0.32104, see ``tests/test_boxes.py``), not 0.5, because boxes near the border lose their outer part.
* ``"inside"``: the whole box is kept inside the image (its corner is uniform over the valid positions), so the
  pasted area is the sampled one and its mean is 0.5002 at 32x32 (0.5 up to rounding).

Centre distributions (``kind``):

* ``"uniform"``: the paper's.
* ``"gaussian"``: the ablation's "center Gaussian CutMix". The paper gives no spread; we use a normal around the
  image centre with standard deviation ``sigma * side`` per axis (``sigma=0.25`` by default, so about 95% of
  centres fall in the middle of the image, ±2 sigma covering its full extent), rounded and clamped to the image.
* ``"fixed"``: the ablation's "fixed-size CutMix": every box has side ``size * side`` (``size=0.5`` gives the
  paper's 16x16 on 32x32, lambda = 0.75 before clipping) and a uniform centre.

Pitfalls of the reference code that this module avoids: W and H were swapped (harmless only for square images),
``int(W * sqrt(1 - lam)) // 2`` on both sides made every odd-sized box one pixel narrower than sampled, and
``np.int`` no longer exists in NumPy. ``rounding="reference"`` reproduces its pixel arithmetic (not the swap).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from cutmix import sampling
from cutmix._checks import check_alpha, check_choice, check_fraction, check_generator, check_int, check_sigma
from cutmix._choices import BOX_KINDS as KINDS
from cutmix._choices import PLACEMENTS, ROUNDINGS


def _check_size(height: object, width: object) -> None:
    check_int(height, "height")
    check_int(width, "width")


def _check_box_tensor(boxes: object, name: str = "boxes") -> None:
    """Integer boxes [..., 4] (the shape and type only: what :func:`box_area` needs)."""
    if not isinstance(boxes, Tensor):
        raise TypeError(f"{name} must be an integer tensor [..., 4] (x0, y0, x1, y1), got {type(boxes).__name__}")
    if boxes.is_floating_point() or boxes.is_complex() or boxes.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer pixel coordinates (x0, y0, x1, y1), got {boxes.dtype}")
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4] (x0, y0, x1, y1), got {tuple(boxes.shape)}")


@functools.lru_cache(maxsize=64)
def _size(width: int, height: int, device: torch.device, dtype: torch.dtype = torch.float64) -> Tensor:
    """``[width, height]`` as a tensor, made once per size: building it costs as much as an op (~5 µs on a CPU),
    and a per-sample draw used three. Shared, so never written to: every use here reads it into a new tensor."""
    return torch.tensor([width, height], dtype=dtype, device=device)


def box_sides(lam: Tensor, height: int, width: int, rounding: str = "exact") -> Tensor:
    """Box sides [N, 2] as ``(w, h)`` int64 for sampled ``lam``: ``round(side * sqrt(1 - lam))`` per dimension.

    ``rounding="reference"``: the released code's ``2 * (int(side * sqrt(1 - lam)) // 2)`` (see :func:`sample_boxes`).
    """
    _check_size(height, width)
    check_choice(rounding, "rounding", ROUNDINGS)
    if not isinstance(lam, Tensor) or not lam.is_floating_point():
        raise TypeError(f"lam must be a floating tensor [N], got {getattr(lam, 'dtype', type(lam).__name__)}")
    if lam.device.type == "cpu" and lam.numel():
        lo, hi = torch.aminmax(lam)
        if not (lo >= 0 and hi <= 1):  # also catches NaN
            raise ValueError(f"lam must lie in [0, 1], got values in [{float(lo)}, {float(hi)}]")
    return _sides(lam, height, width, rounding)


def _sides(lam: Tensor, height: int, width: int, rounding: str = "exact") -> Tensor:
    """:func:`box_sides` without the checks, for lambdas drawn here."""
    ratio = (1.0 - lam.double()).clamp_(0.0, 1.0).sqrt_()
    sides = ratio[:, None] * _size(width, height, lam.device)
    if rounding == "reference":
        return sides.long().div_(2, rounding_mode="floor").mul_(2)
    return sides.round_().long()


def _side(length: float, rounding: str) -> int:
    """One box side in pixels from its real length, as :func:`box_sides` rounds it (for :func:`sample_box`)."""
    return 2 * (int(length) // 2) if rounding == "reference" else round(length)


def sample_centres(
    n: int,
    height: int,
    width: int,
    kind: str = "uniform",
    sigma: float = 0.25,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Box centres [N, 2] as pixel indices ``(cx, cy)``: uniform over the pixels, or Gaussian around the middle."""
    check_int(n, "n", low=0)
    _check_size(height, width)
    check_choice(kind, "kind", ("uniform", "gaussian"))
    check_sigma(sigma)
    check_generator(generator)
    return _centres(_position_draws(n, kind, generator), height, width, kind, sigma)


def _position_draws(n: int, kind: str, generator: torch.Generator | None) -> Tensor:
    """[n, 2] float64 on the generator's device: normals for a Gaussian centre, else uniforms (centre or corner)."""
    device = generator.device if generator is not None else torch.device("cpu")
    draw = torch.randn if kind == "gaussian" else torch.rand
    return draw(n, 2, generator=generator, device=device, dtype=torch.float64)


def _centres(u: Tensor, height: int, width: int, kind: str, sigma: float) -> Tensor:
    """:func:`sample_centres` from its draws [N, 2]: uniforms, or normals for ``"gaussian"``."""
    size = _size(width, height, u.device)
    if kind == "gaussian":
        return ((size - 1) / 2 + sigma * size * u).round_().clamp_(torch.zeros_like(size), size - 1).long()
    return (u * size).long()  # u < 1, so the floor is a valid index


def place_boxes(centres: Tensor, sides: Tensor, height: int, width: int, placement: str = "clip") -> Tensor:
    """Boxes [N, 4] with the given sides [N, 2] ``(w, h)`` around the given centres [N, 2] ``(cx, cy)``.

    ``"clip"`` cuts what falls outside the image; ``"inside"`` shifts the box until it fits. The pixel ``c`` is the
    middle of an odd side; an even side ``s`` spans ``c - s//2 .. c + s//2 - 1``.
    """
    _check_size(height, width)
    check_choice(placement, "placement", PLACEMENTS)
    for name, t in (("centres", centres), ("sides", sides)):
        if not isinstance(t, Tensor) or t.ndim != 2 or t.shape[1] != 2:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a tensor of shape [N, 2], got {shape}")
    size = _size(width, height, centres.device, torch.int64)
    lo = centres - sides // 2
    if placement == "inside":
        lo = torch.minimum(lo.clamp_min(0), size - sides)
    hi = torch.minimum(lo + sides, size)
    return torch.cat([lo.clamp_min(0), hi], dim=1)


def sample_boxes(
    n: int,
    height: int,
    width: int,
    *,
    alpha: float = 1.0,
    kind: str = "uniform",
    placement: str = "clip",
    sigma: float = 0.25,
    size: float = 0.5,
    rounding: str = "exact",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample ``n`` CutMix boxes for an ``height`` x ``width`` image; returns int64 [n, 4] ``(x0, y0, x1, y1)``.

    ``alpha`` is the Beta concentration (unused by ``kind="fixed"``, whose sides are ``size`` times the image's).
    Draw order (part of the reproducibility contract): lambda, then centres (or corners for ``"inside"``).

    ``rounding`` sets the pixel arithmetic of a side ``side * sqrt(1 - lambda)``; the draws are the same in both:

    * ``"exact"`` (default): rounded to the nearest pixel and pasted at that size (odd sides included); mean kept
      share E[lambda] = 0.6790 at 32x32, alpha=1, clipped.
    * ``"reference"``: the released code's, for exact reproduction: truncated (``int``), then the box spans
      ``centre - cut//2 .. centre + cut//2``, so an odd side loses a pixel; E[lambda] = 0.7007 at 32x32.

    (timm's current sampler lands between the two, E[lambda] about 0.684 at 32x32.)
    """
    check_int(n, "n", low=0)
    _check_sampler(height, width, alpha, kind, placement, sigma, size, rounding, generator)
    lam, u = box_draws(n, kind, alpha, generator)
    return boxes_from_draws(lam, u, height, width, kind=kind, placement=placement, sigma=sigma, size=size,
                            rounding=rounding)


def _check_sampler(height: int, width: int, alpha: float, kind: str, placement: str, sigma: float, size: float,
                   rounding: str, generator: torch.Generator | None) -> None:
    """The arguments :func:`sample_boxes` and :func:`sample_box` share, checked before any draw (a bad one
    consumes no random numbers); ``alpha``, ``size`` and ``sigma`` only where the kind uses them."""
    _check_size(height, width)
    check_generator(generator)
    check_choice(kind, "box", KINDS)
    check_choice(placement, "placement", PLACEMENTS)
    check_choice(rounding, "rounding", ROUNDINGS)
    if kind == "fixed":
        check_fraction(size, "size")
    else:
        check_alpha(alpha)
    if kind == "gaussian":
        check_sigma(sigma)


def box_draws(n: int, kind: str, alpha: float, generator: torch.Generator | None) -> tuple[Tensor | None, Tensor]:
    """The random numbers of :func:`sample_boxes` (checked arguments), in the contract's order: lambda [n] float64
    (None for ``"fixed"``), then [n, 2] float64: uniforms for a centre or corner, normals for a Gaussian centre.

    Split from the arithmetic (:func:`boxes_from_draws`) so that the C kernel of ``fused=True`` can do the
    arithmetic on the same draws (``cutmix._native.sample``).
    """
    lam = None if kind == "fixed" else sampling.beta(alpha, n, generator)
    return lam, _position_draws(n, kind, generator)


def fixed_sides(width: int, height: int, size: float, rounding: str) -> tuple[int, int]:
    """The ``(w, h)`` of every ``"fixed"`` box: ``size`` times the image's sides, rounded as ``rounding`` says."""
    return _side(size * width, rounding), _side(size * height, rounding)


def boxes_from_draws(lam: Tensor | None, u: Tensor, height: int, width: int, *, kind: str, placement: str,
                     sigma: float, size: float, rounding: str) -> Tensor:
    """:func:`sample_boxes` from its draws (:func:`box_draws`), in torch ops on their device."""
    if lam is None:
        sides = torch.tensor(fixed_sides(width, height, size, rounding), device=u.device).expand(u.shape[0], 2)
    else:
        sides = _sides(lam, height, width, rounding)
    if placement == "inside" and kind != "gaussian":
        # Uniform over the valid corners: every position of the box inside the image is equally likely.
        lo = (u * (_size(width, height, u.device, torch.int64) - sides + 1)).long()
        return torch.cat([lo, lo + sides], dim=1)
    return place_boxes(_centres(u, height, width, kind, sigma), sides, height, width, placement)


def sample_box(
    height: int,
    width: int,
    *,
    alpha: float = 1.0,
    kind: str = "uniform",
    placement: str = "clip",
    sigma: float = 0.25,
    size: float = 0.5,
    rounding: str = "exact",
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """One box ``(x0, y0, x1, y1)`` for a whole batch: exactly ``sample_boxes(1, ...)[0]``, as Python ints.

    The same draws and the same float64 arithmetic as :func:`sample_boxes`, done on Python floats: per-batch mixing
    then costs a few microseconds of sampling instead of a dozen tensor ops.
    """
    _check_sampler(height, width, alpha, kind, placement, sigma, size, rounding, generator)
    device = generator.device if generator is not None else torch.device("cpu")
    if kind == "fixed":
        w, h = fixed_sides(width, height, size, rounding)
    else:
        ratio = math.sqrt(min(max(1.0 - float(sampling.beta(alpha, 1, generator)), 0.0), 1.0))
        w, h = _side(ratio * width, rounding), _side(ratio * height, rounding)
    if kind == "gaussian":
        zx, zy = torch.randn(2, generator=generator, device=device, dtype=torch.float64).tolist()
        cx = min(max(round((width - 1) / 2 + sigma * width * zx), 0), width - 1)
        cy = min(max(round((height - 1) / 2 + sigma * height * zy), 0), height - 1)
    else:
        ux, uy = torch.rand(2, generator=generator, device=device, dtype=torch.float64).tolist()
        if placement == "inside":
            x0, y0 = int(ux * (width - w + 1)), int(uy * (height - h + 1))
            return x0, y0, x0 + w, y0 + h
        cx, cy = int(ux * width), int(uy * height)
    x0, y0 = cx - w // 2, cy - h // 2
    if placement == "inside":
        x0, y0 = min(max(x0, 0), width - w), min(max(y0, 0), height - h)
    return max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)


def box_area(boxes: Tensor) -> Tensor:
    """Pixel count of each box (int64), zero for empty boxes."""
    _check_box_tensor(boxes)
    return (boxes[..., 2:] - boxes[..., :2]).clamp_min(0).prod(-1)


def box_lambda(boxes: Tensor, height: int, width: int) -> Tensor:
    """The exact share of the image that is *not* covered by each box: ``1 - area / (H * W)`` in float64.

    This is the CutMix label weight of the image that receives the paste.
    """
    _check_size(height, width)
    _check_box_tensor(boxes)
    return 1.0 - box_area(boxes).double() / float(height * width)


def check_boxes(boxes: object, batch: int, height: int, width: int, name: str = "boxes") -> Tensor:
    """Boxes [4] or [batch, 4], integer, inside the image, with x0 <= x1 and y0 <= y1."""
    if not isinstance(boxes, Tensor):
        raise TypeError(f"{name} must be an integer tensor of shape [4] or [N, 4], got {type(boxes).__name__}")
    if boxes.is_floating_point() or boxes.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer pixel coordinates (x0, y0, x1, y1), got {boxes.dtype}")
    if boxes.shape not in ((4,), (batch, 4)):
        raise ValueError(f"{name} must have shape [4] or [{batch}, 4] (x0, y0, x1, y1), got {tuple(boxes.shape)}")
    if boxes.device.type == "cpu" and boxes.numel():
        x0, y0, x1, y1 = boxes.reshape(-1, 4).long().unbind(-1)
        if bool((x0 < 0).any() | (y0 < 0).any() | (x1 > width).any() | (y1 > height).any()):
            raise ValueError(f"{name} must lie inside the {height}x{width} image (0 <= x <= W, 0 <= y <= H)")
        if bool((x1 < x0).any() | (y1 < y0).any()):
            raise ValueError(f"{name} must satisfy x0 <= x1 and y0 <= y1")
    return boxes.long()
