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
from pathlib import Path
from typing import Any

from scdd.bench.checks import check_budget_options, check_options, check_teacher_settings
from scdd.bench.gain import label_identity
from scdd.bench.reuse import CELL_MANIFEST
from scdd.bench.suites import Suite, SuiteRow
from scdd.config import RunConfig, apply_overrides, check_components, filter_component_options, make_run_config
from scdd.errors import ConfigError, ScddError
from scdd.stages.coreset import check_method


@dataclass(frozen=True)
class Cell:
    """One (row, IPC, label teacher) of a suite with its resolved configurations.

    ``config`` makes the row's images (its own teacher recovers them, or selects real ones) and holds the
    relabel / post-training recipe; ``label_config``'s squeeze + align make the teacher that relabels them
    (the suite's ``labels`` teacher, the row's own, or a cross-table teacher). ``labels`` names it ("" for
    the row's own teacher; names joined by "+" for an ensemble); ``table`` is ``main`` or ``cross``.
    ``extra_teachers`` recover beside the row's own teacher (the row's ``extra_teachers``) and
    ``label_extras`` label beside ``label_config``'s (the suite's ``label_ensemble``)."""

    row: SuiteRow
    ipc: int
    config: RunConfig
    label_config: RunConfig | None = None
    labels: str = ""
    table: str = "main"
    extra_teachers: tuple[RunConfig, ...] = ()
    label_extras: tuple[RunConfig, ...] = ()

    @property
    def teacher_key(self) -> str:
        return teacher_key(self.config)

    @property
    def label_teacher(self) -> RunConfig:
        return self.label_config if self.label_config is not None else self.config

    @property
    def label_teachers(self) -> tuple[RunConfig, ...]:
        """Every teacher whose outputs make the labels: ``label_teacher``, then ``label_extras``."""
        return (self.label_teacher, *self.label_extras)

    @property
    def label_key(self) -> str:
        """Identifies the labelling teacher, or the ensemble of teachers, by their keys."""
        return "+".join(teacher_key(config) for config in self.label_teachers)

    @property
    def label_identity(self) -> str:
        """Same value for two cells exactly when their students learn from identical labels: the same
        relabelling teacher, relabel settings and post-training recipe (``scdd.bench.gain``)."""
        teacher = self.label_key if self.config.posttrain.labels == "soft" else "hard labels"
        return label_identity(teacher, self.config.relabel, self.config.posttrain)

    @property
    def recovery_budget(self) -> str:
        """Equal for two cells recovered with the same settings apart from the matcher (Table 1's "equal budget")."""
        recover = dataclasses.replace(self.config.recover, matcher="", matcher_options={})
        return _digest(dataclasses.asdict(recover))

    @property
    def labels_name(self) -> str:
        """A readable name of the relabelling teacher."""
        if self.config.posttrain.labels != "soft":
            return "hard labels"
        if self.labels:
            return self.labels
        return f"own ({self.config.squeeze.pretrainer})"

    @property
    def needs_teacher(self) -> bool:
        """Distilled rows recover from their teacher, herding reads its features."""
        return self.row.method == "distill" or self.row.selection == "herding"


@dataclass
class Plan:
    suite: Suite
    cells: list[Cell]
    base: RunConfig  # dataset, data root, device and teacher seed every cell shares

    def counts(self) -> dict[str, int]:
        """How many of each kind of work the suite does (shared work counted once)."""
        teachers = {cell.teacher_key for cell in self.cells if cell.needs_teacher}
        teachers |= {teacher_key(c) for cell in self.cells if cell.config.posttrain.labels == "soft" for c in cell.label_teachers}
        teachers |= {teacher_key(config) for cell in self.cells for config in cell.extra_teachers}
        seeds = len(self.suite.seeds)
        recoveries = {image_key(cell) for cell in self.cells if cell.row.method == "distill"}
        selections = {image_key(cell) for cell in self.cells if cell.row.method == "coreset"}
        relabels = {
            (image_key(cell), cell.label_key, repr(cell.config.relabel)) for cell in self.cells if cell.config.posttrain.labels == "soft"
        }
        students = sum(len(cell.config.posttrain.students) for cell in self.cells)
        return {
            "cells": len(self.cells),
            "teachers (squeeze + align)": len(teachers),
            "recoveries": len(recoveries) * seeds,
            "coreset selections": len(selections) * seeds,
            "relabels": len(relabels) * seeds,
            "student trainings": students * seeds,
        }


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:10]


def teacher_key(config: RunConfig) -> str:
    """Identifies a squeeze + align: same data, settings and seed give the same teacher."""
    return _digest(
        [
            config.dataset,
            config.dataset_options,
            config.eval_split,
            config.validation_fraction,
            config.seed,
            dataclasses.asdict(config.squeeze),
            dataclasses.asdict(config.align),
        ]
    )


def image_key(cell: Cell) -> tuple:
    """Identifies a cell's images for one seed: the same for every label teacher."""
    if cell.row.method == "distill":
        extras = tuple(teacher_key(config) for config in cell.extra_teachers)
        return ("recover", cell.teacher_key, _digest(dataclasses.asdict(cell.config.recover)), extras)
    return ("coreset", cell.row.selection, cell.teacher_key if cell.row.selection == "herding" else None, cell.ipc)


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Nested merge of override dicts (``extra`` wins)."""
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_SLOTS = {
    "pretrainer": ("squeeze", "pretrainer"),
    "architecture": ("squeeze", "architecture"),
    "aligner": ("align", "aligner"),
    "matcher": ("recover", "matcher"),
}


def row_overrides(row: SuiteRow | Mapping[str, Any]) -> dict[str, Any]:
    """The component choices of a row (or of a teacher's spec) as nested settings."""
    nested: dict[str, Any] = {}
    for attribute, (stage, key) in _SLOTS.items():
        value = row.get(attribute) if isinstance(row, Mapping) else getattr(row, attribute)
        if value is not None:
            nested.setdefault(stage, {})[key] = value
    return nested


def plan_suite(suite: Suite, overrides: Mapping[str, Any] | None = None, preset: str | None = None) -> Plan:
    """Resolve and check every cell of ``suite``; ``overrides`` (dataset, data root, device, ``--set``) win last.
    ``preset`` (else the suite's, else each dataset's own) lies under the suite's budget.

    Main cells: every (row, IPC), relabelled by the row's ``labels`` teacher, else the suite's, else the row's
    own. Cross cells: every (``cross_rows`` row, IPC, ``cross_teachers`` teacher) the main cells do not cover."""
    overrides = dict(overrides or {})
    budget = merge(suite.overrides, {"posttrain": {"students": list(suite.students)}} if suite.students else {})
    preset = preset or suite.preset or None
    try:
        for shared in (budget, *suite.ipc_overrides.values()):
            check_budget_options(shared)
    except ConfigError as error:
        raise ConfigError(f"suite {suite.name!r}: {error}") from None

    def resolve(spec: Any, extra: Mapping[str, Any], ipc: int) -> RunConfig:
        # the suite's budget serves every row: its option dicts are cut to the options of the row's components
        # (as a preset's are), while the row's own overrides must fit its components
        shared = merge(budget, suite.ipc_overrides.get(str(ipc), {}))
        check_teacher_settings(merge(merge(shared, extra), overrides))
        names = {stage: {key: shared[stage][key]} for stage, key in _SLOTS.values() if key in shared.get(stage, {})}
        chosen = make_run_config(merge(merge(merge(names, row_overrides(spec)), extra), overrides), preset)
        nested = merge(merge(merge(filter_component_options(shared, chosen), row_overrides(spec)), extra), overrides)
        config = make_run_config(merge(nested, {"recover": {"ipc": ipc}}), preset)
        check_components(config)
        check_options(config)
        return config

    teachers: dict[tuple[str, int], RunConfig] = {}
    cells, failures = [], []
    for name, spec in suite.teachers.items():
        try:
            for ipc in suite.ipc:
                teachers[name, ipc] = resolve(spec, spec.get("overrides", {}), ipc)
        except ScddError as error:
            failures.append((f"teacher {name!r}", error))
    for row in suite.rows:
        try:
            if row.method == "coreset":
                check_method(row.selection or "")
            for ipc in suite.ipc:
                config = resolve(row, row.overrides, ipc)
                extras = tuple(teachers[name, ipc] for name in row.extra_teachers if (name, ipc) in teachers)
                teacher = row.labels or suite.labels
                ensemble = suite.label_ensemble if teacher == suite.labels else ()  # a row's own labels stay alone
                label_extras = tuple(teachers[name, ipc] for name in ensemble if (name, ipc) in teachers)
                labels = "+".join((teacher, *ensemble))
                cells.append(Cell(row, ipc, config, teachers.get((teacher, ipc)), labels, "main", extras, label_extras))
        except ScddError as error:
            failures.append((f"row {row.label!r}", error))
    covered = {(cell.row.label, cell.ipc, cell.label_key) for cell in cells}
    for row in (row for row in suite.rows if row.label in suite.cross_rows):
        for ipc in suite.ipc:
            main = next((cell for cell in cells if (cell.row.label, cell.ipc) == (row.label, ipc)), None)
            for name in suite.cross_teachers:
                if main is None or (name, ipc) not in teachers:
                    continue
                cell = Cell(row, ipc, main.config, teachers[name, ipc], name, "cross", main.extra_teachers)
                if (row.label, ipc, cell.label_key) not in covered:
                    covered.add((row.label, ipc, cell.label_key))
                    cells.append(cell)
    if failures:
        (label, failure), others = failures[0], [label for label, _ in failures[1:]]
        more = f" (also failing: {', '.join(others)})" if others else ""
        raise ConfigError(f"suite {suite.name!r}, {label}: {failure}{more}")
    base = cells[0].config
    for cell in cells:
        if (cell.config.dataset, cell.config.dataset_options, cell.config.data_root) != (
            base.dataset,
            base.dataset_options,
            base.data_root,
        ) or (cell.label_teacher.dataset, cell.label_teacher.eval_split) != (base.dataset, base.eval_split):
            raise ConfigError(f"suite {suite.name!r}, row {cell.row.label!r}: every row must use the same dataset")
    return Plan(suite=suite, cells=cells, base=base)


def load_cell(manifest: str | Path) -> tuple[Plan, int]:
    """A one-cell plan (and its seed) rebuilt from a bench cell's ``manifest.json``, to run it again."""
    path = Path(manifest)
    if path.is_dir():
        path = path / CELL_MANIFEST
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not a readable bench cell manifest ({error})") from None
    if document.get("scdd_bench_cell") != 1:
        raise ConfigError(f"{path}: not a bench cell manifest")
    row = SuiteRow(**{**document["row"], "extra_teachers": tuple(document["row"].get("extra_teachers", ()))})
    config = apply_overrides(RunConfig(), document["config"])
    label_config = apply_overrides(RunConfig(), document["label_config"])
    extras, ensemble = ([apply_overrides(RunConfig(), c) for c in document.get(key, [])] for key in ("extra_teachers", "label_extras"))
    labels, table = document.get("labels", ""), document.get("table", "main")
    cell = Cell(row, document["ipc"], config, label_config, labels, table, tuple(extras), tuple(ensemble))
    # a one-row suite without the teachers the row named: the cell holds them resolved
    suite = Suite(name=document["suite"], rows=(dataclasses.replace(row, extra_teachers=()),), ipc=(cell.ipc,), seeds=(document["seed"],))
    return Plan(suite=suite, cells=[cell], base=config), document["seed"]
