"""timm ``train.py``'s mixing flags (names, destinations, types, defaults, help), in a module free of torch.

:func:`cutmix.integrations.timm.mixup_from_flags` reads their values; ``cutmix train`` accepts them as aliases and
builds its parser from this table before it imports torch.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TimmFlag:
    """One of timm's ``train.py`` mixing flags: its name, ``argparse`` destination, type, default and help."""

    flag: str
    dest: str
    type: type
    default: Any
    help: str
    nargs: str | None = None


_FLAGS = (
    TimmFlag("--mixup", "mixup", float, 0.0, "mixup alpha, mixup enabled if > 0"),
    TimmFlag("--cutmix", "cutmix", float, 0.0, "cutmix alpha, cutmix enabled if > 0"),
    TimmFlag("--cutmix-minmax", "cutmix_minmax", float, None,
             "cutmix min/max ratio, overrides alpha and enables cutmix if set", nargs="+"),
    TimmFlag("--mixup-prob", "mixup_prob", float, 1.0,
             "probability of performing mixup or cutmix when either/both is enabled"),
    TimmFlag("--mixup-switch-prob", "mixup_switch_prob", float, 0.5,
             "probability of switching to cutmix when both mixup and cutmix enabled"),
    TimmFlag("--mixup-mode", "mixup_mode", str, "batch", 'how to apply mixup/cutmix params: "batch", "pair" or "elem"'),
    TimmFlag("--mixup-off-epoch", "mixup_off_epoch", int, 0, "turn off mixup after this epoch, disabled if 0"),
    TimmFlag("--smoothing", "smoothing", float, 0.1, "label smoothing"),
)


def timm_flags() -> tuple[TimmFlag, ...]:
    """timm ``train.py``'s mixing flags with timm's defaults (the ones :func:`mixup_from_flags` reads)."""
    return _FLAGS


def add_timm_flags(parser: argparse.ArgumentParser | Any) -> None:
    """Add timm's mixing flags to an ``argparse`` parser (or argument group), with timm's defaults."""
    for f in _FLAGS:
        kwargs: dict[str, Any] = {"type": f.type, "default": f.default, "dest": f.dest,
                                  "help": f"{f.help} (timm; default: {f.default})"}
        if f.nargs is not None:
            kwargs["nargs"] = f.nargs
        parser.add_argument(f.flag, **kwargs)
