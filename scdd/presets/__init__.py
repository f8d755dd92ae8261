"""Presets: named sets of configuration values, kept as data with their sources.

A dataset with a preset of its own name (or named by the preset's ``dataset`` value) gets it by
default. Option dicts of components (``pretrainer_options`` and the like) are filtered to the
options the chosen component accepts, so one preset budget serves every pretrainer. The paper's
presets (``scdd.presets.paper``) carry the table each value comes from; the embedded default's
(``scdd.presets.mnist5k``), the small-image benchmark's (``scdd.presets.small``) and its recipe with
the recovery components that helped (``scdd.presets.plus``) are scdd's own;
``NAME-official`` follows the official code where it and the paper disagree (``scdd.presets.official``).
Nothing here changes after import.
"""

from __future__ import annotations

from typing import Any

from scdd.errors import ConfigError
from scdd.presets.mnist5k import MNIST5K
from scdd.presets.official import OFFICIAL_PRESETS
from scdd.presets.paper import PAPER_PRESETS
from scdd.presets.plus import SCDD_PLUS
from scdd.presets.small import SMALL
from scdd.presets.sources import BUILT_IN, BY_PRETRAINER, USER_FILE, Sourced
from scdd.registry import normalize_name

BUILT_IN_MARK = "built into scdd"  # the note of a value scdd always follows (no setting)
USER_FILE_MARK = "your file"  # the note of a file the user gives through a setting
SCDD_SOURCE = "scdd (CPU-sized budget, not from the paper)"  # the source of every value not marked Sourced
SOURCED_PRESETS: dict[str, dict[str, Any]] = {
    "mnist5k": MNIST5K,
    "small": SMALL,
    "scdd-plus": SCDD_PLUS,
    **PAPER_PRESETS,
    **OFFICIAL_PRESETS,
}


def _plain(values: Any) -> Any:
    """Nested preset data without sources (and without the built-in, user-file and per-pretrainer parts)."""
    if isinstance(values, Sourced):
        return values.value
    if isinstance(values, dict):
        return {key: _plain(value) for key, value in values.items() if key not in (BUILT_IN, USER_FILE, BY_PRETRAINER)}
    return values


PRESETS: dict[str, dict[str, Any]] = {name: _plain(values) for name, values in SOURCED_PRESETS.items()}


def _check(name: str) -> str:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    return name


def get_preset(name: str) -> dict[str, Any]:
    return PRESETS[_check(name)]


def preset_for_dataset(dataset: str) -> str | None:
    """The preset a dataset gets by default: one of its own name, or one whose ``dataset`` it is."""
    key = normalize_name(dataset)
    for name, values in PRESETS.items():
        if normalize_name(name) == key or normalize_name(str(values.get("dataset", ""))) == key:
            return name
    return None


def pretrainer_values(name: str, pretrainer: str) -> dict[str, Any]:
    """A preset's values that hold only with this squeeze objective (Table 13), plain."""
    table = SOURCED_PRESETS.get(_check(name), {}).get(BY_PRETRAINER, {})
    for key, values in table.items():
        if normalize_name(key) == normalize_name(pretrainer):
            return _plain(values)
    return {}


def preset_rows(name: str) -> list[tuple[str, Any, str, str]]:
    """``(setting, value, source, note)`` for every value of a preset, for ``scdd presets show``.

    Values scdd always follows are marked "built into scdd", files the user gives "your file: --set SETTING=PATH";
    per-pretrainer values are listed as ``[pretrainer] setting``."""
    data = SOURCED_PRESETS[_check(name)]
    rows: list[tuple[str, Any, str, str]] = []

    def walk(values: Any, prefix: str, tag: str = "") -> None:
        for key, value in values.items():
            if key in (BUILT_IN, USER_FILE):
                for setting, item in value.items():
                    mark = BUILT_IN_MARK if key == BUILT_IN else f"{USER_FILE_MARK}: --set {setting}=PATH"
                    rows.append((tag + setting, item.value, item.source, mark + (f"; {item.note}" if item.note else "")))
            elif key == BY_PRETRAINER:
                for pretrainer, nested in value.items():
                    walk(nested, "", f"[{pretrainer}] ")
            elif isinstance(value, dict):
                walk(value, f"{prefix}{key}.", tag)
            elif isinstance(value, Sourced):
                rows.append((tag + prefix + key, value.value, value.source, value.note))
            else:
                rows.append((tag + prefix + key, value, SCDD_SOURCE, ""))

    walk(data, "")
    return rows
