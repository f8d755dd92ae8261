"""Everything the CLI shows goes through here: rich progress bars, tables and messages."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=True)
out = Console()


class _RichTask:
    def __init__(self, progress: Progress, task_id: Any, transient: bool = False) -> None:
        self._progress, self._id, self._transient = progress, task_id, transient

    def advance(self, steps: int = 1, **metrics: float) -> None:
        if metrics:
            text = "  ".join(f"{key}={_short(value)}" for key, value in metrics.items())
            self._progress.update(self._id, advance=steps, metrics=text)
        else:
            self._progress.update(self._id, advance=steps)

    def close(self) -> None:
        self._progress.stop_task(self._id)
        if self._transient:
            self._progress.remove_task(self._id)


class RichProgress:
    """The library's ``Progress`` protocol as rich progress bars with live loss terms.

    With ``transient_tasks`` a finished bar is removed (long benches would otherwise stack hundreds)."""

    def __init__(self, transient_tasks: bool = False) -> None:
        self._transient = transient_tasks
        self._progress = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=console,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def task(self, description: str, total: int) -> _RichTask:
        task_id = self._progress.add_task(description, total=total, metrics="")
        return _RichTask(self._progress, task_id, self._transient)

    def log(self, message: str) -> None:
        self._progress.console.print(message)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _millions(count: Any) -> str:
    return f"{count / 1e6:.2f}M" if count else "-"


def _mean_std(values: dict[str, Any], key: str) -> str:
    if f"{key}_std" in values:
        return f"{values[key]:.2f} ± {values[f'{key}_std']:.2f}"
    return f"{values[key]:.2f}"


def results_table(metrics: dict[str, Any], title: str = "held-out accuracy (%)") -> Table:
    """Top-1 / top-5 per model (mean ± std over runs where repeated), with parameter counts when known:
    the form of the paper's cross-architecture Table 8."""
    with_params = any(values.get("params") for values in metrics.values())
    table = Table(title=title)
    table.add_column("model")
    if with_params:
        table.add_column("#params", justify="right")
    table.add_column("top-1", justify="right")
    table.add_column("top-5", justify="right")
    for name, values in metrics.items():
        params = [_millions(values.get("params"))] if with_params else []
        table.add_row(name, *params, _mean_std(values, "top1"), _mean_std(values, "top5"))
    return table


def architectures_table(rows: list[Any], title: str) -> Table:
    table = Table(title=f"architectures ({title})")
    for column in ("name", "aliases", "#params", "description"):
        table.add_column(column, justify="right" if column == "#params" else "left")
    for row in rows:
        table.add_row(row.name, ", ".join(row.aliases), _millions(row.params), row.description)
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


def preset_table(name: str, rows: list[tuple[str, Any, str, str]]) -> Table:
    table = Table(title=f"preset {name}")
    for column in ("setting", "value", "source", "note"):
        table.add_column(column, overflow="fold")
    for setting, value, source, note in rows:
        shown = ", ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
        table.add_row(setting, shown, source, note)
    return table


# ----------------------------------------------------------------------------- analyses


def scientific(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def bn_summary_table(results: list[Any]) -> Table:
    """One row per checkpoint: the first BN layer's statistics (k = 0; Table 2's "BN-mean Var") and means over layers."""
    table = Table(title="BN running statistics per checkpoint (k0: first BN layer; mean: over layers)")
    for column in ("checkpoint", "architecture", "BNs"):
        table.add_column(column)
    for column in ("k0 Var(μ)", "k0 Var(σ²)", "k0 H", "mean Var(μ)", "mean Var(σ²)", "mean H"):
        table.add_column(column, justify="right")
    for result in results:
        summary = result.summary()
        table.add_row(
            result.label,
            result.architecture,
            str(len(result.layers)),
            scientific(summary["first_bn_mean_variance"]),
            scientific(summary["first_bn_var_variance"]),
            f"{summary['first_bn_entropy']:.3f}",
            scientific(summary["mean_mean_variance"]),
            scientific(summary["mean_var_variance"]),
            f"{summary['mean_entropy']:.3f}",
        )
    return table


BN_METRICS = (
    ("mean_variance", "Var over channels of the running mean (Table 2's BN-mean Var)"),
    ("var_variance", "Var over channels of the running variance"),
    ("entropy", "mean Gaussian entropy ½·log(2πeσ²) over channels (Eq. 7)"),
)


def bn_layer_tables(results: list[Any]) -> list[Table]:
    """One table per statistic: BN layers as rows, checkpoints as columns."""
    names: list[tuple[int, str]] = []
    for result in results:
        for layer in result.layers:
            if (layer.index, layer.name) not in names:
                names.append((layer.index, layer.name))
    tables = []
    for attribute, title in BN_METRICS:
        table = Table(title=title)
        table.add_column("k", justify="right")
        table.add_column("BN layer")
        for result in results:
            table.add_column(result.label, justify="right")
        for index, name in sorted(names):
            cells = []
            for result in results:
                layer = next((s for s in result.layers if s.name == name), None)
                value = None if layer is None else getattr(layer, attribute)
                cells.append("-" if value is None else (f"{value:.3f}" if attribute == "entropy" else scientific(value)))
            table.add_row(str(index), name, *cells)
        tables.append(table)
    return tables


def import_table(report: dict[str, Any], source: str) -> Table:
    """What ``scdd import-checkpoint`` kept and dropped, by group of tensors."""
    table = Table(title=f"{source}: {report['layout']}")
    table.add_column("")
    table.add_column("tensors", justify="right")
    table.add_column("what")
    for verdict, rows in (("kept", report["kept"]), ("dropped", report["dropped"])):
        for label, count in rows:
            table.add_row(f"[green]{verdict}[/green]" if verdict == "kept" else f"[red]{verdict}[/red]", str(count), label)
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
