"""Box samplers for CutMix and Cutout, and the exact area -> lambda rule.

A box is four integers ``(x0, y0, x1, y1)``, half-open: it covers columns ``x0 <= x < x1`` and rows
``y0 <= y < y1``. Boxes come as int64 tensors of shape [N, 4] (one per sample) or [4] (one for the whole batch).

The paper's sampler (Yun et al. 2019, Eq. 2 and Algorithm A1): lambda ~ Beta(alpha, alpha), box side
``side * sqrt(1 - lambda)`` in each dimension (rounded to whole pixels), centre uniform over the pixels, box
clipped at the border. Clipping shrinks the box, so the label weight must be recomputed from what was pasted:
``lambda = 1 - (clipped area) / (H * W)``; :func:`box_lambda` does that exactly.

Placement (an explicit choice, since libraries differ and the difference is large):

* ``"clip"`` (the paper): centre uniform, box clipped. At 32x32 with alpha=1 the mean pasted area is only about
  0.30 of the image, not 0.5, because boxes near the border lose their outer part.
* ``"inside"``: the whole box is kept inside the image (its corner is uniform over the valid positions), so the
  pasted area is the sampled one and its mean is about 0.5.

Centre distributions (``kind``):

* ``"uniform"``: the paper's.
* ``"gaussian"``: the ablation's "center Gaussian CutMix". The paper gives no spread; we use a normal around the
  image centre with standard deviation ``sigma * side`` per axis (``sigma=0.25`` by default, so about 95% of
  centres fall in the middle of the image, ±2 sigma covering its full extent), rounded and clamped to the image.
* ``"fixed"``: the ablation's "fixed-size CutMix": every box has side ``size * side`` (``size=0.5`` gives the
  paper's 16x16 on 32x32, lambda = 0.75 before clipping) and a uniform centre.

Pitfalls of the reference code that this module avoids: W and H were swapped (harmless only for square images),
``int(W * sqrt(1 - lam)) // 2`` on both sides made every odd-sized box one pixel narrower than sampled, and
``np.int`` no longer exists in NumPy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cutmix import sampling
from cutmix._checks import check_alpha, check_choice, check_fraction

KINDS = ("uniform", "gaussian", "fixed")
PLACEMENTS = ("clip", "inside")


def box_sides(lam: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Box height and width (int64) for sampled ``lam``: ``round(side * sqrt(1 - lam))`` per dimension."""
    ratio = (1.0 - lam.double()).clamp(0.0, 1.0).sqrt()
    return (ratio * height).round().long(), (ratio * width).round().long()


def sample_centres(
    n: int,
    height: int,
    width: int,
    kind: str = "uniform",
    sigma: float = 0.25,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Box centres ``(cy, cx)`` as pixel indices in [0, H) x [0, W): uniform, or Gaussian around the middle."""
    if kind == "gaussian":
        device = generator.device if generator is not None else torch.device("cpu")
        z = torch.randn(2, n, generator=generator, device=device, dtype=torch.float64)
        cy = ((height - 1) / 2 + sigma * height * z[0]).round().clamp(0, height - 1).long()
        cx = ((width - 1) / 2 + sigma * width * z[1]).round().clamp(0, width - 1).long()
        return cy, cx
    return sampling.randint(height, n, generator), sampling.randint(width, n, generator)


def place_boxes(
    cy: Tensor, cx: Tensor, box_h: Tensor, box_w: Tensor, height: int, width: int, placement: str = "clip"
) -> Tensor:
    """Boxes [N, 4] of the given sides around the given centres.

    ``"clip"`` cuts what falls outside the image; ``"inside"`` shifts the box until it fits. The pixel ``c`` is the
    middle of an odd side; for an even side ``s`` the box spans ``c - s//2 .. c + s//2 - 1``.
    """
    y0, x0 = cy - box_h // 2, cx - box_w // 2
    if placement == "inside":
        y0 = torch.minimum(y0.clamp_min(0), height - box_h)
        x0 = torch.minimum(x0.clamp_min(0), width - box_w)
    y1, x1 = y0 + box_h, x0 + box_w
    boxes = torch.stack([x0, y0, x1, y1], dim=-1)
    upper = torch.tensor([width, height, width, height], device=boxes.device)
    return boxes.clamp_min(0).minimum(upper)


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
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample ``n`` CutMix boxes for an ``height`` x ``width`` image; returns int64 [n, 4] ``(x0, y0, x1, y1)``.

    ``alpha`` is the Beta concentration (unused by ``kind="fixed"``, whose sides are ``size`` times the image's).
    Draw order (part of the reproducibility contract): lambda, then centres (or corners for ``"inside"``).
    """
    check_choice(kind, "box", KINDS)
    check_choice(placement, "placement", PLACEMENTS)
    if kind == "fixed":
        check_fraction(size, "size")
        device = generator.device if generator is not None else torch.device("cpu")
        box_h = torch.full((n,), round(size * height), dtype=torch.long, device=device)
        box_w = torch.full((n,), round(size * width), dtype=torch.long, device=device)
    else:
        box_h, box_w = box_sides(sampling.beta(check_alpha(alpha), n, generator), height, width)
    if kind == "gaussian":
        check_fraction(sigma, "sigma", 0.0, float("inf"))
    if placement == "inside" and kind != "gaussian":
        # Uniform over the valid corners: every position of the box is equally likely.
        y0 = sampling.randint(height - box_h + 1, n, generator)
        x0 = sampling.randint(width - box_w + 1, n, generator)
        return torch.stack([x0, y0, x0 + box_w, y0 + box_h], dim=-1)
    cy, cx = sample_centres(n, height, width, kind="gaussian" if kind == "gaussian" else "uniform", sigma=sigma,
                            generator=generator)
    return place_boxes(cy, cx, box_h, box_w, height, width, placement)


def box_area(boxes: Tensor) -> Tensor:
    """Pixel count of each box (int64), zero for empty boxes."""
    return (boxes[..., 2] - boxes[..., 0]).clamp_min(0) * (boxes[..., 3] - boxes[..., 1]).clamp_min(0)


def box_lambda(boxes: Tensor, height: int, width: int) -> Tensor:
    """The exact share of the image that is *not* covered by each box: ``1 - area / (H * W)`` in float64.

    This is the CutMix label weight of the image that receives the paste.
    """
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
