"""Benchmark suites as plain data: rows naming components, resolved through the registry at run time.

A row is one method: ``distill`` (squeeze → align → recover → relabel → post-train) or ``coreset``
(real training images chosen by ``selection``, then relabelled and post-trained the same way).
``pretrainer`` names the squeeze of the model that recovers (distill) or relabels (coreset);
``overrides`` are nested settings as ``--set`` takes them. Suite ``overrides`` (the budget) apply to
every row first, then the row's, then the command line's ``--set``.

The named suites are in ``scdd.bench.named_suites``.

``scdd bench --plan`` prints the exact number of each kind of work for any suite.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scdd.errors import ConfigError

METHODS = ("distill", "coreset")
TEACHER_FIELDS = ("pretrainer", "aligner", "architecture", "overrides")
ROLES = ("sc-dd", "sre2l", "random-real", "herding-real", "")


@dataclass(frozen=True)
class SuiteRow:
    """One method of a suite."""

    label: str
    method: str = "distill"
    pretrainer: str | None = None
    aligner: str | None = None
    matcher: str | None = None
    architecture: str | None = None
    selection: str | None = None  # coreset rows: "random" or "herding"
    role: str = ""  # what the reading compares: sc-dd, sre2l, random-real, herding-real
    overrides: Mapping[str, Any] = field(default_factory=dict)
    labels: str = ""  # a suite teacher relabelling this row instead of the suite's (its gain is then flagged)
    # suite teachers whose BN statistics join the row's own in recovery, their logits averaged (G-VBSM;
    # ``recover.extra_teachers`` with each teacher's classifier): distill rows only
    extra_teachers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"row {self.label!r}: method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.role not in ROLES:
            raise ConfigError(f"row {self.label!r}: role must be one of {', '.join(r for r in ROLES if r)}, got {self.role!r}")
        if self.method == "coreset" and not self.selection:
            raise ConfigError(f"row {self.label!r}: a coreset row needs a selection (random, herding)")
        if self.method == "distill" and self.selection:
            raise ConfigError(f"row {self.label!r}: selection applies to coreset rows only")
        if self.method != "distill" and self.extra_teachers:
            raise ConfigError(f"row {self.label!r}: extra_teachers recover images, so they apply to distill rows only")


@dataclass(frozen=True)
class Suite:
    """Rows run under one protocol: IPCs, seeds, students and budget overrides shared by all."""

    name: str
    rows: tuple[SuiteRow, ...]
    ipc: tuple[int, ...] = (10,)
    seeds: tuple[int, ...] = (0,)
    students: tuple[str, ...] = ()  # empty: the preset's students
    overrides: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    # Named teachers ({pretrainer, aligner, architecture, overrides}) that relabel rows. ``labels`` names the one
    # that relabels every row of the comparison (empty: each row's own teacher, as in SRe²L / SC-DD runs);
    # ``cross_teachers`` × ``cross_rows`` add the cross-teacher table: those rows' images relabelled by each.
    teachers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    labels: str = ""
    preset: str = ""  # a preset for every dataset the suite runs on (default: each dataset's own; --preset wins)
    ipc_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # budget by IPC ("1": {...}), over ``overrides``
    cross_teachers: tuple[str, ...] = ()
    cross_rows: tuple[str, ...] = ()
    # teachers joining ``labels`` for every main row: each crop's label is the mean of their softened outputs
    # (ensemble labels, ``relabel.extra_teachers``), so the rows still share identical labels
    label_ensemble: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.rows:
            raise ConfigError(f"suite {self.name!r} has no rows")
        if not self.ipc or any(ipc < 1 for ipc in self.ipc):
            raise ConfigError(f"suite {self.name!r}: ipc values must be at least 1")
        if not self.seeds:
            raise ConfigError(f"suite {self.name!r} needs at least one seed")
        labels = [row.label for row in self.rows]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ConfigError(f"suite {self.name!r}: row label {duplicates[0]!r} is used twice")
        for name, spec in self.teachers.items():
            unknown = sorted(set(spec) - set(TEACHER_FIELDS))
            if unknown:
                raise ConfigError(
                    f"suite {self.name!r}, teacher {name!r} has no setting {unknown[0]!r}; settings: {', '.join(TEACHER_FIELDS)}"
                )
            if not spec.get("pretrainer"):
                raise ConfigError(f"suite {self.name!r}, teacher {name!r} needs a pretrainer")
        named = [("labels", self.labels)] + [(f"row {row.label!r} labels", row.labels) for row in self.rows]
        named += [("cross_teachers", name) for name in self.cross_teachers]
        named += [("label_ensemble", name) for name in self.label_ensemble]
        named += [(f"row {row.label!r} extra_teachers", name) for row in self.rows for name in row.extra_teachers]
        for where, name in named:
            if name and name not in self.teachers:
                known = ", ".join(self.teachers) or "none"
                raise ConfigError(f"suite {self.name!r}: {where} names teacher {name!r}; the suite's teachers: {known}")
        missing = sorted(set(self.cross_rows) - set(labels))
        if missing:
            raise ConfigError(f"suite {self.name!r}: cross_rows names row {missing[0]!r}, which the suite does not have")
        for key in self.ipc_overrides:
            if not str(key).isdigit() or int(key) < 1:
                raise ConfigError(f"suite {self.name!r}: ipc_overrides keys are IPC values, got {key!r}")
        if self.label_ensemble and not self.labels:
            raise ConfigError(f"suite {self.name!r}: label_ensemble joins the suite's labels teacher, so it needs labels")
        if bool(self.cross_rows) != bool(self.cross_teachers):
            raise ConfigError(f"suite {self.name!r}: a cross-teacher table needs both cross_teachers and cross_rows")


def suite_from_dict(name: str, data: Mapping[str, Any]) -> Suite:
    """Build a suite from plain data (``SUITES`` entries or a JSON suite file); unknown keys are errors."""
    data = dict(data)
    known = {f.name for f in dataclasses.fields(Suite)} - {"name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"suite {name!r} has no setting {unknown[0]!r}; settings: {', '.join(sorted(known))}")
    row_fields = {f.name for f in dataclasses.fields(SuiteRow)}
    rows = []
    for index, row in enumerate(data.pop("rows", None) or []):
        if not isinstance(row, Mapping) or "label" not in row:
            raise ConfigError(f"suite {name!r}: row {index + 1} needs a label")
        extra = sorted(set(row) - row_fields)
        if extra:
            raise ConfigError(
                f"suite {name!r}, row {row['label']!r} has no setting {extra[0]!r}; settings: {', '.join(sorted(row_fields))}"
            )
        extras = _names(row.get("extra_teachers", ()), f"suite {name!r}, row {row['label']!r}: extra_teachers")
        rows.append(SuiteRow(**{**row, "extra_teachers": extras}))
    for key in ("ipc", "seeds", "students", "cross_teachers", "cross_rows", "label_ensemble"):
        if key in data:
            data[key] = _names(data[key], f"suite {name!r}: {key}")
    return Suite(name=name, rows=tuple(rows), **data)


def _names(value: Any, where: str) -> tuple[Any, ...]:
    """A list setting as a tuple; a lone string or number is an error (not split into characters)."""
    if value is None or isinstance(value, (str, int, float, Mapping)):
        raise ConfigError(f"{where} must be a list, got {value!r}")
    return tuple(value)


def load_suite_file(path: str | Path) -> Suite:
    """A suite written as JSON: ``{"rows": [...], "ipc": [...], "seeds": [...], ...}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"suite file {path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"suite file {path} is not valid JSON ({error})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"suite file {path} must hold a JSON object")
    return suite_from_dict(path.stem, data)
