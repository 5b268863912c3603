"""The machine helpers every room shares (cutmix.runtime): atomic writes, progress bars, the compile fallback."""

from __future__ import annotations

import io
import stat
import sys

import pytest
import torch

from cutmix.runtime import TMP_SUFFIX, first_compiled_call, progress, write_atomic


@pytest.mark.parametrize("content", [b"\x00\x01bytes", "text, é\n"])
def test_write_atomic_round_trips_bytes_and_text(tmp_path, content):
    path = write_atomic(tmp_path / "sub" / "f.bin", content)  # the directory is made
    expected = content.encode() if isinstance(content, str) else content
    assert path == tmp_path / "sub" / "f.bin" and path.read_bytes() == expected
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]  # no temporary file left


def test_write_atomic_passes_the_open_file_to_a_writer(tmp_path):
    state = {"w": torch.arange(5)}
    path = write_atomic(tmp_path / "s.pt", lambda f: torch.save(state, f))
    assert torch.equal(torch.load(path, weights_only=True)["w"], state["w"])


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write_atomic(tmp_path / "m.json", "old")

    def half_then_fail(f):
        f.write(b"half a fi")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, half_then_fail)
    assert path.read_text() == "old"
    assert not list(tmp_path.glob(f".*{TMP_SUFFIX}"))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_only_when_enabled_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file: plain lines, no bar
    assert progress(10, "epoch 1") is None
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert progress(10, "epoch 1", enabled=False) is None
    bar = progress(10, "epoch 1", initial=4, unit="img")
    bar.update(1)
    assert (bar.n, bar.total, bar.unit) == (5, 10, "img")
    bar.close()
    assert "epoch 1" in sys.stderr.getvalue()


def test_progress_without_tqdm_is_none(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails as if tqdm were not installed
    assert progress(10, "eval") is None


def test_first_compiled_call_falls_back_in_one_line():
    said: list[str] = []
    assert first_compiled_call(lambda: "compiled", lambda: "eager", said.append, "", "eagerly") == ("compiled", True)
    assert said == []

    def broken() -> str:
        raise RuntimeError("backend compiler failed\nwith a long traceback below")

    assert first_compiled_call(broken, lambda: "eager", said.append, "at the first step ", "training eagerly") == (
        "eager", False)
    assert said == ["torch.compile failed at the first step (RuntimeError: backend compiler failed); training eagerly"]
