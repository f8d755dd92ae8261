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

from scdd.bench.gain import label_identity
from scdd.bench.reuse import CELL_MANIFEST
from scdd.bench.suites import Suite, SuiteRow
from scdd.config import RunConfig, apply_overrides, check_components, filter_component_options, make_run_config
from scdd.errors import ConfigError, ScddError
from scdd.registry import get_component, get_registry
from scdd.stages.coreset import check_method
from scdd.stages.relabel import ALIGNED_TEACHER


@dataclass(frozen=True)
class Cell:
    """One (row, IPC, label teacher) of a suite with its resolved configurations.

    ``config`` makes the row's images (its own teacher recovers them, or selects real ones) and holds the
    relabel / post-training recipe; ``label_config``'s squeeze + align make the teacher that relabels them
    (the suite's ``labels`` teacher, the row's own, or a cross-table teacher). ``labels`` names it ("" for
    the row's own teacher); ``table`` is ``main`` or ``cross``."""

    row: SuiteRow
    ipc: int
    config: RunConfig
    label_config: RunConfig | None = None
    labels: str = ""
    table: str = "main"

    @property
    def teacher_key(self) -> str:
        return teacher_key(self.config)

    @property
    def label_teacher(self) -> RunConfig:
        return self.label_config if self.label_config is not None else self.config

    @property
    def label_key(self) -> str:
        return teacher_key(self.label_teacher)

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
        teachers |= {cell.label_key for cell in self.cells if cell.config.posttrain.labels == "soft"}
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
        return ("recover", cell.teacher_key, _digest(dataclasses.asdict(cell.config.recover)))
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


_OPTION_KINDS = {
    ("squeeze", "pretrainer_options"): "pretrainer",
    ("squeeze", "architecture_options"): "architecture",
    ("align", "aligner_options"): "aligner",
    ("recover", "matcher_options"): "matcher",
}


def check_budget_options(budget: Mapping[str, Any]) -> None:
    """A suite budget's shared component options are cut to each row's components, so a misspelt option would
    vanish silently: every option must be one that some registered component of its kind accepts."""
    registry = get_registry()
    for (stage, key), kind in _OPTION_KINDS.items():
        given = set((budget.get(stage) or {}).get(key) or {})
        if not given:
            continue
        accepted = set()
        for name in registry.names(kind):
            accepted |= set(registry.get(kind, name).defaults())
        unknown = sorted(given - accepted)
        if unknown:
            raise ConfigError(f"the budget's {stage}.{key} has no option {unknown[0]!r} for any registered {kind}")


def check_options(config: RunConfig) -> None:
    """Validate every component's options now (they are otherwise checked only when the stage runs)."""
    get_component("pretrainer", config.squeeze.pretrainer).make_config(config.squeeze.pretrainer_options)
    get_component("architecture", config.squeeze.architecture).make_config(config.squeeze.architecture_options)
    get_component("aligner", config.align.aligner).make_config(config.align.aligner_options)
    get_component("matcher", config.recover.matcher).make_config(config.recover.matcher_options)
    for student in config.posttrain.students:
        get_component("architecture", student).make_config(config.posttrain.options_for(student))


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
        names = {stage: {key: shared[stage][key]} for stage, key in _SLOTS.values() if key in shared.get(stage, {})}
        chosen = make_run_config(merge(merge(merge(names, row_overrides(spec)), extra), overrides), preset)
        nested = merge(merge(merge(filter_component_options(shared, chosen), row_overrides(spec)), extra), overrides)
        config = make_run_config(merge(nested, {"recover": {"ipc": ipc}}), preset)
        check_components(config)
        check_options(config)
        if config.relabel.teacher != ALIGNED_TEACHER:
            raise ConfigError("relabel.teacher has no place in a bench: one labelling teacher (the suite's 'labels') labels every row")
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
                labels = row.labels or suite.labels
                cells.append(Cell(row, ipc, config, teachers.get((labels, ipc)), labels))
        except ScddError as error:
            failures.append((f"row {row.label!r}", error))
    covered = {(cell.row.label, cell.ipc, cell.label_key) for cell in cells}
    for row in (row for row in suite.rows if row.label in suite.cross_rows):
        for ipc in suite.ipc:
            main = next((cell for cell in cells if (cell.row.label, cell.ipc) == (row.label, ipc)), None)
            for name in suite.cross_teachers:
                if main is None or (name, ipc) not in teachers:
                    continue
                cell = Cell(row, ipc, main.config, teachers[name, ipc], name, "cross")
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
    row = SuiteRow(**document["row"])
    config = apply_overrides(RunConfig(), document["config"])
    label_config = apply_overrides(RunConfig(), document["label_config"])
    cell = Cell(row, document["ipc"], config, label_config, document.get("labels", ""), document.get("table", "main"))
    suite = Suite(name=document["suite"], rows=(row,), ipc=(cell.ipc,), seeds=(document["seed"],))
    return Plan(suite=suite, cells=[cell], base=config), document["seed"]
