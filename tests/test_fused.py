"""The fused per-sample paste (``fused=True``): bit-identical to the eager op, its fallback, and its argument checks.

A CPU runs the hand-written kernel of :mod:`cutmix._native`; other devices the compiled select of
:mod:`cutmix._fused`, which the ``backend`` fixture also runs on the CPU (the only device CI has), so that both are
held to the eager op. Compiling is slow (seconds per graph), so the cases share the module-level compiled functions
of :mod:`cutmix._fused`: one graph per (word dtype, layout), reused across batch and image sizes (``dynamic=True``).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import cutmix
import cutmix.functional as F
from cutmix import _fused, _native
from cutmix._ops import box_masks
from cutmix.boxes import sample_boxes

# odd, non-square, square, wide: rows and planes of float words (4- and 8-byte dtypes) and integer words
SIZES = ((6, 3, 13, 19), (5, 3, 8, 31), (4, 3, 32, 32), (3, 3, 7, 136))
DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def _boxes(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Random boxes, with an empty box first and the whole image last (the edge cases of the mask)."""
    boxes = sample_boxes(n, h, w, generator=torch.Generator().manual_seed(seed))
    boxes[0] = 0
    boxes[-1] = torch.tensor([0, 0, w, h])
    return boxes


def _tagged(shape, dtype, fmt) -> torch.Tensor:
    n = shape[0]
    x = (torch.arange(n, dtype=torch.float64) + 1).view(n, 1, 1, 1).expand(shape).to(dtype)
    return x.contiguous(memory_format=fmt)


def _random(shape, dtype, fmt, seed: int) -> torch.Tensor:
    """Random bit patterns (NaNs and infinities included for floats), so that only a bit-exact select matches."""
    g = torch.Generator().manual_seed(seed)
    words = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[torch.empty(0, dtype=dtype).element_size()]
    info = torch.iinfo(words)
    bits = torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(words)
    return bits.view(dtype).contiguous(memory_format=fmt)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    words = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return a.dtype == b.dtype and torch.equal(a.view(words), b.view(words))


def _compiled_on_cpu(images, boxes, index, eager):
    rows, cols = box_masks(boxes, images.shape[2], images.shape[3], images.device)
    return _fused.paste(images, rows, cols, index, eager)


@pytest.fixture
def inductor(monkeypatch):
    """``fused=True`` through the compiled select on the CPU too: the path a GPU takes."""
    monkeypatch.setattr(_native, "paste", _compiled_on_cpu)


@pytest.fixture(params=["native", "inductor"])
def backend(request, monkeypatch):
    """Each fused path in turn; the native kernel must really run (a silent fall-back to the eager op fails)."""
    if request.param == "inductor":
        monkeypatch.setattr(_native, "paste", _compiled_on_cpu)
    else:
        try:
            _native.compiler()
        except RuntimeError as err:
            pytest.skip(str(err))
        monkeypatch.setattr(_native, "_fall_back", lambda err: pytest.fail(f"the kernel did not build: {err}"))
    return request.param


def _spy_on_kernels(monkeypatch) -> list[tuple[torch.dtype, tuple[int, ...]]]:
    """Record the word dtype and shape each compiled select receives."""
    seen, real = [], _fused._compiled_for

    def spy(device, words):
        fn = real(device, words)
        return lambda x, *rest: seen.append((x.dtype, tuple(x.shape))) or fn(x, *rest)

    monkeypatch.setattr(_fused, "_compiled_for", spy)
    return seen


def test_short_rows_select_planes_and_long_rows_select_rows(monkeypatch, inductor):
    """Rows under 16 words (32 uint8 pixels: 4 int64 words) run as one row per plane, longer ones as rows."""
    seen = _spy_on_kernels(monkeypatch)
    for dtype in (torch.uint8, torch.float32):
        x = _random((4, 3, 32, 32), dtype, torch.contiguous_format, seed=21)
        boxes, index = _boxes(4, 32, 32, seed=21), torch.randperm(4)
        assert _same_bits(F.paste(x, boxes, index, fused=True), F.paste(x, boxes, index))
    assert seen == [(torch.int64, (4, 3, 1, 128)), (torch.float32, (4, 3, 32, 32))]


def test_words_follow_the_row_bytes(monkeypatch, inductor):
    """Float words of the element's size for 4- and 8-byte dtypes; for narrower ones the widest integer that tiles
    the row (uint8 rows of 20, 24 and 19 pixels: int32, int64, uint8; 17 float16s: int16)."""
    seen = _spy_on_kernels(monkeypatch)
    for dtype, w in ((torch.float64, 19), (torch.float32, 19), (torch.uint8, 20), (torch.uint8, 24),
                     (torch.uint8, 19), (torch.float16, 17)):
        x = _random((4, 3, 5, w), dtype, torch.contiguous_format, seed=w)
        boxes, index = _boxes(4, 5, w, seed=w), torch.randperm(4)
        assert _same_bits(F.paste(x, boxes, index, fused=True), F.paste(x, boxes, index))
    assert [words for words, _ in seen] == [torch.float64, torch.float32, torch.int32, torch.int64,
                                            torch.uint8, torch.int16]


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_fused_paste_is_the_eager_paste_bit_for_bit(dtype, fmt, backend):
    for k, shape in enumerate(SIZES):
        n, _, h, w = shape
        boxes = _boxes(n, h, w, seed=k)
        index = torch.randperm(n, generator=torch.Generator().manual_seed(k))

        x = _tagged(shape, dtype, FORMATS[fmt])
        out = F.paste(x, boxes, index, fused=True)
        assert out.dtype == dtype and out.stride() == x.stride() and out.shape == x.shape
        rows, cols = torch.arange(h), torch.arange(w)
        for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            inside = ((rows >= y0) & (rows < y1))[:, None] & ((cols >= x0) & (cols < x1))[None, :]
            want = torch.where(inside, float(index[i] + 1), float(i + 1)).expand(3, h, w)
            assert torch.equal(out[i].double(), want), f"sample {i} of {shape}"
        assert torch.equal(x, _tagged(shape, dtype, FORMATS[fmt])), "the input is left as it was"

        x = _random(shape, dtype, FORMATS[fmt], seed=k)
        fused = F.paste(x, boxes, index, fused=True)
        assert _same_bits(fused, F.paste(x, boxes, index)) and fused.stride() == x.stride()


def test_fused_paste_takes_any_partner_indices(backend):
    x = _random((5, 3, 8, 31), torch.float32, torch.contiguous_format, seed=3)
    boxes = _boxes(5, 8, 31, seed=3)
    index = torch.tensor([4, 4, 0, 2, 2])  # not a permutation: one image is the partner of two
    assert _same_bits(F.paste(x, boxes, index, fused=True), F.paste(x, boxes, index))


def test_unusual_layouts_run_the_eager_op():
    x = _random((6, 3, 13, 40), torch.float32, torch.contiguous_format, seed=4)[..., ::2]  # strided columns
    boxes, index = _boxes(6, 13, 20, seed=4), torch.randperm(6)
    assert not _fused.supports(x)
    assert _same_bits(F.paste(x, boxes, index, fused=True), F.paste(x, boxes, index))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_fused_gradients_are_the_eager_gradients(fmt):
    shape = (6, 3, 13, 19)
    boxes, index = _boxes(6, 13, 19, seed=5), torch.randperm(6, generator=torch.Generator().manual_seed(5))
    weight = torch.randn(shape, generator=torch.Generator().manual_seed(6))
    grads = []
    for fused in (False, True):
        x = _random(shape, torch.float32, FORMATS[fmt], seed=7).nan_to_num_(0.0, 0.0, 0.0).requires_grad_()
        out = F.paste(x, boxes, index, fused=fused)
        assert out.requires_grad and out.stride() == x.stride()
        (out * weight).sum().backward()
        grads.append(x.grad)
    assert torch.equal(grads[0], grads[1])
    assert torch.count_nonzero(grads[1]) > 0


def test_fused_transform_and_functional_match_the_default(backend):
    x = _random((8, 3, 17, 23), torch.uint8, torch.channels_last, seed=8)
    y = torch.arange(8) % 4
    runs = []
    for fused in (False, True):
        mix = cutmix.CutMix(4, per_sample=True, fused=fused, generator=torch.Generator().manual_seed(9))
        runs.append(mix(x, y))
    assert _same_bits(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[1][0].stride() == x.stride()
    assert "fused=True" in repr(cutmix.CutMix(4, per_sample=True, fused=True))

    boxes, index = _boxes(8, 17, 23, seed=10), torch.randperm(8)
    a = F.cutmix(x, y, boxes=boxes, index=index, num_classes=4)
    b = F.cutmix(x, y, boxes=boxes, index=index, num_classes=4, fused=True)
    assert _same_bits(a[0], b[0]) and torch.equal(a[1], b[1])


def test_fused_transform_moves_masks_with_the_same_pixels(backend):
    x = _random((8, 3, 17, 23), torch.uint8, torch.channels_last, seed=11)
    y, masks = torch.arange(8) % 4, torch.randint(0, 5, (8, 17, 23))
    runs = [cutmix.CutMix(4, per_sample=True, fused=fused, generator=torch.Generator().manual_seed(12))(x, y, masks)
            for fused in (False, True)]
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))


@pytest.fixture
def fresh_fused(monkeypatch):
    """A clean compile cache and failure flag, so that a test can watch the first compile (and its failure)."""
    monkeypatch.setattr(_fused, "_compiled", {})
    monkeypatch.setattr(_fused, "_failed", False)


def test_compile_failure_warns_once_and_runs_the_eager_op(monkeypatch, fresh_fused, inductor):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler\nsecond line")

    monkeypatch.setattr(torch, "compile", no_compiler)
    x = _random((6, 3, 13, 19), torch.float32, torch.channels_last, seed=13)
    boxes, index = _boxes(6, 13, 19, seed=13), torch.randperm(6)
    failed = r"torch.compile failed \(RuntimeError: no C\+\+ compiler\); per-sample"
    with pytest.warns(RuntimeWarning, match=failed) as seen:
        out = F.paste(x, boxes, index, fused=True)
    assert seen[0].filename == __file__, "the warning names the caller's line, not the library's"
    assert _same_bits(out, F.paste(x, boxes, index)) and out.stride() == x.stride()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise here
        again = F.paste(x, boxes, index, fused=True)
    assert _same_bits(again, out)


def test_failure_at_the_first_compiled_call_falls_back(monkeypatch, fresh_fused, inductor):
    def broken(*args):
        raise RuntimeError("inductor: C++ compile error")

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: broken)
    x = _random((6, 3, 13, 19), torch.uint8, torch.contiguous_format, seed=14)
    boxes, index = _boxes(6, 13, 19, seed=14), torch.randperm(6)
    with pytest.warns(RuntimeWarning, match="inductor: C"):
        out = F.paste(x, boxes, index, fused=True)
    assert _same_bits(out, F.paste(x, boxes, index))


def test_the_fallback_warning_from_a_module_names_the_callers_line(monkeypatch, fresh_fused, inductor):
    """Through ``nn.Module.__call__`` the first frame outside cutmix is torch's, not the user's."""
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: (_ for _ in ()).throw(RuntimeError("no compiler")))
    mix = cutmix.CutMix(alpha=1.0, per_sample=True, fused=True, num_classes=10,
                        generator=torch.Generator().manual_seed(0))
    with pytest.warns(RuntimeWarning, match="no compiler") as seen:
        mix(torch.rand(8, 3, 32, 32), torch.arange(8))
    assert seen[0].filename == __file__


def test_bad_fused_arguments_are_refused():
    x = torch.zeros(4, 3, 8, 8)
    boxes, index = torch.zeros(4, 4, dtype=torch.int64), torch.arange(4)
    with pytest.raises(TypeError, match="fused must be True or False"):
        F.paste(x, boxes, index, fused=1)
    with pytest.raises(ValueError, match="fused=True cannot be combined with inplace=True"):
        F.paste(x, boxes, index, inplace=True, fused=True)
    with pytest.raises(ValueError, match=r"fused=True needs boxes of shape \[N, 4\]"):
        F.paste(x, torch.tensor([0, 0, 4, 4]), index, fused=True)
    with pytest.raises(ValueError, match="fused=True cannot be combined with inplace=True"):
        F.cutmix(x, torch.arange(4), boxes=boxes, index=index, num_classes=4, inplace=True, fused=True)
    with pytest.raises(ValueError, match="fused=True needs per_sample=True"):
        cutmix.CutMix(4, fused=True)
    with pytest.raises(ValueError, match="inplace=True"):
        cutmix.CutMix(4, per_sample=True, inplace=True, fused=True)
    with pytest.raises(TypeError, match="fused must be True or False"):
        cutmix.CutMix(4, per_sample=True, fused="yes")


def test_the_default_path_never_imports_the_fused_module():
    code = ("import sys, torch, cutmix\n"
            "cutmix.CutMix(4, per_sample=True)(torch.zeros(4, 3, 8, 8), torch.arange(4))\n"
            "assert not {'cutmix._fused', 'cutmix._native', 'torch._dynamo'} & set(sys.modules), "
            "sorted(sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_batch_that_starts_inside_its_storage_is_pasted_exactly(backend):
    base = _random((7, 3, 8, 30), torch.uint8, torch.contiguous_format, seed=15)
    x = base.view(-1)[2:2 + 6 * 3 * 8 * 30 // 2].view(6, 3, 8, 15)  # offset 2 bytes: 15-byte rows, misaligned words
    boxes, index = _boxes(6, 8, 15, seed=15), torch.randperm(6)
    assert x.storage_offset() == 2 and _fused.supports(x)
    assert _same_bits(F.paste(x, boxes, index, fused=True), F.paste(x, boxes, index))
    y = base[1:]  # offset of one image (720 bytes): int64 words when the rows allow them
    boxes, index = _boxes(6, 8, 30, seed=16), torch.randperm(6)
    assert _same_bits(F.paste(y, boxes, index, fused=True), F.paste(y, boxes, index))


def test_the_word_benchmark_runs_both_word_forms_and_checks_them():
    """benchmarks/fused_words.py asserts that both word forms give the eager op's bits before it times them."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "fused_words.py"
    done = subprocess.run([sys.executable, str(script), "--shapes", "3,3,6,20", "--threads", "1",
                           "--min-time", "0.01"], capture_output=True, text=True, check=True)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 3x3x6x20 | float32 | 1 |")]
    assert len(rows) == 1 and rows[0].count("×") == 4, done.stdout
