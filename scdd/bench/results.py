"""Bench results: per-cell accuracies over seeds, the summary table, JSON and CSV files (the gains,
reading and cross-teacher table come from ``scdd.bench.comparisons``).

Top-1 is summarised as mean ± sample standard deviation over seeds (0 for one seed). Wall time
per seed counts producing the images (recovery or coreset selection), relabelling, post-training
and evaluating that student; a teacher's squeeze + align, shared by all IPCs and seeds, is
reported separately ("setup").
"""

from __future__ import annotations

import csv
import dataclasses
import io
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scdd.artifacts import atomic_path, write_json
from scdd.bench.comparisons import add_gains, cross_table, reading

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
CSV_COLUMNS = (
    "suite",
    "label",
    "method",
    "role",
    "pretrainer",
    "aligner",
    "matcher",
    "architecture",
    "selection",
    "ipc",
    "student",
    "seeds",
    "top1_mean",
    "top1_std",
    "top1_per_seed",
    "top5_mean",
    "seconds_per_seed",
    "setup_seconds",
    "teacher_top1",
    "table",
    "labels",
    "label_teacher_top1",
    "gain_mean",
    "gain_std",
    "gain_per_seed",
    "gain_note",
)


@dataclass
class CellResult:
    """What one (row, IPC) measured, per student and seed."""

    label: str
    method: str
    role: str
    pretrainer: str | None
    aligner: str | None
    matcher: str | None
    architecture: str
    selection: str | None
    ipc: int
    students: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # seeds, top1, top5, seconds, stage_seconds
    teacher_seconds: float | None = None
    teacher_top1: float | None = None
    table: str = "main"
    labels: str = ""  # readable name of the relabelling teacher
    label_identity: str = ""  # equal for two cells exactly when their labels are identical (scdd.bench.gain)
    recovery_budget: str = ""  # equal for distilled rows recovered with the same settings but the matcher's
    label_teacher_top1: float | None = None
    image_metrics: list[dict[str, Any]] = field(default_factory=list)  # per seed: what recovery measured (Fig. 5)

    @classmethod
    def for_cell(cls, cell: Any) -> CellResult:
        config, row = cell.config, cell.row
        distill = row.method == "distill"
        uses_teacher = cell.needs_teacher
        return cls(
            label=row.label,
            method=row.method,
            role=row.role,
            pretrainer=config.squeeze.pretrainer if uses_teacher else None,
            aligner=config.align.aligner if uses_teacher else None,
            matcher=config.recover.matcher if distill else None,
            architecture=config.squeeze.architecture if uses_teacher else "-",
            selection=row.selection,
            ipc=cell.ipc,
            table=cell.table,
            labels=cell.labels_name,
            label_identity=cell.label_identity,
            recovery_budget=cell.recovery_budget if distill else "",
        )

    def add(self, student: str, seed: int, top1: float, top5: float, stage_seconds: dict[str, float]) -> None:
        """One seed's result; ``stage_seconds`` is what producing it cost, stage by stage."""
        values = self.students.setdefault(student, {"seeds": [], "top1": [], "top5": [], "seconds": [], "stage_seconds": []})
        values["seeds"].append(seed)
        values["top1"].append(top1)
        values["top5"].append(top5)
        values["seconds"].append(sum(stage_seconds.values()))
        values["stage_seconds"].append({name: round(value, 3) for name, value in stage_seconds.items()})


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summary_rows(suite_name: str, results: list[CellResult]) -> list[dict[str, Any]]:
    """One row per (method, IPC, student): the table ``scdd bench`` prints and writes as CSV."""
    rows = []
    for result in results:
        for student, values in result.students.items():
            top1_mean, top1_std = mean_std(values["top1"])
            rows.append(
                {
                    "suite": suite_name,
                    "label": result.label,
                    "method": result.method,
                    "role": result.role,
                    "pretrainer": result.pretrainer,
                    "aligner": result.aligner,
                    "matcher": result.matcher,
                    "architecture": result.architecture,
                    "selection": result.selection,
                    "ipc": result.ipc,
                    "student": student,
                    "seeds": len(values["top1"]),
                    "top1_mean": top1_mean,
                    "top1_std": top1_std,
                    "top1_per_seed": values["top1"],
                    "top5_mean": mean_std(values["top5"])[0],
                    "seconds_per_seed": mean_std(values["seconds"])[0],
                    "setup_seconds": result.teacher_seconds,
                    "teacher_top1": result.teacher_top1,
                    "table": result.table,
                    "labels": result.labels,
                    "label_teacher_top1": result.label_teacher_top1,
                    "label_identity": result.label_identity,
                    "recovery_budget": result.recovery_budget,
                    "seed_list": list(values["seeds"]),
                }
            )
    add_gains(rows)
    return rows


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: (" ".join(f"{v:.2f}" for v in value) if key in ("top1_per_seed", "gain_per_seed") and value else _csv_value(value))
                for key, value in row.items()
            }
        )
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return value


def write_results(
    out_dir: str | Path,
    plan: Any,
    results: list[CellResult],
    seconds: float,
    *,
    complete: bool,
    teachers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``results.json`` (suite, protocol, teachers, every cell and seed, table, cross-teacher table,
    reading) and ``results.csv``, atomically."""
    out_dir = Path(out_dir)
    rows = summary_rows(plan.suite.name, results)
    document = {
        "scdd_bench": 1,
        "suite": dataclasses.asdict(plan.suite),
        "complete": complete,
        "wall_seconds": round(seconds, 1),
        "protocol": {
            "dataset": plan.base.dataset,
            "data_root": plan.base.data_root,
            "eval_split": plan.base.eval_split,
            "validation_fraction": plan.base.validation_fraction if plan.base.eval_split == "validation" else None,
            "teacher_seed": plan.base.seed,
            "seeds": list(plan.suite.seeds),
            "labels": plan.suite.labels or "each row's own teacher",
            "cells": [
                {
                    "label": cell.row.label,
                    "ipc": cell.ipc,
                    "table": cell.table,
                    "labels": cell.labels_name,
                    "config": dataclasses.asdict(cell.config),
                    "label_teacher": {
                        "squeeze": dataclasses.asdict(cell.label_teacher.squeeze),
                        "align": dataclasses.asdict(cell.label_teacher.align),
                    },
                }
                for cell in plan.cells
            ],
        },
        "teachers": teachers or {},
        "cells": [dataclasses.asdict(result) for result in results],
        "table": rows,
        "cross_table": cross_table(rows, plan.suite),
        "reading": reading(rows),
    }
    write_json(out_dir / RESULTS_JSON, document)
    with atomic_path(out_dir / RESULTS_CSV) as tmp:
        tmp.write_text(csv_text(rows))
    return document
