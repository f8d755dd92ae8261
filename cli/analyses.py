"""Analysis commands: ``scdd inspect bn-stats``, ``scdd report`` and ``scdd bench``.

Like the rest of the CLI, these parse options, call the library and render; torch and
matplotlib are imported inside the command bodies.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path
from typing import Any

import click

from scdd.cli.bench_tables import bench_table, cross_teacher_table, plan_table, suites_table, teachers_table
from scdd.cli.options import data_options, data_root_text, overrides, progress, set_option
from scdd.cli.render import bn_layer_tables, bn_summary_table
from scdd.cli.render import out as stdout
from scdd.errors import ConfigError


def _int_list(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint=option) from None


# ----------------------------------------------------------------------------- inspect


@click.group()
def inspect() -> None:
    """Inspect artifacts (BatchNorm statistics of checkpoints)."""


@inspect.command("bn-stats")
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--label", "labels", multiple=True, help="Name for each checkpoint, in order (repeatable).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), help="Save the Fig. 4-style figure here (.png, .pdf, .svg).")
@click.option("--layer", default="0", show_default=True, help="BN layer drawn per channel in the plot: index k or module name.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the statistics as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Plain tab-separated output.")
def bn_stats(checkpoints, labels, plot_path, layer, json_path, quiet):
    """Channel statistics of every BN layer of backbone / classifier CHECKPOINTS, side by side.

    Per layer: variance over channels of the running means (Table 2's "BN-mean Var") and of the
    running variances, and the mean Gaussian entropy ½·log(2πeσ²) (Theorem 1, Eq. 7).
    """
    # lazy: the statistics are read with torch
    from scdd.analysis.bn_stats import inspect_checkpoints, to_json
    from scdd.artifacts import write_json

    if labels and len(labels) != len(checkpoints):
        raise ConfigError(f"{len(labels)} --label values for {len(checkpoints)} checkpoints")
    results = inspect_checkpoints(list(checkpoints), list(labels) or None)
    if quiet:
        click.echo("checkpoint\tk\tlayer\tchannels\tvar_running_mean\tvar_running_var\tentropy")
        for result in results:
            for s in result.layers:
                click.echo(
                    f"{result.label}\t{s.index}\t{s.name}\t{s.channels}\t{s.mean_variance:.6g}\t{s.var_variance:.6g}\t{s.entropy:.6g}"
                )
    else:
        for table in bn_layer_tables(results):
            stdout.print(table)
        stdout.print(bn_summary_table(results))
        if len(results) > 1:
            ranked = sorted(results, key=lambda r: r.summary()["first_bn_mean_variance"], reverse=True)
            top, bottom = ranked[0].summary(), ranked[-1].summary()
            ratio = top["first_bn_mean_variance"] / max(bottom["first_bn_mean_variance"], 1e-300)
            stdout.print(
                f"Largest first-BN running-mean variance: {ranked[0].label} ({ratio:.3g}× {ranked[-1].label}); "
                f"mean entropy over layers {top['mean_entropy']:.3f} vs {bottom['mean_entropy']:.3f}."
            )
    if plot_path is not None:
        from scdd.analysis.bn_plot import plot_bn_stats  # lazy: matplotlib

        path = plot_bn_stats(results, plot_path, int(layer) if layer.isdigit() else layer)
        click.echo(f"plot: {path}", err=quiet)
    if json_path is not None:
        write_json(json_path, to_json(results))


# ----------------------------------------------------------------------------- report


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the page (default RUN_DIR/report.html).")
@click.option("--classes", help="Classes for the clustering plot, comma-separated names or indices (default: the run's setting).")
def report(run_dir, out, classes):
    """(Re)build the self-contained report.html of a run folder from its manifest and artifacts."""
    from scdd.report.page import RunFolder, report_config, write_report  # lazy: torch and matplotlib

    config = None
    if classes is not None:
        config = dataclasses.replace(report_config(RunFolder(run_dir), None), cluster_classes=classes)
    click.echo(str(write_report(run_dir, out, config, check_classes=True)))


# ----------------------------------------------------------------------------- bench


@click.command()
@click.option("--suite", "suite_name", default="fair", show_default=True, help="Named suite (see --list).")
@click.option("--suite-file", type=click.Path(path_type=Path), help="A suite written as JSON instead of a named one.")
@click.option("--list", "list_suites", is_flag=True, help="List the named suites and exit.")
@click.option("--plan", "plan_only", is_flag=True, help="Resolve and check every row, print the work, run nothing.")
@click.option("--ipc", help="Comma-separated IPC values instead of the suite's.")
@click.option("--seeds", help="Comma-separated seeds instead of the suite's.")
@click.option("--students", help="Comma-separated student architectures instead of the suite's.")
@data_options
@click.option("--out", type=click.Path(path_type=Path), help="Bench folder (default: bench/<suite>-<timestamp>).")
@click.option("--seed", type=int, help="Seed of the shared squeeze + align (default 0).")
@click.option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--preset", help="Named preset under the suite's budget (default: the dataset's own).")
@click.option(
    "--eval-split",
    type=click.Choice(["held-out", "validation"]),
    help="validation: train on the training images minus a carve and report on the carve (for choosing budgets).",
)
@click.option("--rerun-cell", type=click.Path(path_type=Path), help="Run one cell again from its manifest.json (or folder).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; print the table as tab-separated text.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Allow writing into a non-empty --out folder. An earlier bench's folder is continued without it, reusing "
    "the teachers and cells that finished there with the same settings; --overwrite runs everything again.",
)
@set_option
def bench(
    suite_name,
    suite_file,
    list_suites,
    plan_only,
    ipc,
    seeds,
    students,
    dataset,
    data_root,
    out,
    seed,
    device,
    preset,
    eval_split,
    rerun_cell,
    quiet,
    overwrite,
    settings,
):
    """Run a suite of pipelines under one protocol; print one table (method × IPC × student: top-1 mean ± std
    over seeds, the paired gain over random real images with identical labels, wall time), the cross-teacher
    table, and write them as results.json and results.csv."""
    from scdd.bench import SUITES, get_suite, load_suite_file, plan_suite, run_suite  # lazy: torch
    from scdd.bench import rerun_cell as rerun

    if list_suites:
        listed = []
        for name in SUITES:
            suite = get_suite(name)
            listed.append((name, len(suite.rows), f"{list(suite.ipc)} × {len(suite.seeds)}", suite.description))
        stdout.print(suites_table(listed))
        return
    if rerun_cell is not None:
        out = out or Path("bench") / f"cell-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        document = rerun(rerun_cell, out, device=device, overwrite=overwrite)
        for row in document["table"]:
            click.echo(f"{row['label']}\tipc {row['ipc']}\t{row['student']}\tlabels {row['labels']}\ttop-1 {row['top1_mean']:.2f}")
        return
    suite = load_suite_file(suite_file) if suite_file is not None else get_suite(suite_name)
    replaced: dict[str, Any] = {"ipc": _int_list(ipc, "--ipc"), "seeds": _int_list(seeds, "--seeds")}
    if students:
        replaced["students"] = tuple(part for part in students.split(",") if part)
    suite = dataclasses.replace(suite, **{k: v for k, v in replaced.items() if v is not None})
    given = overrides(settings, dataset=dataset, data_root=data_root_text(data_root), seed=seed, device=device, eval_split=eval_split)
    if plan_only:
        plan = plan_suite(suite, given, preset)
        cells = [
            (
                cell.row.label,
                cell.ipc,
                f"{cell.config.squeeze.pretrainer} / {cell.config.squeeze.architecture}"
                + "".join(f" + {extra.squeeze.pretrainer}" for extra in cell.extra_teachers)
                if cell.row.method == "distill"
                else f"{cell.row.selection} real",
                cell.labels_name + (" (cross table)" if cell.table == "cross" else ""),
                f"{cell.config.recover.matcher}, {cell.config.recover.iterations} it" if cell.row.method == "distill" else "-",
                ", ".join(cell.config.posttrain.students),
            )
            for cell in plan.cells
        ]
        stdout.print(plan_table(suite.name, cells, plan.counts()))
        return
    out = out or Path("bench") / f"{suite.name}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    with progress(quiet, transient=True) as shown:
        document = run_suite(suite, out, overrides=given, preset=preset, progress=shown, overwrite=overwrite)
    rows = [row for row in document["table"] if row["table"] == "main"]
    split = document["protocol"]["eval_split"]
    if quiet:
        click.echo("method\tipc\tstudent\tlabels\ttop1_mean\ttop1_std\tgain_mean\tgain_std\tseeds\tseconds_per_seed")
        for row in rows:
            click.echo(
                f"{row['label']}\t{row['ipc']}\t{row['student']}\t{row['labels']}\t{row['top1_mean']:.2f}\t{row['top1_std']:.2f}\t"
                f"{_gain(row)}\t{row['seeds']}\t{row['seconds_per_seed']:.1f}"
            )
        click.echo(
            "teachers\npretrainer\tarchitecture\taligner\ttop1\tseconds\tbn_first_mean_variance\tbn_mean_variance\tbn_var_variance\tbn_entropy"
        )
        for teacher in document["teachers"].values():
            click.echo(
                "\t".join(
                    str(teacher[key])
                    for key in (
                        "pretrainer",
                        "architecture",
                        "aligner",
                        "top1",
                        "seconds",
                        "bn_first_mean_variance",
                        "bn_mean_variance",
                        "bn_var_variance",
                        "bn_entropy",
                    )
                )
            )
        if document["cross_table"]:
            click.echo("cross-teacher table\nimages\tipc\tstudent\tlabels\tlabel_teacher_top1\ttop1_mean\ttop1_std\tgain_mean\tgain_std")
            for row in document["cross_table"]:
                click.echo(
                    f"{row['label']}\t{row['ipc']}\t{row['student']}\t{row['labels']}\t{row['label_teacher_top1']:.1f}\t"
                    f"{row['top1_mean']:.2f}\t{row['top1_std']:.2f}\t{_gain(row)}"
                )
    else:
        title = (
            f"suite {suite.name} on {document['protocol']['dataset']}: {split} top-1, mean ± std over seeds "
            f"{list(suite.seeds)}; gain over random real with identical labels (paired by seed); seconds per seed; "
            "image teacher's squeeze + align seconds and top-1"
        )
        stdout.print(bench_table(rows, title))
        stdout.print(teachers_table(document["teachers"], f"teachers ({split} top-1, BatchNorm running statistics)"))
        if document["cross_table"]:
            stdout.print(cross_teacher_table(document["cross_table"], f"cross-teacher table: images × labelling teacher ({split} top-1)"))
    for line in document["reading"]:
        click.echo(line)
    click.echo(f"wall time {document['wall_seconds']:.0f} s; results: {out / 'results.json'}, {out / 'results.csv'}")


def _gain(row) -> str:
    """Tab-separated gain mean and std ("nan" where the row has no comparable random-real baseline)."""
    if row["gain_mean"] is None:
        return "nan\tnan"
    return f"{row['gain_mean']:+.2f}\t{row['gain_std']:.2f}"


COMMANDS = (inspect, report, bench)
