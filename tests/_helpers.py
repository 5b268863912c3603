"""Shared test helpers: image factories in many memory layouts, and straightforward loop references.

The references deliberately use explicit Python loops over samples and pixels: they are the specification the
vectorised library code is checked against, so they must be obviously right rather than fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor

DTYPES = [torch.uint8, torch.float32, torch.float64, torch.bfloat16]

# Memory layouts an image batch can arrive in. Each one is checked by `random_images` to really have the property
# its name promises, so a test parametrised over them cannot silently degrade into the plain contiguous case.
LAYOUTS = [
    "nchw",  # plain contiguous
    "channels_last",  # .contiguous(memory_format=torch.channels_last)
    "nhwc_permuted",  # an NHWC buffer permuted to NCHW (channels_last strides, as images decoded as HWC arrive)
    "strided",  # every other column of a wider tensor: no dense layout at all
    "crop",  # a spatial crop of a larger batch: rows contiguous, tensor not
    "batch_strided",  # every other sample of a larger batch
    "offset",  # contiguous, but starting one element into its storage (misaligned for word-wise copies)
    "offset_aligned",  # contiguous, starting eight elements into its storage
    "channels_last_offset",  # channels_last strides and a storage offset of one element
]


def _random(shape: tuple[int, ...], dtype: torch.dtype, generator: torch.Generator) -> Tensor:
    t = torch.rand(*shape, generator=generator, dtype=torch.float64)
    if dtype == torch.uint8:
        return (t * 256).floor().clamp(max=255).to(torch.uint8)
    return t.to(dtype)


def random_images(
    n: int, c: int, h: int, w: int, dtype: torch.dtype = torch.float32, layout: str = "nchw", seed: int = 0
) -> Tensor:
    """A random batch [n, c, h, w] of ``dtype`` laid out in memory as ``layout`` (see LAYOUTS)."""
    g = torch.Generator().manual_seed(seed)
    numel = n * c * h * w
    if layout == "nchw":
        x = _random((n, c, h, w), dtype, g)
    elif layout == "channels_last":
        x = _random((n, c, h, w), dtype, g).contiguous(memory_format=torch.channels_last)
    elif layout == "nhwc_permuted":
        x = _random((n, h, w, c), dtype, g).permute(0, 3, 1, 2)
    elif layout == "strided":
        x = _random((n, c, h, 2 * w), dtype, g)[..., ::2]
    elif layout == "crop":
        x = _random((n, c, h + 2, w + 3), dtype, g)[:, :, 1 : h + 1, 2 : w + 2]
    elif layout == "batch_strided":
        x = _random((2 * n, c, h, w), dtype, g)[::2]
    elif layout == "offset":
        x = _random((numel + 1,), dtype, g)[1:].view(n, c, h, w)
    elif layout == "offset_aligned":
        x = _random((numel + 8,), dtype, g)[8:].view(n, c, h, w)
    elif layout == "channels_last_offset":
        x = _random((numel + 1,), dtype, g)[1:].view(n, h, w, c).permute(0, 3, 1, 2)
    else:
        raise ValueError(layout)
    assert x.shape == (n, c, h, w) and x.dtype == dtype
    if layout in ("strided", "crop", "batch_strided"):
        assert not x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    if layout in ("offset", "offset_aligned", "channels_last_offset"):
        assert x.storage_offset() > 0
    if layout in ("channels_last", "nhwc_permuted", "channels_last_offset"):
        assert x.is_contiguous(memory_format=torch.channels_last)
    return x


def is_channels_last(t: Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last)


def shares_memory(a: Tensor, b: Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def as_box(boxes: Tensor, i: int) -> tuple[int, int, int, int]:
    """Sample ``i``'s box (x0, y0, x1, y1) from boxes [4] or [N, 4]."""
    b = boxes if boxes.ndim == 1 else boxes[i]
    x0, y0, x1, y1 = (int(v) for v in b.tolist())
    return x0, y0, x1, y1


def in_box(box: tuple[int, int, int, int], y: int, x: int) -> bool:
    x0, y0, x1, y1 = box
    return x0 <= x < x1 and y0 <= y < y1


def ref_paste(images: Tensor, boxes: Tensor, index: Tensor) -> Tensor:
    """CutMix image op, pixel by pixel: sample i takes sample index[i]'s pixels inside its box."""
    src = images.detach().clone()
    out = src.clone()
    n, _, h, w = src.shape
    for i in range(n):
        box = as_box(boxes, i)
        j = int(index[i])
        for y in range(h):
            for x in range(w):
                if in_box(box, y, x):
                    out[i, :, y, x] = src[j, :, y, x]
    return out


def ref_erase(images: Tensor, boxes: Tensor, value: float) -> Tensor:
    out = images.detach().clone()
    n, _, h, w = out.shape
    for i in range(n):
        box = as_box(boxes, i)
        for y in range(h):
            for x in range(w):
                if in_box(box, y, x):
                    out[i, :, y, x] = value
    return out


def ref_blend(images: Tensor, lam: float | list[float], index: Tensor) -> Tensor:
    """Mixup image op in float64: lam_i * x_i + (1 - lam_i) * x_index[i]."""
    src = images.detach().double()
    out = torch.empty_like(src, memory_format=torch.contiguous_format)
    n = src.shape[0]
    for i in range(n):
        li = lam if isinstance(lam, float) else lam[i]
        out[i] = li * src[i] + (1.0 - li) * src[int(index[i])]
    return out


def count_box_pixels(box: tuple[int, int, int, int], h: int, w: int) -> int:
    return sum(in_box(box, y, x) for y in range(h) for x in range(w))


def label_weight(lam: float, mode: str) -> float:
    """The weight of an image's own label, written out from the documented rules."""
    if mode == "area":
        return lam
    if mode == "onehot":  # the label of the larger area; a tie keeps the image's own label
        return 1.0 if lam >= 0.5 else 0.0
    if mode == "complete":  # 0.5 / 0.5 for every sample that was actually mixed
        return 0.5 if 0.0 < lam < 1.0 else lam
    raise ValueError(mode)


def ref_targets(
    labels: Tensor,
    index: Tensor,
    lams: list[float],
    num_classes: int,
    mode: str = "area",
    smoothing: float = 0.0,
) -> Tensor:
    """Mixed targets [N, K] in float64, one row at a time."""
    n = len(lams)
    out = torch.zeros(n, num_classes, dtype=torch.float64)
    for i in range(n):
        wgt = label_weight(float(lams[i]), mode)
        j = int(index[i])
        if labels.ndim == 1:
            out[i, int(labels[i])] += wgt
            out[i, int(labels[j])] += 1.0 - wgt
        else:
            out[i] = wgt * labels[i].double() + (1.0 - wgt) * labels[j].double()
        out[i] = out[i] * (1.0 - smoothing) + smoothing / num_classes
    return out


def one_hot_ref(labels: Tensor, num_classes: int, smoothing: float = 0.0) -> Tensor:
    out = torch.zeros(len(labels), num_classes, dtype=torch.float64)
    for i, y in enumerate(labels.tolist()):
        out[i, y] = 1.0
    return out * (1.0 - smoothing) + smoothing / num_classes


def constant_batch(n: int, c: int, h: int, w: int, dtype: torch.dtype = torch.uint8) -> Tensor:
    """Sample i is filled with the value i + 1 everywhere, so every pixel tells which sample it came from."""
    return (torch.arange(1, n + 1, dtype=torch.float64).view(n, 1, 1, 1).expand(n, c, h, w)).to(dtype).contiguous()


def decode_constant_mix(out: Tensor, i: int) -> tuple[int, float, tuple[int, int, int, int] | None]:
    """For a CutMix output of a `constant_batch`: (partner of sample i, own pixel share, box of foreign pixels).

    Checks on the way that the sample holds at most one foreign value, identical across channels, and that the
    foreign pixels form a full rectangle. Returns partner i and share 1.0 (box None) when nothing was pasted.
    """
    img = out[i].double()
    assert bool((img == img[0:1]).all()), "channels disagree"
    plane = img[0]
    h, w = plane.shape
    own = plane == i + 1
    foreign_values = sorted({int(v) for v in plane[~own].tolist()})
    assert len(foreign_values) <= 1, f"sample {i} holds pixels of several partners: {foreign_values}"
    share = float(own.sum()) / (h * w)
    if not foreign_values:
        return i, 1.0, None
    partner = foreign_values[0] - 1
    ys, xs = torch.nonzero(~own, as_tuple=True)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    assert count_box_pixels(box, h, w) == int((~own).sum()), "foreign pixels do not form a rectangle"
    return partner, share, box


def ks_statistic(a: Tensor, b: Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b|."""
    a = torch.sort(a.double().flatten()).values
    b = torch.sort(b.double().flatten()).values
    grid = torch.cat([a, b])
    fa = torch.searchsorted(a, grid, right=True).double() / len(a)
    fb = torch.searchsorted(b, grid, right=True).double() / len(b)
    return float((fa - fb).abs().max())


def tiny_config(tmp_path: Path, **overrides):
    """A training config that runs in seconds on CPU: ResNet-8 on 192 shapes images, 2 epochs, runs under tmp_path.

    ``overrides`` are ``--set`` style keys (``**{"mix.method": "none"}``).
    """
    from cutmix.run import config as cfg

    config = cfg.TrainConfig()
    config.data.train_samples, config.data.val_samples = 192, 96
    config.model.name = "resnet8"
    config.epochs, config.batch_size, config.eval_batch_size = 2, 32, 64
    config.out, config.progress, config.device, config.threads = str(tmp_path), False, "cpu", 1
    config.optim.lr = 0.05
    for key, value in overrides.items():
        cfg.apply_override(config, f"{key}={value!r}" if isinstance(value, str) else f"{key}={json.dumps(value)}")
    return cfg.validate(config)


def free_port() -> int:
    """A TCP port free right now on localhost, for a torchrun rendezvous."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RaisesOnCall(torch.nn.Module):
    """What a failed torch.compile looks like: the wrapper builds, the first call raises."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        raise RuntimeError("backend compiler failed\nsecond line of a long inductor error")


def _has_compiler() -> bool:
    from cutmix import _native

    try:
        _native.compiler()
    except RuntimeError:
        return False
    return True


needs_cc = pytest.mark.skipif(not _has_compiler(), reason="no C compiler to build the native kernel with")
