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
from typing import Literal, overload

import torch
from torch import Tensor

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


def stream_seed(split: str, seed: int) -> int:
    """A 63-bit seed for (split, seed): a hash, so that neighbouring seeds and splits give unrelated streams."""
    digest = hashlib.sha256(f"cutmix.data.shapes/{SPLITS[split]}/{seed}".encode()).digest()
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


def _render(labels: Tensor, size: int, g: torch.Generator, num_classes: int = len(SHAPES)) -> tuple[Tensor, Tensor]:
    """Float images [n, 3, S, S] in [0, 1] and object masks [n, S, S] for ``labels``, drawing from ``g``."""
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
    along = ((x - s / 2) * col(torch.cos(bg_angle)) + (y - s / 2) * col(torch.sin(bg_angle))) / s + 0.5
    along = along.clamp(0, 1)[:, None]
    canvas = bg0[:, :, None, None] + (bg1 - bg0)[:, :, None, None] * along

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

    def shape_sdf(classes: Tensor, cx: Tensor, cy: Tensor, angle: Tensor, radius: Tensor, aux: Tensor) -> Tensor:
        """Signed distance in pixels to each image's shape, in its own rotated, scaled frame, a class at a time."""
        dx, dy = x - col(cx), y - col(cy)
        cos, sin = col(torch.cos(angle)), col(torch.sin(angle))
        u, v = (dx * cos + dy * sin) / col(radius), (dy * cos - dx * sin) / col(radius)
        sdf = torch.empty(n, s, s)
        for c in classes.unique().tolist():
            idx = (classes == c).nonzero().squeeze(1)
            sdf[idx] = _SDF[c](u[idx], v[idx], col(aux[idx])) * col(radius[idx])
        return sdf

    decoy = _coverage(shape_sdf(decoy_label, decoy_cx, decoy_cy, decoy_angle, decoy_radius, decoy_aux))
    _paint(canvas, decoy * col(decoy_on.float()), decoy_colour)
    alpha = _coverage(shape_sdf(labels, cx, cy, angle, radius, aux))

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
    return canvas.clamp_(0, 1), alpha > 0


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
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an int >= 1 or None, got {num_samples!r}")

    g = torch.Generator().manual_seed(stream_seed(split, seed))
    labels = (torch.arange(num_samples) % num_classes)[torch.randperm(num_samples, generator=g)]
    images = torch.empty(num_samples, 3, size, size, dtype=torch.uint8)
    masks = torch.empty(num_samples, size, size, dtype=torch.bool)
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, num_samples, chunk):
        part = slice(start, start + chunk)
        canvas, mask = _render(labels[part], size, g, num_classes)
        images[part] = canvas.mul_(255).round_().to(torch.uint8)
        masks[part] = mask
    name = "shapes" if num_classes == len(SHAPES) else f"shapes{num_classes}"
    data = ImageSet(images, labels, list(SHAPES[:num_classes]), _tight_boxes(masks), name)
    return (data, masks) if return_masks else data
