"""The builtin "shapes" dataset: procedurally generated, no files, yet hard enough for regularisers to matter.

Each image holds one object whose *shape* is the class (disc, square, triangle, ...), drawn at a random size
(26-60 % of the side), position (entirely inside), rotation, colour and texture (solid, stripes, checker) over a
cluttered background: a two-colour gradient, small distractor strokes and blobs (some occluding the object), pixel
noise, and in 80 % of the images a *decoy*: a smaller shape of another class (40-70 % of the object's size) behind
the object. The label is the larger shape. Colour and texture are drawn independently of the class, so only the
outline tells the classes apart; the object's box is known exactly, which CutMix's localisation experiments need.

Difficulty: `cutmix train`'s defaults (ResNet-20, 10000 images, 8 epochs, about 5 CPU minutes) reach 93.6 %
validation accuracy without mixing and 82.1 % with CutMix (results/shapes-demo.md): learnable, not saturated,
and the regularisers differ. The dials are the sizes, the decoys, the noise and the least luminance contrast
between object and background (``_MIN_CONTRAST``).

Generation is vectorised over images (the Python loops run over classes and distractor slots only) and seeded
from (split, seed), so train and val come from different random streams and every call is reproducible.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal, overload

import torch
from torch import Tensor

from cutmix._checks import check_choice, check_positive_int
from cutmix.data.imageset import ImageSet

SHAPES = ("disc", "square", "triangle", "plus", "ring", "diamond", "star", "bar", "ellipse", "lshape")
DEFAULT_NUM_SAMPLES = {"train": 10000, "val": 2000}
SPLITS = {"train": "train", "val": "val", "test": "val"}  # the generator has no separate test split

_MIN_DIAMETER, _MAX_DIAMETER = 0.26, 0.6  # of the image side: the object's bounding circle
_STROKES, _STROKE_PROB = 4, 0.75  # distractor slots per image and how often each is used
_BLOBS, _BLOB_PROB = 3, 0.6
_FRONT_PROB = 0.3  # chance that a distractor is drawn over the object
_MAX_NOISE = 0.12  # per-image Gaussian pixel noise sigma ~ U[0, _MAX_NOISE], on the [0, 1] scale
_TEXTURE_PROB = 2 / 3  # stripes or checker (equally likely), else solid
# Least luminance difference between the object's colours and the background. Measured with ResNet-20, 8 epochs on
# the 10000 train images (no mixing): sizes 0.3-0.7, no decoys, contrast 0.45 -> 98.5 % val accuracy; with decoys
# 0.35-0.6 -> 96.4 %; sizes 0.22-0.5, decoys 0.5-0.85, noise 0.15, contrast 0.35 -> 51.4 %; the values below -> 93.6 %.
_MIN_CONTRAST = 0.4
_DECOY_PROB = 0.8  # chance of a smaller shape of another class behind the object
_DECOY_SCALE = (0.4, 0.7)  # its radius relative to the object's
_CHUNK_PIXELS = 256 * 32 * 32  # images per chunk, scaled by size: small chunks stay in cache (~4x faster)


def stream_seed(split: str, seed: int, stream: str = "cutmix.data.shapes") -> int:
    """A 63-bit seed for (split, seed): a hash, so that neighbouring seeds and splits give unrelated streams.

    ``stream`` names the generator (the scenes use their own), so two generators never share draws.
    """
    digest = hashlib.sha256(f"{stream}/{SPLITS[split]}/{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# -- signed distances, in units of the bounding-circle radius (negative inside). Every shape fits in the unit disc.


def _box(u: Tensor, v: Tensor, hx: Tensor | float, hy: Tensor | float) -> Tensor:
    qx, qy = u.abs() - hx, v.abs() - hy
    return torch.hypot(qx.clamp(min=0), qy.clamp(min=0)) + torch.maximum(qx, qy).clamp(max=0)


def _disc(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    return torch.hypot(u, v) - 1


def _square(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    return _box(u, v, math.sqrt(0.5), math.sqrt(0.5))


def _triangle(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    # equilateral, inscribed: its edges lie at distance 1/2 from the centre, normals 120 degrees apart
    d = [u * math.cos(a) + v * math.sin(a) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]
    return torch.maximum(torch.maximum(d[0], d[1]), d[2]) - 0.5


def _plus(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    w = 0.24 + 0.1 * aux
    arm = torch.sqrt(1 - w * w)
    return torch.minimum(_box(u, v, arm, w), _box(u, v, w, arm))


def _ring(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    inner = 0.45 + 0.2 * aux
    return (torch.hypot(u, v) - (1 + inner) / 2).abs() - (1 - inner) / 2


def _diamond(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    b = 0.5 + 0.2 * aux  # half-diagonals 1 and b: a rhombus, never a square
    return (u.abs() * b + v.abs() - b) / torch.sqrt(1 + b * b)


def _star(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    # five points: fold the angle into [0, 36 deg], where the outline is one edge from the tip (1, 0) inwards
    inner = 0.4 + 0.1 * aux
    sector = 2 * math.pi / 5
    phi = torch.remainder(torch.atan2(v, u), sector)
    phi = torch.minimum(phi, sector - phi)
    rho = torch.hypot(u, v)
    px, py = rho * torch.cos(phi), rho * torch.sin(phi)
    nx, ny = inner * math.sin(sector / 2), 1 - inner * math.cos(sector / 2)  # outward normal of that edge
    return (nx * (px - 1) + ny * py) / torch.sqrt(nx * nx + ny * ny)


def _bar(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    w = 0.2 + 0.1 * aux
    return _box(u, v, torch.sqrt(1 - w * w), w)


def _ellipse(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    b = 0.45 + 0.2 * aux
    f = u * u + (v / b) ** 2 - 1
    grad = 2 * torch.hypot(u, v / (b * b))
    return f / grad.clamp(min=1e-6)  # first-order distance: exact enough within a pixel of the outline


def _lshape(u: Tensor, v: Tensor, aux: Tensor) -> Tensor:
    h, t = 0.7, 0.4 + 0.15 * aux  # an L in the square [-h, h]^2 (corners on the unit circle), arms t thick
    upright = _box(u + h - t / 2, v, t / 2, h)
    foot = _box(u, v - h + t / 2, h, t / 2)
    return torch.minimum(upright, foot)


_SDF = (_disc, _square, _triangle, _plus, _ring, _diamond, _star, _bar, _ellipse, _lshape)


# -- drawing


def _uniform(g: torch.Generator, lo: float, hi: float, *shape: int) -> Tensor:
    return lo + (hi - lo) * torch.rand(*shape, generator=g)


_LUMA = (0.299, 0.587, 0.114)


def _luminance(rgb: Tensor) -> Tensor:
    return rgb @ torch.tensor(_LUMA)


def _toward(rgb: Tensor, limit: Tensor, lighter: Tensor) -> Tensor:
    """Colours [n, 3] moved, keeping their hue, to luminance >= limit (where ``lighter``) or <= limit (elsewhere):
    scale the colour towards black, or its complement towards black (the colour towards white)."""
    side = torch.where(lighter[:, None], 1 - rgb, rgb)  # the part that must shrink
    bound = torch.where(lighter, 1 - limit, limit).clamp(min=0)
    side = side * (bound / _luminance(side).clamp(min=1e-6)).clamp(max=1)[:, None]
    return torch.where(lighter[:, None], 1 - side, side)


def _separate(obj: Tensor, obj2: Tensor, bg0: Tensor, bg1: Tensor, margin: float) -> tuple[Tensor, ...]:
    """Luminance contrast >= margin between the object's colours and every background pixel, in either direction
    (whichever is nearer), meeting half-way so that both keep as much of their random colour as possible."""
    obj_lum, bg_lum = _luminance(obj), _luminance((bg0 + bg1) / 2)
    lighter = obj_lum >= bg_lum
    mid = ((obj_lum + bg_lum) / 2).clamp(margin / 2, 1 - margin / 2)
    hi, lo = mid + margin / 2, mid - margin / 2
    obj_limit, bg_limit = torch.where(lighter, hi, lo), torch.where(lighter, lo, hi)
    return (
        _toward(obj, obj_limit, lighter),
        _toward(obj2, obj_limit, lighter),
        _toward(bg0, bg_limit, ~lighter),
        _toward(bg1, bg_limit, ~lighter),
    )


def _coverage(sdf_px: Tensor) -> Tensor:
    """Antialiased coverage of a pixel from the signed distance of its centre (in pixels)."""
    return (0.5 - sdf_px).clamp(0, 1)


def _paint(canvas: Tensor, alpha: Tensor, colour: Tensor) -> None:
    """canvas [n, 3, S, S] <- alpha-blend colour ([n, 3] or [n, 3, S, S]) with alpha [n, S, S], in place."""
    if colour.ndim == 2:
        colour = colour[:, :, None, None]
    canvas.mul_(1 - alpha[:, None]).add_(colour * alpha[:, None])


def _col(t: Tensor) -> Tensor:
    """A per-image scalar [n] as [n, 1, 1], to broadcast over pixels."""
    return t[:, None, None]


def _gradient(bg0: Tensor, bg1: Tensor, angle: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Backgrounds [n, 3, S, S]: a linear gradient from colour ``bg0`` to ``bg1`` [n, 3] along ``angle`` [n]."""
    s = x.shape[-1]
    along = ((x - s / 2) * _col(torch.cos(angle)) + (y - s / 2) * _col(torch.sin(angle))) / s + 0.5
    along = along.clamp(0, 1)[:, None]
    return bg0[:, :, None, None] + (bg1 - bg0)[:, :, None, None] * along


def _shape_sdf(
    classes: Tensor, cx: Tensor, cy: Tensor, angle: Tensor, radius: Tensor, aux: Tensor, x: Tensor, y: Tensor
) -> Tensor:
    """Signed distance in pixels [n, S, S] to each image's shape, in its own rotated, scaled frame, a class at a time.

    ``x`` [1, 1, S] and ``y`` [1, S, 1] are the pixel centres.
    """
    n, s = classes.shape[0], x.shape[-1]
    dx, dy = x - _col(cx), y - _col(cy)
    cos, sin = _col(torch.cos(angle)), _col(torch.sin(angle))
    u, v = (dx * cos + dy * sin) / _col(radius), (dy * cos - dx * sin) / _col(radius)
    sdf = torch.empty(n, s, s)
    for c in classes.unique().tolist():
        idx = (classes == c).nonzero().squeeze(1)
        sdf[idx] = _SDF[c](u[idx], v[idx], _col(aux[idx])) * _col(radius[idx])
    return sdf


def _render(
    labels: Tensor, size: int, g: torch.Generator, num_classes: int = len(SHAPES), layers: bool = False
) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Float images [n, 3, S, S] in [0, 1] and object masks [n, S, S] for ``labels``, drawing from ``g``.

    ``layers=True`` also returns what the segmentation masks need (it changes no draw and no pixel): the object's
    and the decoy's coverage [n, S, S], the decoy's class [n], and the share of each pixel left visible by the
    distractors drawn in front [n, S, S].
    """
    n, s = labels.shape[0], size
    scale = s / 32  # distractors and texture are specified in pixels of a 32 x 32 image
    ax = torch.arange(s, dtype=torch.float32) + 0.5  # pixel centres
    y, x = ax[None, :, None], ax[None, None, :]

    # all random parameters first, in a fixed order, so the stream does not depend on the class mix
    radius = _uniform(g, _MIN_DIAMETER, _MAX_DIAMETER, n) * s / 2
    margin = radius + 0.5  # keeps the antialiased edge inside too
    cx = margin + torch.rand(n, generator=g) * (s - 2 * margin)
    cy = margin + torch.rand(n, generator=g) * (s - 2 * margin)
    angle = _uniform(g, 0, 2 * math.pi, n)
    aux = torch.rand(n, generator=g)
    colour, colour2 = torch.rand(n, 3, generator=g), torch.rand(n, 3, generator=g)
    textured = torch.rand(n, generator=g) < _TEXTURE_PROB
    texture = torch.where(textured, 1 + torch.randint(0, 2, (n,), generator=g), 0)  # 0 solid, 1 stripes, 2 checker
    period = _uniform(g, 3, 6, n) * scale
    tex_angle, tex_phase = _uniform(g, 0, math.pi, n), _uniform(g, 0, 2 * math.pi, n, 2)
    bg0, bg1 = torch.rand(n, 3, generator=g), torch.rand(n, 3, generator=g)
    bg_angle = _uniform(g, 0, 2 * math.pi, n)
    colour, colour2, bg0, bg1 = _separate(colour, colour2, bg0, bg1, _MIN_CONTRAST)
    stroke_on = torch.rand(n, _STROKES, generator=g) < _STROKE_PROB
    stroke_a = torch.rand(n, _STROKES, 2, generator=g) * s
    stroke_dir = _uniform(g, 0, 2 * math.pi, n, _STROKES)
    stroke_len = _uniform(g, 3, 7, n, _STROKES) * scale
    stroke_width = _uniform(g, 0.8, 1.3, n, _STROKES) * scale
    stroke_colour = torch.rand(n, _STROKES, 3, generator=g)
    blob_on = torch.rand(n, _BLOBS, generator=g) < _BLOB_PROB
    blob_c = torch.rand(n, _BLOBS, 2, generator=g) * s
    blob_r = _uniform(g, 1.2, 2.5, n, _BLOBS) * scale
    blob_colour = torch.rand(n, _BLOBS, 3, generator=g)
    stroke_front = torch.rand(n, _STROKES, generator=g) < _FRONT_PROB
    blob_front = torch.rand(n, _BLOBS, generator=g) < _FRONT_PROB
    sigma = _uniform(g, 0, _MAX_NOISE, n)
    # the decoy: a smaller shape of another class behind the object; the label is the larger shape
    decoy_on = torch.rand(n, generator=g) < _DECOY_PROB
    decoy_label = (labels + torch.randint(1, max(num_classes, 2), (n,), generator=g)) % max(num_classes, 1)
    decoy_radius = radius * _uniform(g, _DECOY_SCALE[0], _DECOY_SCALE[1], n)
    decoy_cx = decoy_radius + 0.5 + torch.rand(n, generator=g) * (s - 2 * decoy_radius - 1)
    decoy_cy = decoy_radius + 0.5 + torch.rand(n, generator=g) * (s - 2 * decoy_radius - 1)
    decoy_angle = _uniform(g, 0, 2 * math.pi, n)
    decoy_aux = torch.rand(n, generator=g)
    decoy_colour = _separate(torch.rand(n, 3, generator=g), colour, bg0, bg1, _MIN_CONTRAST)[0]

    def col(t: Tensor) -> Tensor:  # per-image scalar -> broadcastable over [n, S, S]
        return t[:, None, None]

    # background: a linear gradient between two colours along a random direction
    canvas = _gradient(bg0, bg1, bg_angle, x, y)

    # distractors: short thin strokes and small blobs, far from any class shape at the object's scale; some are
    # drawn after the object and occlude it
    distractors = []
    for k in range(_STROKES):
        ax0, ay0 = col(stroke_a[:, k, 0]), col(stroke_a[:, k, 1])
        dx = col(torch.cos(stroke_dir[:, k]) * stroke_len[:, k])
        dy = col(torch.sin(stroke_dir[:, k]) * stroke_len[:, k])
        px, py = x - ax0, y - ay0
        t = ((px * dx + py * dy) / (dx * dx + dy * dy)).clamp(0, 1)
        dist = torch.hypot(px - t * dx, py - t * dy) - col(stroke_width[:, k]) / 2
        distractors.append((_coverage(dist) * col(stroke_on[:, k].float()), stroke_colour[:, k], stroke_front[:, k]))
    for k in range(_BLOBS):
        dist = torch.hypot(x - col(blob_c[:, k, 0]), y - col(blob_c[:, k, 1])) - col(blob_r[:, k])
        distractors.append((_coverage(dist) * col(blob_on[:, k].float()), blob_colour[:, k], blob_front[:, k]))
    for alpha_k, colour_k, front in distractors:
        _paint(canvas, alpha_k * col((~front).float()), colour_k)

    decoy = _coverage(_shape_sdf(decoy_label, decoy_cx, decoy_cy, decoy_angle, decoy_radius, decoy_aux, x, y))
    _paint(canvas, decoy * col(decoy_on.float()), decoy_colour)
    alpha = _coverage(_shape_sdf(labels, cx, cy, angle, radius, aux, x, y))

    # texture: solid, stripes or checker in two colours, on a rotated grid of random period
    tc, ts = col(torch.cos(tex_angle)), col(torch.sin(tex_angle))
    w1 = torch.sin(2 * math.pi * (x * tc + y * ts) / col(period) + col(tex_phase[:, 0]))
    w2 = torch.sin(2 * math.pi * (y * tc - x * ts) / col(period) + col(tex_phase[:, 1]))
    tex = col(texture)
    first = (tex == 0) | ((tex == 1) & (w1 > 0)) | ((tex == 2) & (w1 * w2 > 0))
    fill = torch.where(first[:, None], colour[:, :, None, None], colour2[:, :, None, None])
    _paint(canvas, alpha, fill)
    for alpha_k, colour_k, front in distractors:
        _paint(canvas, alpha_k * col(front.float()), colour_k)

    canvas.add_(torch.randn(canvas.shape, generator=g) * sigma[:, None, None, None])
    if not layers:
        return canvas.clamp_(0, 1), alpha > 0
    visible = torch.ones(n, s, s)
    for alpha_k, _, front in distractors:
        visible.mul_(1 - alpha_k * col(front.float()))
    info = {"object": alpha, "decoy": decoy * col(decoy_on.float()), "decoy_label": decoy_label, "visible": visible}
    return canvas.clamp_(0, 1), alpha > 0, info


def _tight_boxes(masks: Tensor) -> Tensor:
    """Half-open boxes (x0, y0, x1, y1) int64 [n, 4] around the true pixels of masks [n, H, W] (none empty)."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    h, w = masks.shape[1:]

    def span(hit: Tensor, length: int) -> tuple[Tensor, Tensor]:
        first = hit.int().argmax(dim=1)
        last = length - hit.flip(1).int().argmax(dim=1)
        return first, last

    y0, y1 = span(rows, h)
    x0, x1 = span(cols, w)
    return torch.stack([x0, y0, x1, y1], dim=1).long()


@overload
def load_shapes(
    split: str = ...,
    num_samples: int | None = ...,
    size: int = ...,
    num_classes: int = ...,
    seed: int = ...,
    *,
    return_masks: Literal[False] = ...,
) -> ImageSet: ...
@overload
def load_shapes(
    split: str = ...,
    num_samples: int | None = ...,
    size: int = ...,
    num_classes: int = ...,
    seed: int = ...,
    *,
    return_masks: Literal[True],
) -> tuple[ImageSet, Tensor]: ...
def load_shapes(
    split: str = "train",
    num_samples: int | None = None,
    size: int = 32,
    num_classes: int = 10,
    seed: int = 0,
    *,
    return_masks: bool = False,
) -> ImageSet | tuple[ImageSet, Tensor]:
    """Generate the shapes dataset: ``split`` "train" (default 10000 images) or "val" ("test" is an alias, 2000).

    The result depends only on the arguments. Labels are balanced exactly (counts differ by at most one) and
    shuffled; ``boxes`` are the tight boxes of the object pixels. ``return_masks=True`` also returns the bool
    object masks [N, size, size] those boxes come from (for tests and localisation metrics).
    """
    num_samples = _check_args(split, num_samples, size, num_classes, seed)
    data, masks, _ = _generate(split, num_samples, size, num_classes, seed)
    return (data, masks) if return_masks else data


def _check_args(split: str, num_samples: int | None, size: int, num_classes: int, seed: int) -> int:
    """Validate the generator's arguments; returns ``num_samples`` with the split's default filled in."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(repr(s) for s in SPLITS)}; got {split!r}")
    for value, name, low in ((size, "size", 8), (num_classes, "num_classes", 1), (seed, "seed", None)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if low is not None and value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if num_classes > len(SHAPES):
        raise ValueError(
            f"num_classes must be at most {len(SHAPES)} (the shapes: {', '.join(SHAPES)}), got {num_classes}"
        )
    if num_samples is None:
        num_samples = DEFAULT_NUM_SAMPLES[SPLITS[split]]
    return check_positive_int(num_samples, "num_samples")


def _generate(
    split: str, num_samples: int, size: int, num_classes: int, seed: int, border: str | None = None
) -> tuple[ImageSet, Tensor, Tensor | None]:
    """The shapes set, its object masks, and (for a ``border`` rule) its segmentation masks uint8 [N, S, S]."""
    g = torch.Generator().manual_seed(stream_seed(split, seed))
    labels = (torch.arange(num_samples) % num_classes)[torch.randperm(num_samples, generator=g)]
    images = torch.empty(num_samples, 3, size, size, dtype=torch.uint8)
    masks = torch.empty(num_samples, size, size, dtype=torch.bool)
    segments = None if border is None else torch.empty(num_samples, size, size, dtype=torch.uint8)
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, num_samples, chunk):
        part = slice(start, start + chunk)
        if segments is not None:
            canvas, mask, info = _render(labels[part], size, g, num_classes, layers=True)
            segments[part] = _segment(labels[part], info, border)
        else:
            canvas, mask = _render(labels[part], size, g, num_classes)
        images[part] = canvas.mul_(255).round_().to(torch.uint8)
        masks[part] = mask
    name = "shapes" if num_classes == len(SHAPES) else f"shapes{num_classes}"
    data = ImageSet(images, labels, list(SHAPES[:num_classes]), _tight_boxes(masks), name)
    return data, masks, segments


# -- segmentation masks -------------------------------------------------------------------------------------------
BACKGROUND = 0
IGNORE_INDEX = 255
BORDERS = ("ignore", "majority")


def segmentation_classes(num_classes: int = len(SHAPES)) -> list[str]:
    """Names of the mask values 0..K: "background", then the shapes (shape ``c`` is ``c + 1``)."""
    return ["background", *SHAPES[:num_classes]]


def _segment(labels: Tensor, info: dict[str, Tensor], border: str) -> Tensor:
    """Per-pixel classes from the layers' shares of each pixel: object over decoy, distractors in front over both.

    A pixel belongs to the topmost shape that shows in it at all (its visible share > 0), the set whose tight box
    the stored object box is. ``"ignore"`` marks every pixel that mixes colours of two classes (antialiased edges,
    a distractor's edge over a shape) with :data:`IGNORE_INDEX`; ``"majority"`` gives it the class of the largest
    share (ties to the lower layer: background, decoy, object).
    """
    w_obj = info["object"] * info["visible"]
    w_decoy = info["decoy"] * (1 - info["object"]) * info["visible"]
    obj = (labels + 1)[:, None, None]
    decoy = (info["decoy_label"] + 1)[:, None, None]
    zero = torch.zeros((), dtype=torch.int64)
    if border == "majority":
        choice = torch.stack([1 - w_obj - w_decoy, w_decoy, w_obj]).argmax(0)  # the first maximum on ties
        return torch.where(choice == 2, obj, torch.where(choice == 1, decoy, zero)).to(torch.uint8)
    assigned = torch.where(w_obj > 0, obj, torch.where(w_decoy > 0, decoy, zero))
    pure = (w_obj == 1) | (w_decoy == 1) | ((w_obj == 0) & (w_decoy == 0))
    return torch.where(pure, assigned, torch.full((), IGNORE_INDEX)).to(torch.uint8)


def load_shapes_segmentation(
    split: str = "train",
    num_samples: int | None = None,
    size: int = 32,
    num_classes: int = 10,
    seed: int = 0,
    *,
    border: str = "ignore",
) -> tuple[ImageSet, Tensor]:
    """The shapes images of :func:`load_shapes` (the very same, for the same arguments) with segmentation masks.

    Masks are uint8 [N, size, size]: 0 background (distractors included), ``c + 1`` for shape ``c`` (the object
    and the decoy, a shape of another class behind it), and with ``border="ignore"`` :data:`IGNORE_INDEX` (255)
    on pixels that mix two classes; ``border="majority"`` labels those by the class that covers most of the pixel.
    Class names: :func:`segmentation_classes`.
    """
    check_choice(border, "border", BORDERS)
    num_samples = _check_args(split, num_samples, size, num_classes, seed)
    data, _, segments = _generate(split, num_samples, size, num_classes, seed, border)
    return data, segments


# -- multi-object scenes with instance boxes ----------------------------------------------------------------------
SCENE_STREAM = "cutmix.data.shapes.scenes"
DEFAULT_NUM_SCENES = {"train": 2000, "val": 500}
_SCENE_DIAMETER = (0.24, 0.5)  # of the image side: each object's bounding circle
_SCENE_CONTRAST = 0.3  # least luminance difference between an object and the mean background
_SCENE_NOISE = 0.08


@dataclass
class Scenes:
    """Multi-object scenes: images and dense labels of every kind, in torchvision's detection format.

    ``images`` uint8 [N, 3, S, S]; ``masks`` uint8 [N, S, S] semantic classes (0 background, ``c + 1`` for shape
    ``c``, :data:`IGNORE_INDEX` on mixed pixels with ``border="ignore"``); ``instances`` uint8 [N, S, S] (0 background,
    ``k + 1`` for box ``k`` of the image); ``targets`` one dict per image: ``boxes`` float32 [M, 4] xyxy (the tight
    boxes of the instances), ``labels`` int64 [M] (``c + 1``, as in the masks: 0 is background for torchvision's
    detectors), ``area`` float32 [M] (box areas) and ``iscrowd`` int64 [M] zeros.
    """

    images: Tensor
    masks: Tensor
    instances: Tensor
    targets: list[dict[str, Tensor]]
    classes: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _away_from(colour: Tensor, luminance: Tensor, margin: float) -> Tensor:
    """Colours [m, 3] moved (hue kept) to a luminance at least ``margin`` from ``luminance`` [m], on the nearer side
    where it has room."""
    lighter = _luminance(colour) >= luminance
    lighter = torch.where(lighter, luminance + margin <= 1, luminance - margin < 0)
    limit = torch.where(lighter, luminance + margin, luminance - margin)
    return _toward(colour, limit, lighter)


def _render_scenes(
    n: int, size: int, num_classes: int, max_objects: int, g: torch.Generator, border: str
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Float images [n, 3, S, S], semantic masks, instance maps (slot k + 1) and classes [n, K] of ``n`` scenes.

    Objects are painted in slot order, so later ones occlude earlier ones; a pixel belongs to the layer with the
    largest share of it (ties to the lower layer), and is mixed when no layer covers it entirely.
    """
    s, k_max = size, max_objects
    ax = torch.arange(s, dtype=torch.float32) + 0.5
    y, x = ax[None, :, None], ax[None, None, :]
    count = torch.randint(1, k_max + 1, (n,), generator=g)
    classes = torch.randint(0, num_classes, (n, k_max), generator=g)
    radius = _uniform(g, _SCENE_DIAMETER[0], _SCENE_DIAMETER[1], n, k_max) * s / 2
    cx = radius + 0.5 + torch.rand(n, k_max, generator=g) * (s - 2 * radius - 1)
    cy = radius + 0.5 + torch.rand(n, k_max, generator=g) * (s - 2 * radius - 1)
    angle = _uniform(g, 0, 2 * math.pi, n, k_max)
    aux = torch.rand(n, k_max, generator=g)
    colour = torch.rand(n, k_max, 3, generator=g)
    bg0 = torch.rand(n, 3, generator=g)
    bg1 = (bg0 + _uniform(g, -0.15, 0.15, n, 3)).clamp(0, 1)
    bg_angle = _uniform(g, 0, 2 * math.pi, n)
    sigma = _uniform(g, 0, _SCENE_NOISE, n)
    on = torch.arange(k_max)[None] < count[:, None]
    bg_lum = _luminance((bg0 + bg1) / 2)
    colour = _away_from(colour.view(-1, 3), bg_lum.repeat_interleave(k_max), _SCENE_CONTRAST).view(n, k_max, 3)

    canvas = _gradient(bg0, bg1, bg_angle, x, y)
    alphas = []
    for k in range(k_max):
        sdf = _shape_sdf(classes[:, k], cx[:, k], cy[:, k], angle[:, k], radius[:, k], aux[:, k], x, y)
        alphas.append(_coverage(sdf) * _col(on[:, k].float()))
        _paint(canvas, alphas[k], colour[:, k])
    canvas.add_(torch.randn(canvas.shape, generator=g) * sigma[:, None, None, None])

    weights = [torch.empty(0)] * (k_max + 1)  # layer shares of each pixel: background, then slot k at k + 1
    remaining = torch.ones(n, s, s)
    for k in reversed(range(k_max)):
        weights[k + 1] = alphas[k] * remaining
        remaining = remaining * (1 - alphas[k])
    weights[0] = remaining
    stacked = torch.stack(weights, dim=1)
    best, layer = stacked.amax(dim=1), stacked.argmax(dim=1)  # argmax returns the first maximum: the lower layer
    padded = torch.cat([torch.full((n, 1), -1), classes], dim=1)
    semantic = padded.gather(1, layer.flatten(1)).view(n, s, s) + 1
    if border == "ignore":
        semantic = torch.where(best == 1, semantic, torch.full((), IGNORE_INDEX))
    return canvas.clamp_(0, 1), semantic.to(torch.uint8), layer, classes


def load_shape_scenes(
    split: str = "train",
    num_samples: int | None = None,
    size: int = 64,
    num_classes: int = 10,
    seed: int = 0,
    *,
    max_objects: int = 4,
    border: str = "ignore",
) -> Scenes:
    """Scenes of 1 to ``max_objects`` shapes (uniform count, uniform classes, overlapping), seeded, no files.

    For detection and instance work offline: every object's box is the tight box of its visible pixels, and an
    object hidden entirely by later ones is not in the targets. ``split`` "train" (default 2000 scenes) or "val"
    (500); the draws are a stream of their own, unrelated to :func:`load_shapes`'.
    """
    check_choice(border, "border", BORDERS)
    if isinstance(max_objects, bool) or not isinstance(max_objects, int) or not 1 <= max_objects <= 254:
        raise ValueError(f"max_objects must be an int in [1, 254], got {max_objects!r}")
    if num_samples is None and split in SPLITS:
        num_samples = DEFAULT_NUM_SCENES[SPLITS[split]]
    num_samples = _check_args(split, num_samples, size, num_classes, seed)
    g = torch.Generator().manual_seed(stream_seed(split, seed, SCENE_STREAM))
    images = torch.empty(num_samples, 3, size, size, dtype=torch.uint8)
    masks = torch.empty(num_samples, size, size, dtype=torch.uint8)
    instances = torch.empty(num_samples, size, size, dtype=torch.uint8)
    targets: list[dict[str, Tensor]] = []
    chunk = max(1, _CHUNK_PIXELS // (size * size * max_objects))
    for start in range(0, num_samples, chunk):
        part = slice(start, start + chunk)
        canvas, semantic, layer, classes = _render_scenes(
            min(chunk, num_samples - start), size, num_classes, max_objects, g, border
        )
        images[part] = canvas.mul_(255).round_().to(torch.uint8)
        masks[part] = semantic
        # renumber the visible slots 1..M in slot order, so that instance k + 1 is box k
        present = torch.zeros(layer.shape[0], max_objects + 1, dtype=torch.bool)
        present.scatter_(1, layer.flatten(1), True)
        present[:, 0] = False
        rank = present.long().cumsum(1) * present
        instances[part] = rank.gather(1, layer.flatten(1)).view_as(layer).to(torch.uint8)
        for i in range(layer.shape[0]):
            targets.append(_scene_target(instances[start + i], classes[i][present[i, 1:]]))
    return Scenes(images, masks, instances, targets, segmentation_classes(num_classes))


def _scene_target(instances: Tensor, classes: Tensor) -> dict[str, Tensor]:
    """Torchvision's detection target of one scene from its instance map [S, S] (ids 1..M) and classes [M]."""
    m = classes.shape[0]
    hits = instances[None] == torch.arange(1, m + 1, dtype=torch.uint8)[:, None, None]
    boxes = _tight_boxes(hits).float() if m else torch.zeros(0, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return {"boxes": boxes, "labels": classes + 1, "area": area, "iscrowd": torch.zeros(m, dtype=torch.int64)}
