"""Finished work units (a recovery batch, a relabelled epoch) kept as one safetensors file each.

A unit's file appears atomically once the unit is done, with an identity (the settings that
determine it) in its metadata; a later attempt takes the unit from the file instead of recomputing
it when the identity matches. Every file records when it was finished and by which attempt.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from scdd.artifacts import atomic_path
from scdd.resume.scope import current_scope, identity_differences, read_failure, safe_key, warn_not_reused

_META_KEY = "scdd.unit"
_REDONE = "this unit is computed again"


class UnitStore:
    """Units of one loop under ``<stage>/.progress/<name>/``; counts reused and computed units in the scope."""

    def __init__(self, folder: Path, identity: Mapping[str, Any], scope=None) -> None:
        self.folder = Path(folder)
        self.identity = json.loads(json.dumps(dict(identity)))
        self.scope = scope

    def _path(self, unit: str) -> Path:
        return self.folder / f"{safe_key(unit)}.safetensors"

    def load(self, unit: str, count: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """A finished unit's tensors and extra values, or None when it is not (validly) on disk."""
        path = self._path(unit)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = json.loads((handle.metadata() or {})[_META_KEY])
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, KeyError) as error:
            warn_not_reused(path, read_failure(error), _REDONE)
            return None
        if meta.get("identity") != self.identity:
            warn_not_reused(path, identity_differences(meta.get("identity"), self.identity), _REDONE)
            return None
        if self.scope is not None and count:
            self.scope.count("units_reused")
        return tensors, meta.get("extra", {})

    def save(self, unit: str, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any] | None = None, count: bool = True) -> None:
        """Record a finished unit (atomically)."""
        attempt = self.scope.counts.get("attempt", 1) if self.scope is not None else 1
        meta = {
            "identity": self.identity,
            "extra": dict(extra or {}),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds"),
            "attempt": attempt,
        }
        flat = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in tensors.items()}
        with atomic_path(self._path(unit)) as tmp:
            save_file(flat, str(tmp), metadata={_META_KEY: json.dumps(meta)})
        if self.scope is not None and count:
            self.scope.count("units_computed")

    def remove(self, unit: str) -> None:
        self._path(unit).unlink(missing_ok=True)


class NoUnits:
    """Stands in for ``UnitStore`` when no progress is kept."""

    def load(self, unit: str, count: bool = True) -> None:
        return None

    def save(self, unit: str, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Any] | None = None, count: bool = True) -> None:
        pass

    def remove(self, unit: str) -> None:
        pass


def unit_store(name: str, identity: Mapping[str, Any]) -> UnitStore | NoUnits:
    """The unit store named ``name`` in the current progress scope, or a no-op outside one."""
    scope = current_scope()
    if scope is None:
        return NoUnits()
    return UnitStore(scope.path(safe_key(name)), identity, scope)
