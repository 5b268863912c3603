"""A training setting declared once: a dataclass field whose metadata carries its help, choices, range and flag.

Everything else is derived from that declaration, so a setting cannot drift between places: the command-line
flags and their ``--help`` (with the default), type checks of values from presets, ``config.json`` and ``--set``
(parsed by the field's type, not guessed), the validation of choices and ranges, and whether ``--resume`` may
change it.

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo:
...     lr: float = setting(0.1, help="learning rate", flag="--lr", above=0)
>>> [s.path for s in settings_of(Demo)]
['lr']
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterator
from dataclasses import MISSING, dataclass
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

KINDS = ("bool", "int", "float", "str", "list[str]", "list[float]", "dict")
NONE_WORDS = ("none", "null")


class SettingError(ValueError):
    """A value a setting cannot take; the message names the setting and what it expects."""


@dataclass(frozen=True)
class Spec:
    """What a field declares besides its type and default (see :func:`setting`)."""

    help: str
    flag: str | None = None
    choices: tuple[str, ...] | None = None
    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None
    resume: bool = False
    shown: str | None = None
    metavar: str | None = None


def about(*, help: str, flag: str | None = None, choices: tuple[str, ...] | None = None,
          at_least: float | None = None, above: float | None = None, at_most: float | None = None,
          below: float | None = None, resume: bool = False, shown: str | None = None,
          metavar: str | None = None) -> dict[str, Spec]:
    """A field's ``metadata`` declaring it a training setting (for fields with a ``default_factory``).

    ``flag`` is its command-line flag (None: reachable with ``--set`` only); ``choices`` the allowed strings (take
    them from the library's own constants); ``at_least``/``above``/``at_most``/``below`` its range; ``resume`` whether
    ``--resume`` may change it; ``shown`` how ``--help`` describes a None default (e.g. "auto: 128 on a CPU").
    """
    spec = Spec(help, flag, tuple(choices) if choices is not None else None, at_least, above, at_most, below, resume,
                shown, metavar)
    return {"setting": spec}


def setting(default: Any, **spec: Any) -> Any:
    """A dataclass field with an immutable ``default`` that is a training setting (keywords as :func:`about`)."""
    return dataclasses.field(default=default, metadata=about(**spec))


@dataclass(frozen=True)
class Setting:
    """One declared setting: where it lives (``path`` like ``optim.lr``), its kind, and its :class:`Spec`."""

    path: str
    section: str | None
    name: str
    kind: str
    optional: bool
    spec: Spec
    default: Any

    @property
    def flag_text(self) -> str:
        """How messages name it: ``optim.lr (--lr)``, or the path alone when it has no flag."""
        return f"{self.path} ({self.spec.flag})" if self.spec.flag else self.path


def _kind(hint: Any, where: str) -> tuple[str, bool]:
    """``int | None`` -> ("int", True), ``list[str]`` -> ("list[str]", False), ..."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise TypeError(f"{where}: only 'T | None' unions are supported, got {hint}")
        return _kind(rest[0], where)[0], True
    origin = typing.get_origin(hint)
    if origin is list and args in ((str,), (float,)):
        return f"list[{args[0].__name__}]", False
    if origin is dict or hint is dict:
        return "dict", False
    if hint in (bool, int, float, str):
        return hint.__name__, False
    raise TypeError(f"{where}: unsupported setting type {hint}")


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def settings_of(cls: type, prefix: str = "") -> list[Setting]:
    """Every setting of the dataclass ``cls``, walking into fields that are dataclasses (sections), in order."""
    hints = typing.get_type_hints(cls)
    found: list[Setting] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            found.extend(settings_of(hint, f"{prefix}{f.name}."))
            continue
        spec = f.metadata.get("setting")
        if spec is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting(...)")
        kind, optional = _kind(hint, f"{cls.__name__}.{f.name}")
        section = prefix[:-1] or None
        found.append(Setting(prefix + f.name, section, f.name, kind, optional, spec, _default(f)))
    return found


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def coerce(s: Setting, value: Any, where: str | None = None) -> Any:
    """``value`` (from a preset, config.json or Python) as the setting's type; SettingError if it is not one."""
    where = where or s.path
    if value is None:
        if s.optional:
            return None
        raise SettingError(f"{where} must be set (it has no 'unset' value), got None")
    if s.kind == "bool":
        if isinstance(value, bool):
            return value
        raise SettingError(f"{where} must be true or false, got {value!r}")
    if s.kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise SettingError(f"{where} must be an integer, got {value!r}")
    if s.kind == "float":
        if _number(value):
            return float(value)
        raise SettingError(f"{where} must be a number, got {value!r}")
    if s.kind == "str":
        if isinstance(value, str):
            return value
        raise SettingError(f"{where} must be a string, got {value!r}")
    if s.kind == "dict":
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return dict(value)
        raise SettingError(f"{where} must be a table of name = value, got {value!r}")
    item = str if s.kind == "list[str]" else float
    if isinstance(value, (list, tuple)):
        if item is str and all(isinstance(v, str) for v in value):
            return list(value)
        if item is float and all(_number(v) for v in value):
            return [float(v) for v in value]
    what = "strings" if item is str else "numbers"
    raise SettingError(f"{where} must be a list of {what}, got {value!r}")


def _unquote(text: str) -> tuple[str, bool]:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1], True
    return text, False


def parse(s: Setting, text: str, where: str | None = None) -> Any:
    """Command-line text (a flag's argument or the value of ``--set key=value``) as the setting's type."""
    where = where or s.path
    raw = text.strip()
    body, quoted = _unquote(raw)
    if s.optional and not quoted and raw.lower() in NONE_WORDS:
        return None
    if s.kind == "str":
        return body
    if s.kind == "bool":
        words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False,
                 "0": False}
        if body.lower() in words:
            return words[body.lower()]
        raise SettingError(f"{where} must be true or false, got {text!r}")
    if s.kind in ("int", "float"):
        try:
            number = int(body) if s.kind == "int" else float(body)
        except ValueError:
            what = "an integer" if s.kind == "int" else "a number"
            raise SettingError(f"{where} must be {what}, got {text!r}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise SettingError(f"{where} must be a finite number, got {text!r}")
        return number
    if s.kind == "dict":
        try:
            return coerce(s, tomllib.loads(f"v = {raw}")["v"], where)
        except tomllib.TOMLDecodeError:
            raise SettingError(f"{where} must be a TOML table such as {{depth = 110, alpha = 48}}, got {text!r}") \
                from None
    if raw.startswith("["):
        try:
            return coerce(s, tomllib.loads(f"v = {raw}")["v"], where)
        except tomllib.TOMLDecodeError:
            raise SettingError(f"{where} must be a list such as [0.5, 0.75] or a comma list, got {text!r}") from None
    parts = [p.strip() for p in raw.split(",")]
    if s.kind == "list[str]":
        return [_unquote(p)[0] for p in parts]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise SettingError(f"{where} must be numbers separated by commas, got {text!r}") from None


def literal(text: str) -> Any:
    """A value of no declared type (``model.kwargs.NAME``): a TOML literal (48, 0.5, true, [1, 2]) or else the text."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return _unquote(text.strip())[0]


def _bound(value: float) -> str:
    return f"{value:g}"


def check(s: Setting, value: Any, where: str | None = None) -> None:
    """Choices and range of an already typed value (None passes for optional settings)."""
    where = where or s.path
    spec = s.spec
    if value is None:
        return
    if spec.choices is not None and value not in spec.choices:
        raise SettingError(f"{where} must be one of {', '.join(spec.choices)}; got {value!r}")
    if not _number(value):
        return
    lo = spec.at_least if spec.at_least is not None else spec.above
    hi = spec.at_most if spec.at_most is not None else spec.below
    low_ok = lo is None or (value >= lo if spec.above is None else value > lo)
    high_ok = hi is None or (value <= hi if spec.below is None else value < hi)
    if low_ok and high_ok:
        return
    unset = " or unset" if s.optional else ""
    if lo is not None and hi is not None:
        left, right = "[" if spec.above is None else "(", "]" if spec.below is None else ")"
        raise SettingError(f"{where} must be in {left}{_bound(lo)}, {_bound(hi)}{right}{unset}, got {value!r}")
    sign = (">=" if spec.above is None else ">") if lo is not None else ("<=" if spec.below is None else "<")
    what = "an integer " if s.kind == "int" else ""
    raise SettingError(f"{where} must be {what}{sign} {_bound(lo if lo is not None else hi)}{unset}, got {value!r}")


def default_text(s: Setting) -> str:
    """The default as ``--help`` shows it."""
    if s.spec.shown is not None:
        return s.spec.shown
    value = s.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) if value else "none"
    return str(value)


def help_text(s: Setting) -> str:
    return f"{s.spec.help} (default: {default_text(s)})".replace("%", "%%")


def walk(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested ``{"optim": {"lr": 0.1}}`` as dotted ``("optim.lr", 0.1)`` pairs (``model.kwargs`` stays whole)."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path != "model.kwargs":
            yield from walk(value, f"{path}.")
        else:
            yield path, value
