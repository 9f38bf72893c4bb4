"""Typed settings read from protocol files: one parser for the protocol's shared part and
for every method's and space's own section.

A settings class is a frozen dataclass of ints, floats, bools, strings, tuples of ints and
nested settings classes, with a ``check(where)`` method that raises through
:func:`require`; fields defaulting to None are optional. Parsing a section checks its
keys and types and then calls ``check``, so a bad value is one line naming the file, the
section and the key, before any work starts.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from nasbench.errors import ConfigError


def parse_settings(cls: type, raw: Any, where: str, section: str = "") -> Any:
    """``raw`` (a table of a protocol file) as an instance of the settings class ``cls``."""
    label = f"[{section}]" if section else "the top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {label} must be a table")
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls)
              if f.name in raw or f.default_factory is dataclasses.MISSING]  # a factory default: filled later
    names = [f.name for f in fields]
    optional = {f.name for f in fields if f.default is None}
    unknown = sorted(set(raw) - set(names))
    missing = [n for n in names if n not in raw and n not in optional]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} in {label} (known: {', '.join(names)})")
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r} in {label}")
    values = {}
    for name in names:
        key = f"{section}.{name}" if section else name
        hint = hints[name]
        if name in optional:
            if raw.get(name) is None:
                values[name] = None
                continue
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        if dataclasses.is_dataclass(hint):
            values[name] = parse_settings(hint, raw[name], where, key)
        else:
            values[name] = _coerce(hint, raw[name], where, key)
    obj = cls(**values)
    obj.check(f"{where}: {label}")
    return obj


def settings_fields(cls: type) -> str:
    """The keys of a settings class, for messages that say what a missing section holds."""
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{where}: {key} must be {expected}, got {value!r}")

    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise wrong("a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise wrong("a list of integers")
        return tuple(value)
    raise TypeError(f"unsupported settings field type {hint!r}")


def require(condition: bool, where: str, message: str) -> None:
    """A settings check: ``message`` as a one-line :class:`ConfigError` where ``condition`` fails."""
    if not condition:
        raise ConfigError(f"{where}: {message}")
