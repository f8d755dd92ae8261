"""``scdd run``: every stage, squeeze to evaluate, into one run folder."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click

from scdd.cli.options import (
    data_options,
    data_root_text,
    echo_label_storage,
    echo_results,
    label_options,
    label_settings,
    overrides,
    progress,
    run_options,
    warn_skipped,
)
from scdd.cli.render import artifacts_table, out as stdout


@click.command()
@click.option("--pretrainer", help="Squeeze objective, e.g. moco_v3 (see `scdd plugins`).")
@click.option("--backbone", help="Architecture to squeeze and recover from.")
@click.option("--aligner", help="Alignment strategy, e.g. linear-probe.")
@click.option("--matcher", help="Statistic matcher for recovery, e.g. imbalanced-bn.")
@click.option("--ipc", type=click.IntRange(min=1), help="Distilled images per class.")
@click.option("--students", help="Comma-separated post-train architectures (see `scdd archs`).")
@click.option("--method", help="sc-dd (recover synthetic images), coreset-random or coreset-herding (real images).")
@label_options
@click.option("--runs", type=click.IntRange(min=1), help="Post-train each student this many times; reports mean ± std.")
@data_options
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (default: runs/<timestamp>).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path),
              help="Continue the interrupted run in this folder with the settings its manifest records.")
@run_options
def run(
    pretrainer, backbone, aligner, matcher, ipc, students, method, label_mode, label_topk, label_precision, mix, runs,
    dataset, data_root, out, resume_dir, seed, device, preset, quiet, overwrite, settings,
):
    """Run every stage, squeeze to evaluate, into one run folder.

    With no options it distils the embedded MNIST subset with MoCo v3 and imbalanced BN matching.
    The same command on the same --out continues an interrupted run (so does --resume DIR).
    """
    # lazy: the pipeline imports torch, which `scdd --help` must not
    from scdd.config import make_run_config
    from scdd.pipeline import run_pipeline
    from scdd.run_folder import MANIFEST_FILE, recorded_config

    direct = {
        "dataset": dataset,
        "data_root": data_root_text(data_root),
        "seed": seed,
        "device": device,
        "squeeze.pretrainer": pretrainer,
        "squeeze.architecture": backbone,
        "align.aligner": aligner,
        "recover.matcher": matcher,
        "recover.ipc": ipc,
        "posttrain.students": students.split(",") if students else None,
        "posttrain.runs": runs,
        "method": method,
        **label_settings(label_mode, label_topk, label_precision, mix),
    }
    if resume_dir is not None:  # the manifest's settings; options given too must agree with them
        config, out = recorded_config(resume_dir, out, preset, overrides(settings, **direct)), resume_dir
    else:
        config = make_run_config(overrides(settings, **direct), preset)
    out = out or Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    with progress(quiet) as shown:
        record = run_pipeline(config, out, progress=shown, overwrite=overwrite)
    warn_skipped(record.data.get("skipped"), record.data.get("skipped_files"))
    echo_results({"teacher (aligned)": record.metrics["teacher"], **record.metrics["students"]}, quiet)
    echo_label_storage(record.stages.get("relabel", {}).get("metrics", {}))
    if quiet:
        click.echo(str(out / MANIFEST_FILE))
    else:
        stdout.print(artifacts_table(record.stages, str(out)))
        stdout.print(f"manifest: {out / MANIFEST_FILE}")
