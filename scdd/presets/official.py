"""The ``NAME-official`` presets: each paper preset with the official code's values wherever code
and paper disagree (``scdd.presets.paper.OFFICIAL``); every other value stays the paper preset's."""

from __future__ import annotations

from typing import Any

from scdd.presets.paper import OFFICIAL, PAPER_PRESETS


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with nested ``changes`` merged in; a ``None`` change removes the entry."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


OFFICIAL_PRESETS: dict[str, dict[str, Any]] = {
    f"{name}-official": merged(PAPER_PRESETS[name], changes) for name, changes in OFFICIAL.items()
}
