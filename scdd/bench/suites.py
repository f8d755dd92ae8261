"""Benchmark suites as plain data: rows naming components, resolved through the registry at run time.

A row is one method: ``distill`` (squeeze → align → recover → relabel → post-train) or ``coreset``
(real training images chosen by ``selection``, then relabelled and post-trained the same way).
``pretrainer`` names the squeeze of the model that recovers (distill) or relabels (coreset);
``overrides`` are nested settings as ``--set`` takes them. Suite ``overrides`` (the budget) apply to
every row first, then the row's, then the command line's ``--set``.

Budget of ``fair`` on the embedded data (the ``small`` preset; unit costs measured with one torch
thread on a shared 2-core machine, on the 3,200-image validation carve): the supervised teacher
(15 epochs) ≈ 90-100 s and the MoCo v3 teacher (10 epochs + an 80-epoch probe) ≈ 290 s, shared by
every IPC and seed; per seed, each cell's relabelling + post-training ≈ 26 s at IPC 1 (2,000 epochs
of 10 images), ≈ 28 s at IPC 10 (200 epochs) and ≈ 47 s at IPC 50 (50 epochs), plus the recoveries.
21 cells per seed (main table and cross-teacher table) come to ≈ 1,000 s a seed: ≈ 57 min for IPC 1,
10 and 50 with 3 seeds (an estimate from these unit costs, not a measured end-to-end run).
``benchmarks/bench_budget.py`` measures the unit costs on the machine at hand and prints the estimate.

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

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"row {self.label!r}: method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.role not in ROLES:
            raise ConfigError(f"row {self.label!r}: role must be one of {', '.join(r for r in ROLES if r)}, got {self.role!r}")
        if self.method == "coreset" and not self.selection:
            raise ConfigError(f"row {self.label!r}: a coreset row needs a selection (random, herding)")
        if self.method == "distill" and self.selection:
            raise ConfigError(f"row {self.label!r}: selection applies to coreset rows only")


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
        if bool(self.cross_rows) != bool(self.cross_teachers):
            raise ConfigError(f"suite {self.name!r}: a cross-teacher table needs both cross_teachers and cross_rows")


_SC_DD: dict[str, Any] = {"method": "distill", "aligner": "linear-probe", "matcher": "imbalanced-bn", "role": "sc-dd"}
_SRE2L = {"method": "distill", "pretrainer": "supervised", "aligner": "linear-probe", "matcher": "bn", "role": "sre2l"}
_REAL = {"method": "coreset", "pretrainer": "supervised"}

# SRe²L's recipe: its supervised model as trained (own head), first BN layer ×10 as in its recovery code.
_SRE2L_RECIPE: dict[str, Any] = {
    "method": "distill",
    "pretrainer": "supervised",
    "aligner": "pretrained-head",
    "matcher": "bn",
    "role": "sre2l",
    "overrides": {"recover": {"matcher_options": {"first_bn_multiplier": 10.0}}},
}
_SUPERVISED = {"pretrainer": "supervised", "aligner": "pretrained-head"}
# Post-training epochs by IPC under the `small` preset (its 200 serve IPC 10), chosen on the validation carve
# with random real images: the smallest budget within 0.5 points of the longest tried (IPC 1: still rising at
# 2,000 epochs, the longest the suite's time allows).
_SMALL_BY_IPC = {"1": {"posttrain": {"epochs": 2000}}, "50": {"posttrain": {"epochs": 50}}}
_RANDOM_REAL = {"label": "random real", "method": "coreset", "selection": "random", "role": "random-real"}
_FAIR_TEACHERS = {"supervised": _SUPERVISED, "moco-v3": {"pretrainer": "moco-v3", "aligner": "linear-probe"}}
_FAIR_ROWS = [
    {"label": "SC-DD (MoCo v3)", "pretrainer": "moco-v3", **_SC_DD},
    {"label": "SRe²L", **_SRE2L_RECIPE},
    _RANDOM_REAL,
    {"label": "herding real", "method": "coreset", "selection": "herding", **_SUPERVISED, "role": "herding-real"},
]
_SSL_ROWS = [
    {"label": f"SC-DD ({name})", "pretrainer": pretrainer, **_SC_DD}
    for name, pretrainer in (("MoCo v2", "moco-v2"), ("MoCo v3", "moco-v3"), ("SwAV", "swav"), ("DINO", "dino"))
]


def _claim(description: str, rows: list[dict[str, Any]], ipc: tuple[int, ...] = (1, 10)) -> dict[str, Any]:
    """A claim suite: the ``small`` preset's budget, seeds 0-2, one supervised teacher relabelling every row."""
    return {
        "description": description,
        "preset": "small",
        "ipc": list(ipc),
        "ipc_overrides": _SMALL_BY_IPC,
        "seeds": [0, 1, 2],
        "teachers": {"supervised": _SUPERVISED},
        "labels": "supervised",
        "rows": rows,
    }


SUITES: dict[str, dict[str, Any]] = {
    "fair": {
        "description": "SC-DD vs SRe²L vs real images with identical labels (one supervised teacher relabels every "
        "row; paired gain over random real), plus the cross-teacher table; the `small` preset's budget",
        "preset": "small",
        "ipc": [1, 10, 50],
        "ipc_overrides": _SMALL_BY_IPC,
        "seeds": [0, 1, 2],
        "teachers": _FAIR_TEACHERS,
        "labels": "supervised",
        "cross_teachers": ["supervised", "moco-v3"],
        "cross_rows": ["SC-DD (MoCo v3)", "SRe²L", "random real"],
        "rows": _FAIR_ROWS,
    },
    "table1": _claim(
        "Table 1's claim, SC-DD > SRe²L at equal budget: SC-DD with each SSL pretrainer against SRe²L's "
        "recipe (own head, first BN ×10) and its ×1 / re-trained-probe ablation, every row relabelled by one "
        "supervised teacher",
        [
            *_SSL_ROWS,
            {"label": "SRe²L", **_SRE2L_RECIPE},
            {"label": "SRe²L (first BN ×1, re-trained probe)", **_SRE2L},
            _RANDOM_REAL,
        ],
    ),
    "scaling": _claim(
        "Fig. 2's claim, a larger recovery model helps SC-DD and hurts SRe²L: ConvNet widths 16, 32 and 64 "
        "recover for both, one supervised width-64 teacher relabels every row",
        [
            *(
                {
                    "label": f"{name} (width {width})",
                    **kind,
                    "overrides": {**kind.get("overrides", {}), "squeeze": {"architecture_options": {"width": width}}},
                }
                for width in (16, 32, 64)  # a ladder that runs on 2 CPU cores
                for name, kind in (("SC-DD (MoCo v3)", {"pretrainer": "moco-v3", **_SC_DD}), ("SRe²L", _SRE2L_RECIPE))
            ),
            _RANDOM_REAL,
        ],
    ),
    "first-bn": _claim(
        "Table 5's claim, the first-BN multiplier of Eq. 8 peaks near 10×: one MoCo v3 teacher recovers "
        "with 1×, 5×, 10×, 15×, 20×; one supervised teacher relabels every row",
        [
            *(
                {
                    "label": f"first BN ×{multiplier}",
                    "pretrainer": "moco-v3",
                    **_SC_DD,
                    "overrides": {"recover": {"matcher_options": {"first_bn_multiplier": float(multiplier)}}},
                }
                for multiplier in (1, 5, 10, 15, 20)
            ),
            _RANDOM_REAL,
        ],
    ),
    "alignment": _claim(
        "Sec. 2.2's claim, a linear probe recovers better than fine-tuning: one MoCo v3 squeeze aligned "
        "both ways, and probed once more with its BN statistics re-estimated on the labelled images (what "
        "fine-tuning changes in the statistics, without what it changes in the weights); one supervised "
        "teacher relabels every row",
        [
            {"label": "SC-DD (MoCo v3, linear probe)", "pretrainer": "moco-v3", **_SC_DD},
            {
                "label": "SC-DD (MoCo v3, fine-tuned)",
                "pretrainer": "moco-v3",
                **{**_SC_DD, "aligner": "finetune"},
                "overrides": {"align": {"aligner_options": {"epochs": 10, "lr": 0.01, "batch_size": 256, "crop_min_scale": 0.8}}},
            },
            {
                "label": "SC-DD (MoCo v3, linear probe, BN statistics of the labelled images)",
                "pretrainer": "moco-v3",
                **_SC_DD,
                "overrides": {"align": {"aligner_options": {"bn_statistics": "labelled"}}},
            },
            _RANDOM_REAL,
        ],
    ),
    "bn-spread": _claim(
        "Table 2 / Fig. 4's claim, SSL BN statistics spread more than supervised ones: every pretrainer's "
        "teacher with its BatchNorm statistics, and the recovery each makes at IPC 1 (one supervised teacher labels)",
        [
            *_SSL_ROWS,
            {"label": "SRe²L", **_SRE2L_RECIPE},
            _RANDOM_REAL,
        ],
        ipc=(1,),
    ),
}


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
        rows.append(SuiteRow(**row))
    for key in ("ipc", "seeds", "students", "cross_teachers", "cross_rows"):
        if key in data:
            data[key] = tuple(data[key])
    return Suite(name=name, rows=tuple(rows), **data)


def get_suite(name: str) -> Suite:
    try:
        return suite_from_dict(name, SUITES[name])
    except KeyError:
        raise ConfigError(f"unknown suite {name!r}; suites: {', '.join(SUITES)}") from None


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
