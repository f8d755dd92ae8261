"""Everything the CLI shows goes through here: rich progress bars, tables and messages."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=True)
out = Console()


class _RichTask:
    def __init__(self, progress: Progress, task_id: Any) -> None:
        self._progress, self._id = progress, task_id

    def advance(self, steps: int = 1, **metrics: float) -> None:
        if metrics:
            text = "  ".join(f"{key}={_short(value)}" for key, value in metrics.items())
            self._progress.update(self._id, advance=steps, metrics=text)
        else:
            self._progress.update(self._id, advance=steps)

    def close(self) -> None:
        self._progress.stop_task(self._id)


class RichProgress:
    """The library's ``Progress`` protocol as rich progress bars with live loss terms."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=console,
        )

    def __enter__(self) -> "RichProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def task(self, description: str, total: int) -> _RichTask:
        return _RichTask(self._progress, self._progress.add_task(description, total=total, metrics=""))

    def log(self, message: str) -> None:
        self._progress.console.print(message)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def results_table(metrics: dict[str, Any], title: str = "held-out accuracy (%)") -> Table:
    table = Table(title=title)
    table.add_column("model")
    table.add_column("top-1", justify="right")
    table.add_column("top-5", justify="right")
    for name, values in metrics.items():
        table.add_row(name, f"{values['top1']:.2f}", f"{values['top5']:.2f}")
    return table


def artifacts_table(stages: dict[str, dict[str, Any]], root: str) -> Table:
    table = Table(title=f"artifacts in {root}")
    table.add_column("stage")
    table.add_column("artifact")
    table.add_column("path")
    table.add_column("seconds", justify="right")
    for stage, info in stages.items():
        for key, path in info.get("artifacts", {}).items():
            table.add_row(stage, key, str(path), f"{info.get('seconds', 0):.1f}")
    return table


def components_table(rows: list[tuple[str, str, str, str, str]]) -> Table:
    table = Table(title="registered components")
    for column in ("kind", "name", "aliases", "plugin", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def plugins_table(rows: list[tuple[str, str, str, str]]) -> Table:
    table = Table(title="plugins")
    for column in ("plugin", "package", "version", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def prune_table(rows: dict[str, dict[str, Any]], title: str) -> Table:
    """``scdd prune``'s before/after table: held-out accuracy, parameters, FLOPs, prunable channels."""
    table = Table(title=title)
    for column in ("model", "top-1 %", "top-5 %", "parameters", "FLOPs", "prunable channels"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in rows.items():
        table.add_row(
            name,
            f"{row['top1']:.2f}",
            f"{row['top5']:.2f}",
            f"{row['parameters']:,}",
            f"{row['flops'] / 1e6:,.2f} M",
            str(row["prunable_channels"]),
        )
    return table
