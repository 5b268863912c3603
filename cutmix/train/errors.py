"""The two kinds of failure the toolkit reports in one line (``cutmix.cli`` turns them into exit statuses).

A :class:`UsageError` is the user's to fix (a setting, a path, a run directory in use): status 2. A
:class:`RunFailure` is the machine's (a full disk, a stalled DDP rank): status 1. Both messages name what failed.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A mistake in what was asked for; the message names the setting, flag or path."""


class RunInUseError(UsageError):
    """Another ``cutmix train`` holds the run directory's lock."""


class RunFailure(RuntimeError):
    """Training could not go on for a reason outside the request; the message says what to do next."""
