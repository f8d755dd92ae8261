"""Resolving a suite into run configurations, checked in full before any work starts.

Each (row, IPC) cell becomes a ``RunConfig`` through ``scdd.config.make_run_config``: paper
defaults, the dataset's preset, the suite's budget, the row's components and overrides, then the
command line's settings. Every component name and option set is checked against the registry
here, so a suite naming an unregistered component fails with the registry's one-line error
(prefixed by the row) before anything is squeezed.

Work is shared where the protocol allows: one squeeze + align per distinct teacher configuration
(the same for every IPC and seed: seeds vary recovery, coreset selection, relabelling and
post-training), one recovery per (teacher, recovery settings, IPC, seed).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scdd.bench.suites import Suite, SuiteRow
from scdd.config import RunConfig
from scdd.errors import ConfigError, ScddError
from scdd.config import check_components, make_run_config
from scdd.registry import get_component
from scdd.stages.coreset import check_method

@dataclass(frozen=True)
class Cell:
    """One (row, IPC) of a suite with its resolved configuration."""

    row: SuiteRow
    ipc: int
    config: RunConfig

    @property
    def teacher_key(self) -> str:
        return teacher_key(self.config)

    @property
    def needs_teacher(self) -> bool:
        """Distilled rows recover from the teacher, herding reads its features, soft labels come from it."""
        return self.row.method == "distill" or self.row.selection == "herding" or self.config.posttrain.labels == "soft"


@dataclass
class Plan:
    suite: Suite
    cells: list[Cell]
    base: RunConfig  # dataset, data root, device and teacher seed every cell shares

    def counts(self) -> dict[str, int]:
        """How many of each kind of work the suite does (shared work counted once)."""
        teachers = {cell.teacher_key for cell in self.cells if cell.needs_teacher}
        seeds = len(self.suite.seeds)
        recoveries = {(cell.teacher_key, _recover_key(cell.config)) for cell in self.cells if cell.row.method == "distill"}
        selections = {(cell.row.selection, cell.ipc) for cell in self.cells if cell.row.method == "coreset"}
        students = sum(len(cell.config.posttrain.students) for cell in self.cells)
        return {
            "cells": len(self.cells),
            "teachers (squeeze + align)": len(teachers),
            "recoveries": len(recoveries) * seeds,
            "coreset selections": len(selections) * seeds,
            "relabels": sum(1 for cell in self.cells if cell.config.posttrain.labels == "soft") * seeds,
            "student trainings": students * seeds,
        }


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:10]


def teacher_key(config: RunConfig) -> str:
    """Identifies a squeeze + align: same settings and seed give the same teacher."""
    return _digest(
        [config.dataset, config.dataset_options, config.seed, dataclasses.asdict(config.squeeze), dataclasses.asdict(config.align)]
    )


def _recover_key(config: RunConfig) -> str:
    return _digest(dataclasses.asdict(config.recover))


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Nested merge of override dicts (``extra`` wins)."""
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def row_overrides(row: SuiteRow) -> dict[str, Any]:
    """The row's component choices as nested settings."""
    slots = {
        "pretrainer": ("squeeze", "pretrainer"),
        "architecture": ("squeeze", "architecture"),
        "aligner": ("align", "aligner"),
        "matcher": ("recover", "matcher"),
    }
    nested: dict[str, Any] = {}
    for attribute, (stage, key) in slots.items():
        value = getattr(row, attribute)
        if value is not None:
            nested.setdefault(stage, {})[key] = value
    return nested


def check_options(config: RunConfig) -> None:
    """Validate every component's options now (they are otherwise checked only when the stage runs)."""
    get_component("pretrainer", config.squeeze.pretrainer).make_config(config.squeeze.pretrainer_options)
    get_component("architecture", config.squeeze.architecture).make_config(config.squeeze.architecture_options)
    get_component("aligner", config.align.aligner).make_config(config.align.aligner_options)
    get_component("matcher", config.recover.matcher).make_config(config.recover.matcher_options)


def plan_suite(suite: Suite, overrides: Mapping[str, Any] | None = None, preset: str | None = None) -> Plan:
    """Resolve and check every cell of ``suite``; ``overrides`` (dataset, data root, device, ``--set``) win last."""
    overrides = dict(overrides or {})
    budget = merge(suite.overrides, {"posttrain": {"students": list(suite.students)}} if suite.students else {})
    cells, failures = [], []
    for row in suite.rows:
        try:
            if row.method == "coreset":
                check_method(row.selection or "")
            for ipc in suite.ipc:
                nested = merge(merge(merge(budget, row_overrides(row)), row.overrides), overrides)
                config = make_run_config(merge(nested, {"recover": {"ipc": ipc}}), preset)
                check_components(config)
                check_options(config)
                cells.append(Cell(row=row, ipc=ipc, config=config))
        except ScddError as error:
            failures.append((row.label, error))
    if failures:
        (label, error), others = failures[0], [label for label, _ in failures[1:]]
        more = f" (also failing: {', '.join(repr(o) for o in others)})" if others else ""
        raise ConfigError(f"suite {suite.name!r}, row {label!r}: {error}{more}")
    base = cells[0].config
    for cell in cells:
        if (cell.config.dataset, cell.config.dataset_options, cell.config.data_root) != (
            base.dataset, base.dataset_options, base.data_root
        ):
            raise ConfigError(f"suite {suite.name!r}, row {cell.row.label!r}: every row must use the same dataset")
    return Plan(suite=suite, cells=cells, base=base)
