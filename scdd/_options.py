"""Building configuration dataclasses from user-supplied options (CLI strings or Python values)."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scdd.errors import ConfigError


def check_teacher_files(paths: Iterable[str | Path], setting: str) -> None:
    """Fail before any work when ``setting`` names a classifier artifact that is not there."""
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"{setting} {path}: no such file (give a classifier artifact)")


def parse_option_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are JSON when they parse as JSON, else strings."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option {pair!r} is not of the form key=value")
        try:
            options[key.strip().replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip().replace("-", "_")] = raw
    return options


def dotted_to_nested(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"recover.iterations": 5}`` → ``{"recover": {"iterations": 5}}``."""
    nested: dict[str, Any] = {}
    for dotted, value in pairs.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _item_type(cls: type, field_name: str) -> type:
    """The item type a tuple field declares (``tuple[str, ...]`` → ``str``); ``float`` when it declares none."""
    try:
        hint = typing.get_type_hints(cls).get(field_name)
    except (NameError, TypeError):  # an annotation that does not resolve at run time
        return float
    args = [arg for arg in typing.get_args(hint) if arg is not Ellipsis]
    return args[0] if args and isinstance(args[0], type) else float


def _coerce(value: Any, default: Any, field_name: str, owner: str, item_type: type = float) -> Any:
    """Coerce ``value`` to the type of ``default`` where that is unambiguous (``item_type``: an empty tuple default's
    item type); a tuple is given as a list or a comma-separated string, the empty string being the empty tuple."""
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in {"1", "true", "yes", "on"}:
                    return True
                if value.lower() in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int) and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            items = (value.split(",") if value else []) if isinstance(value, str) else list(value)
            kind = type(default[0]) if default else item_type
            return tuple(kind(item) for item in items)
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: option {field_name!r} expects a {type(default).__name__}, got {value!r}") from None
    return value


def build_dataclass(cls: type, options: Mapping[str, Any], *, owner: str) -> Any:
    """Instantiate ``cls`` from ``options``; unknown keys are an error that lists the valid ones."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"{owner} has no option {unknown[0]!r}; its options are: {', '.join(sorted(fields))}")
    defaults = cls()
    values = {}
    for key, value in options.items():
        default = getattr(defaults, key)
        item_type = _item_type(cls, key) if isinstance(default, tuple) and not default else float
        values[key] = _coerce(value, default, key, owner, item_type)
    try:
        instance = cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{owner}: {error}") from None
    return instance


MEMORY_FORMATS = ("auto", "channels-last", "contiguous")


def check_memory_format(choice: str) -> str:
    """``choice`` if it names a layout models can run in (``scdd.runtime.memory_format``), else ``ConfigError``."""
    if choice not in MEMORY_FORMATS:
        raise ConfigError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, got {choice!r}")
    return choice
