"""The tables ``scdd bench`` shows: its results (top-1 and the paired gain over random real images
with identical labels), its teachers, the cross-teacher table, the suites and a suite's plan."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from scdd.cli.render import scientific


def _gain_text(row: dict[str, Any]) -> str:
    if row["gain_mean"] is not None:
        return f"{row['gain_mean']:+.2f} ± {row['gain_std']:.2f}"
    return "-" if row["gain_note"] == "baseline" else f"n/a ({row['gain_note']})"


def bench_table(rows: list[dict[str, Any]], title: str) -> Table:
    """method × IPC × student: top-1 mean ± std over seeds, the paired gain over random real with identical
    labels, the labelling teacher, seconds per seed, the image teacher's setup seconds and top-1."""
    table = Table(title=title, pad_edge=False)
    table.add_column("method", min_width=12)
    table.add_column("IPC", justify="right", no_wrap=True)
    table.add_column("student", no_wrap=True)
    table.add_column("top-1 %", justify="right", no_wrap=True)
    table.add_column("gain vs random real", justify="right")
    table.add_column("labels")
    for column in ("s/seed", "setup s", "teacher"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row["label"],
            str(row["ipc"]),
            row["student"],
            f"{row['top1_mean']:.2f} ± {row['top1_std']:.2f}",
            _gain_text(row),
            row["labels"],
            f"{row['seconds_per_seed']:.1f}",
            "-" if row["setup_seconds"] is None else f"{row['setup_seconds']:.1f}",
            "-" if row["teacher_top1"] is None else f"{row['teacher_top1']:.1f}",
        )
    return table


def teachers_table(teachers: dict[str, dict[str, Any]], title: str) -> Table:
    """Every teacher of a bench: components, top-1, squeeze + align seconds, BatchNorm statistics (Table 2, Eq. 7)."""
    table = Table(title=title, pad_edge=False)
    for column in ("pretrainer", "architecture", "aligner"):
        table.add_column(column)
    for column in ("top-1 %", "seconds", "BN₀ Var(μ)", "mean Var(μ)", "mean Var(σ²)", "mean entropy"):
        table.add_column(column, justify="right", no_wrap=True)
    for teacher in teachers.values():
        options = ",".join(f"{k}={v}" for k, v in teacher["architecture_options"].items())
        table.add_row(
            teacher["pretrainer"],
            teacher["architecture"] + (f" ({options})" if options else ""),
            teacher["aligner"],
            f"{teacher['top1']:.1f}",
            f"{teacher['seconds']:.0f}",
            *(scientific(teacher[key]) for key in ("bn_first_mean_variance", "bn_mean_variance", "bn_var_variance")),
            f"{teacher['bn_entropy']:.3f}",
        )
    return table


def cross_teacher_table(rows: list[dict[str, Any]], title: str) -> Table:
    """Images (rows) relabelled by each teacher: top-1 mean ± std and the gain over random real with those labels."""
    table = Table(title=title, pad_edge=False)
    for column in ("images", "IPC", "student", "labels", "label teacher"):
        table.add_column(column, no_wrap=column != "images")
    table.add_column("top-1 %", justify="right", no_wrap=True)
    table.add_column("gain vs random real", justify="right")
    for row in rows:
        table.add_row(
            row["label"],
            str(row["ipc"]),
            row["student"],
            row["labels"],
            "-" if row["label_teacher_top1"] is None else f"{row['label_teacher_top1']:.1f}",
            f"{row['top1_mean']:.2f} ± {row['top1_std']:.2f}",
            _gain_text(row),
        )
    return table


def suites_table(suites: list[tuple[str, int, str, str]]) -> Table:
    table = Table(title="bench suites")
    for column in ("suite", "rows", "ipc × seeds", "description"):
        table.add_column(column)
    for name, rows, grid, description in suites:
        table.add_row(name, str(rows), grid, description)
    return table


def plan_table(suite_name: str, cells: list[tuple[str, int, str, str, str, str]], counts: dict[str, int]) -> Table:
    table = Table(title=f"plan of suite {suite_name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for column in ("row", "IPC", "squeeze / selection", "labels", "recover", "students"):
        table.add_column(column)
    for label, ipc, source, labels, recover, students in cells:
        table.add_row(label, str(ipc), source, labels, recover, students)
    return table
