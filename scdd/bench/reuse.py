"""Continuing a bench in its own folder: what an earlier ``scdd bench`` into the same ``--out`` finished
there is reused when its record matches what the plan asks for now; everything else runs.

- A teacher (``teachers/<name>/teacher.json``, ``scdd.bench.teachers``) matches on its key
  (``scdd.bench.plan.teacher_key``: data, settings and seed) when its classifier file is still there.
- A cell (``cells/.../seed<S>/manifest.json``) matches when it records the same resolved settings and
  label teacher's settings (and those of its extra recovery and labelling teachers), IPC, seed, table
  and evaluation split, its stage times, and every
  artifact it names is still there. A setting the record lacks (it was written by an scdd without that
  setting) matches only at the setting's default, which is how that scdd ran.

A reused result carries the times and accuracies recorded when it was measured. ``--overwrite``
reuses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scdd.config import RunConfig, apply_overrides, to_dict
from scdd.errors import ConfigError
from scdd.run_folder import normalized

CELL_MANIFEST = "manifest.json"
CONFIGS = ("config", "label_config")  # the identity's resolved configs, compared on the defaults
EXTRA_CONFIGS = ("extra_teachers", "label_extras")  # lists of them (a row's extra teachers, ensemble labels)


def is_bench_folder(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds an earlier bench (its teachers, cells or results), which a bench continues."""
    return any((out_dir / name).exists() for name in ("teachers", "cells", "results.json"))


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def bench_path(out_dir: Path, path: str | Path) -> Path:
    """An artifact path as a record holds it: relative to the bench folder (absolute in older records)."""
    path = Path(path)
    return path if path.is_absolute() else out_dir / path


def relative(out_dir: Path, path: str | Path) -> str:
    """``path`` relative to the bench folder when inside it, so the folder can move."""
    try:
        return str(Path(path).resolve().relative_to(out_dir.resolve()))
    except ValueError:
        return str(path)


def same_config(recorded: Any, wanted: Mapping[str, Any]) -> bool:
    """Whether a recorded config is ``wanted``, the record read on the defaults as a run folder's manifest is
    (``scdd.run_folder.manifest_config``): a setting it lacks counts as its default, one it has that scdd
    no longer knows makes it another config."""
    if not isinstance(recorded, Mapping):
        return False
    try:
        rebuilt = apply_overrides(RunConfig(), recorded)
    except (ConfigError, TypeError, ValueError):
        return False
    return normalized(to_dict(rebuilt)) == normalized(wanted)


def recorded_cell(folder: Path, out_dir: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of a finished cell in ``folder`` that matches ``identity`` (see the module), else None."""
    manifest = read_record(folder / CELL_MANIFEST)
    if manifest is None or not isinstance(manifest.get("seconds"), dict):
        return None
    for key, value in identity.items():
        if key in CONFIGS:
            same = same_config(manifest.get(key), value)
        elif key in EXTRA_CONFIGS:
            recorded = manifest.get(key, [])  # a record from before these settings: no extra teachers, their default
            same = isinstance(recorded, list) and len(recorded) == len(value)
            same = same and all(same_config(r, v) for r, v in zip(recorded, value, strict=False))
        else:
            same = manifest.get(key, object()) == normalized(value)
        if not same:
            return None
    artifacts = manifest.get("artifacts") or {}
    paths = [artifacts.get("distilled"), artifacts.get("soft_labels"), *(artifacts.get("students") or {}).values()]
    if not artifacts.get("distilled") or not all(bench_path(out_dir, path).is_file() for path in paths if path):
        return None
    if set(manifest["seconds"]) != set(manifest.get("metrics") or {}):
        return None
    return manifest
