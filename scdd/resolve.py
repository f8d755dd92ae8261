"""A run's settings from every source, in order of precedence (last wins):

1. the paper's defaults;
2. the named preset (``--preset``, the one a recipe names, or the dataset's own), or else the settings
   sized to the data and the device (``scdd.sizing``);
3. a recipe file (``--config``);
4. the command line (options and ``--set``).

A run's ``manifest.json`` given as the recipe is a complete, resolved config: it is applied on the
paper's defaults alone (no preset, no sizing), so the run is repeated as it was. Sizing reads the
dataset's shape and measures the run's time plan, so the dataset is then loaded here, once, and handed
on to the run with the plan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scdd.config import RunConfig, check_components, make_run_config
from scdd.data.base import DatasetSplits
from scdd.data.loading import load_dataset
from scdd.presets import preset_for_dataset
from scdd.recipes import is_manifest, recipe_config, recipe_settings
from scdd.run_folder import MANIFEST_FILE
from scdd.runtime import resolve_device
from scdd.sizing import sized_config
from scdd.unit_clock import TimePlan


@dataclass
class ResolvedRun:
    """The resolved config; the dataset when sizing loaded it (the run reuses it); manifest entries (``sizing``,
    ``plan``); the time plan sizing measured."""

    config: RunConfig
    data: DatasetSplits | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    plan: TimePlan | None = None


def resolve_run(
    overrides: Mapping[str, Any], preset: str | None = None, *, recipe: str | Path | None = None, out: str | Path | None = None
) -> ResolvedRun:
    """The settings of ``scdd run``: ``overrides`` from the command line over the ``recipe`` file over the
    preset or the sized settings (module docstring). ``out``: the run folder; a sized run it holds keeps its
    budgets (the same command continues it)."""
    if recipe is not None and is_manifest(recipe):
        return ResolvedRun(recipe_config(recipe, preset, overrides))
    given, preset = recipe_settings(recipe, preset, overrides) if recipe is not None else (dict(overrides), preset)
    config = make_run_config(given, preset)
    if preset is not None or preset_for_dataset(config.dataset) is not None:
        return ResolvedRun(config)
    check_components(config)  # an unknown name fails before any loading
    data = load_dataset(config)
    config, sizing, plan = sized_config(given, data, resolve_device(config.device), earlier=_recorded_sizing(out))
    check_components(config)
    return ResolvedRun(config, data, {"sizing": sizing, **({"plan": plan.to_json()} if plan else {})}, plan)


def _recorded_sizing(out: str | Path | None) -> dict[str, Any] | None:
    """The ``sizing`` entry of the manifest in ``out``, if there is a readable one."""
    try:
        return json.loads((Path(out) / MANIFEST_FILE).read_text()).get("sizing") if out is not None else None
    except (OSError, ValueError, AttributeError):
        return None
