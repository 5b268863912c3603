"""The CPU kernel behind ``fused=True`` (:mod:`cutmix._native`): exact on every shape, built once into the cache,
refusing out-of-range input, and warning once before it runs the eager op where it cannot be built."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from _helpers import needs_cc

import cutmix.functional as F
from cutmix import _native
from cutmix.boxes import sample_boxes

WORDS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _random_bits(shape, dtype, fmt, g) -> torch.Tensor:
    words = WORDS[torch.empty(0, dtype=dtype).element_size()]
    info = torch.iinfo(words)
    return torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(words).view(dtype).contiguous(
        memory_format=fmt)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    words = WORDS[a.element_size()]
    return a.dtype == b.dtype and a.stride() == b.stride() and torch.equal(a.view(words), b.view(words))


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache and no library loaded yet, so that a test sees the build (or its failure)."""
    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path))
    monkeypatch.setattr(_native, "_library", None)
    monkeypatch.setattr(_native, "_failed", False)
    return tmp_path


@needs_cc
def test_random_shapes_dtypes_and_layouts_match_the_eager_op():
    """Single pixels, single rows and columns, one channel, empty and whole-image boxes, self-partners."""
    g = torch.Generator().manual_seed(0)
    for case in range(60):
        n, c, h, w = (int(torch.randint(1, hi, (1,), generator=g)) for hi in (7, 5, 12, 40))
        dtype = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)[case % 5]
        fmt = torch.channels_last if case % 2 else torch.contiguous_format
        x = _random_bits((n, c, h, w), dtype, fmt, g)
        boxes = sample_boxes(n, h, w, generator=g)
        boxes[case % n] = torch.tensor([0, 0, w, h]) if case % 3 else torch.tensor([w, h, w, h])
        index = torch.randint(0, n, (n,), generator=g)  # repeats and i == index[i] included
        expected = F.paste(x, boxes, index)
        assert _same_bits(F.paste(x, boxes, index, fused=True), expected), (case, (n, c, h, w), dtype, fmt)


@needs_cc
@pytest.mark.parametrize("shape, dtype, fmt", [
    ((3, 3, 70, 250), torch.uint8, torch.contiguous_format),  # 17.5 KiB planes: the row-by-row branch
    ((3, 3, 40, 110), torch.float32, torch.contiguous_format),
    ((3, 3, 40, 60), torch.float32, torch.channels_last),  # one 28 KiB plane a sample
    ((3, 3, 30, 60), torch.uint8, torch.channels_last),  # 5 KiB: the whole-plane branch
])
def test_both_plane_branches_match_the_eager_op(shape, dtype, fmt):
    n, _, h, w = shape
    g = torch.Generator().manual_seed(5)
    x = _random_bits(shape, dtype, fmt, g)
    for boxes in (sample_boxes(n, h, w, generator=g), torch.tensor([[0, 0, w, h], [w - 1, 0, w, 1], [0, h - 1, 1, h]]),
                  torch.tensor([[0, 5, w, 9], [7, 0, 9, h], [3, 3, 3, 9]])):
        for index in (torch.tensor([1, 2, 0]), torch.tensor([2, 1, 1])):
            assert _same_bits(F.paste(x, boxes, index, fused=True), F.paste(x, boxes, index)), boxes.tolist()


@needs_cc
@pytest.mark.parametrize("stream", [False, True])
def test_cached_and_streamed_stores_match_the_eager_op(stream, monkeypatch):
    """Both ways of writing, forced: odd row lengths (no line alignment), box bands over several 8 KiB chunks, rows
    wider than the chunk (channels_last, 8 400 B), self-partners, empty and whole-image boxes, two threads."""
    monkeypatch.setattr(_native, "_MIN_BYTES_PER_THREAD", 1024)  # these small batches split across two threads
    g = torch.Generator().manual_seed(3)
    shapes = [((5, 3, 37, 61), torch.uint8, torch.contiguous_format), ((4, 3, 60, 300), torch.float32,
              torch.contiguous_format), ((3, 3, 9, 700), torch.float32, torch.channels_last),
              ((4, 2, 50, 45), torch.float16, torch.channels_last), ((6, 1, 33, 129), torch.float64,
              torch.contiguous_format)]
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for shape, dtype, fmt in shapes:
                n, _, h, w = shape
                x = _random_bits(shape, dtype, fmt, g)
                for _ in range(3):
                    boxes = sample_boxes(n, h, w, generator=g)
                    boxes[0], boxes[1] = torch.tensor([0, 0, w, h]), torch.tensor([1, 2, 1, h])
                    index = torch.randint(0, n, (n,), generator=g)
                    out = _native.paste(x, boxes, index, eager=lambda: pytest.fail("no eager run"), stream=stream)
                    assert _same_bits(out, F.paste(x, boxes, index)), (shape, dtype, fmt, boxes.tolist())
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def kernel_calls(monkeypatch):
    """The ``(threads, stream)`` of every kernel call from now on, and a small batch (1 536 bytes) to paste."""
    lib = _native.load()
    seen: list[tuple[int, int]] = []

    class Spy:
        def cutmix_native_streams(self):
            return lib.cutmix_native_streams()

        def cutmix_paste(self, *args):
            seen.append((args[-2], args[-1]))
            return lib.cutmix_paste(*args)

    monkeypatch.setattr(_native, "load", lambda: Spy())
    x = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    boxes, index = torch.tensor([[0, 0, 4, 4]] * 2), torch.tensor([1, 0])
    return seen, lambda **kw: _native.paste(x, boxes, index, eager=lambda: pytest.fail("no eager run"), **kw)


@needs_cc
def test_streamed_stores_are_chosen_from_the_batch_size(monkeypatch, kernel_calls):
    """``stream=None`` streams batches of ``STREAM_BYTES`` or more, where the build has streamed stores."""
    seen, paste = kernel_calls
    for limit in (1 << 20, 1536, 1537):
        monkeypatch.setattr(_native, "STREAM_BYTES", limit)
        paste()
    paste(stream=True)
    streams = _native.load().cutmix_native_streams()
    assert [s for _, s in seen] == [0, streams, 0, 1]


@needs_cc
def test_threads_follow_the_batch_size_and_torchs_thread_count(monkeypatch, kernel_calls):
    """One thread per ``_MIN_BYTES_PER_THREAD`` of batch, at most ``torch.get_num_threads()``, at least one."""
    seen, paste = kernel_calls
    before = torch.get_num_threads()
    try:
        for threads, per_thread in ((2, 1 << 20), (2, 1536), (2, 768), (2, 512), (1, 512), (3, 512), (4, 512)):
            torch.set_num_threads(threads)
            monkeypatch.setattr(_native, "_MIN_BYTES_PER_THREAD", per_thread)
            paste()
    finally:
        torch.set_num_threads(before)
    assert [t for t, _ in seen] == [1, 1, 2, 2, 1, 3, 3]


@needs_cc
def test_two_threads_paste_the_same_bits_as_one(monkeypatch):
    monkeypatch.setattr(_native, "_MIN_BYTES_PER_THREAD", 64 << 10)  # so that this 3.5 MB batch splits
    x = _random_bits((32, 3, 96, 96), torch.float32, torch.contiguous_format, torch.Generator().manual_seed(1))
    boxes, index = sample_boxes(32, 96, 96, generator=torch.Generator().manual_seed(2)), torch.randperm(32)
    before = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outs.append(F.paste(x, boxes, index, fused=True))
    finally:
        torch.set_num_threads(before)
    assert _same_bits(outs[0], outs[1]) and _same_bits(outs[1], F.paste(x, boxes, index))


@needs_cc
def test_the_kernel_refuses_partners_and_boxes_outside_the_batch():
    """The functions above it check their arguments; the kernel checks again, so that no input reads or writes
    outside the two batches."""
    x = torch.zeros(4, 3, 8, 8)
    boxes, index = torch.tensor([[0, 0, 4, 4]] * 4), torch.arange(4)
    for bad_boxes, bad_index, sample in ((boxes, torch.tensor([0, 1, 4, 3]), 2),
                                         (torch.tensor([[0, 0, 4, 4]] * 3 + [[0, 0, 9, 4]]), index, 3),
                                         (torch.tensor([[-1, 0, 4, 4]] + [[0, 0, 4, 4]] * 3), index, 0)):
        with pytest.raises(ValueError, match=f"sample {sample}: partner .* or box .* lies outside the batch of 4 "
                                             "images of 8x8"):
            _native.paste(x, bad_boxes, bad_index, eager=lambda: pytest.fail("no eager run"))


@needs_cc
def test_the_library_is_built_once_into_the_cache(fresh, monkeypatch):
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    boxes, index = torch.tensor([[1, 1, 3, 3], [0, 0, 5, 4]]), torch.tensor([1, 0])
    assert _same_bits(F.paste(x, boxes, index, fused=True), F.paste(x, boxes, index))
    built = _native.library_path(_native.compiler())
    assert built.parent == fresh and built.is_file() and os.stat(built).st_mode & 0o777 == 0o644
    assert [p.name for p in fresh.iterdir()] == [built.name], "no temporary file is left behind"

    monkeypatch.setattr(_native, "_library", None)  # a new process: it loads the cached file, it does not build
    monkeypatch.setattr(_native, "build", lambda *a: pytest.fail("rebuilt a cached library"))
    assert _same_bits(F.paste(x, boxes, index, fused=True), F.paste(x, boxes, index))


def test_the_cache_key_follows_the_sources_the_flags_and_the_compiler(monkeypatch, tmp_path):
    a = _native.library_path("/usr/bin/cc")
    assert a != _native.library_path("/usr/bin/clang")
    for i, source in enumerate(_native.SOURCES):
        edited = tmp_path / source.name
        edited.write_bytes(source.read_bytes() + b"\n/* edited */\n")
        sources = list(_native.SOURCES)
        sources[i] = edited
        with monkeypatch.context() as m:
            m.setattr(_native, "SOURCES", tuple(sources))
            assert _native.library_path("/usr/bin/cc") != a, source.name
    monkeypatch.setattr(_native, "FLAGS", _native.FLAGS[:-1])
    assert _native.library_path("/usr/bin/cc") != a


def test_a_failed_build_warns_once_and_runs_the_eager_op(fresh, monkeypatch):
    monkeypatch.setattr(_native, "compiler", lambda: "/bin/false")
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    boxes, index = sample_boxes(4, 8, 8, generator=torch.Generator().manual_seed(4)), torch.tensor([3, 2, 1, 0])
    with pytest.warns(RuntimeWarning, match=r"the CPU kernel could not be built \(RuntimeError: /bin/false exited "
                                            r"with 1\); per-sample CutMix runs the eager op") as seen:
        out = F.paste(x, boxes, index, fused=True)
    assert seen[0].filename == __file__, "the warning names the caller's line"
    assert _same_bits(out, F.paste(x, boxes, index))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _same_bits(F.paste(x, boxes, index, fused=True), out)
    assert list(fresh.iterdir()) == []


def test_no_compiler_is_named_in_the_error(monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="no C compiler found"):
        _native.compiler()
    monkeypatch.setenv("CC", "/bin/true")
    assert _native.compiler() == "/bin/true"
