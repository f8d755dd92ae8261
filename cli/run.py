"""``scdd run``: every stage, squeeze to evaluate, into one run folder."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click

import scdd.cli.options as opt
from scdd.cli.render import artifacts_table
from scdd.cli.render import out as stdout
from scdd.errors import ConfigError

# --set names of the options `scdd run` takes directly
SETTINGS = {
    "pretrainer": "squeeze.pretrainer",
    "backbone": "squeeze.architecture",
    "aligner": "align.aligner",
    "matcher": "recover.matcher",
    "ipc": "recover.ipc",
    "runs": "posttrain.runs",
    "method": "method",
    "dataset": "dataset",
    "seed": "seed",
    "device": "device",
}


@click.command()
@click.option("--pretrainer", help="Squeeze objective, e.g. moco_v3 (see `scdd plugins`).")
@click.option("--backbone", help="Architecture to squeeze and recover from.")
@click.option("--aligner", help="Alignment strategy, e.g. linear-probe.")
@click.option("--matcher", help="Statistic matcher for recovery, e.g. imbalanced-bn.")
@click.option("--ipc", type=click.IntRange(min=1), help="Distilled images per class.")
@click.option("--students", help="Comma-separated post-train architectures (see `scdd archs`).")
@click.option("--method", help="sc-dd (recover synthetic images), coreset-random or coreset-herding (real images).")
@opt.label_options
@click.option("--runs", type=click.IntRange(min=1), help="Post-train each student this many times; reports mean ± std.")
@opt.data_options
@click.option("--out", type=opt.FILE, help="Run folder (default: runs/<timestamp>).")
@click.option(
    "--resume",
    "resume_dir",
    type=opt.FILE,
    help="Continue the interrupted run in this folder with the settings its manifest records.",
)
@click.option(
    "--config",
    "recipe",
    type=opt.FILE,
    help="Recipe file of settings (TOML or JSON, or a run's manifest.json); options and --set win over it.",
)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Print the resolved settings (a recipe file) and the estimated wall time per stage; run nothing.",
)
@click.option(
    "--log",
    type=click.Choice(["csv", "tensorboard"]),
    default="csv",
    show_default=True,
    help="Loss curves: <stage>/curves.csv always; tensorboard also writes RUN/tensorboard/ (extra scdd[tensorboard]).",
)
@opt.run_options
def run(**args):
    """Run every stage, squeeze to evaluate, into one run folder.

    With no options it distils the embedded MNIST subset with MoCo v3 and imbalanced BN matching.
    A dataset with no preset gets settings sized to its images and the device, its budgets fitted to
    about 8 minutes at the speed measured on this machine (printed first, with the time per stage).
    The same command on the same --out continues an interrupted run (so does --resume DIR).
    --config FILE reads settings from a recipe (`scdd presets export NAME` writes one); --plan prints
    the resolved settings and the estimated time per stage, measured on this machine, and runs nothing.
    """
    # lazy: the pipeline imports torch, which `scdd --help` must not
    from scdd.pipeline import run_pipeline
    from scdd.resolve import resolve_run
    from scdd.run_folder import MANIFEST_FILE, recorded_config

    direct = {setting: args[option] for option, setting in SETTINGS.items()}
    direct["data_root"] = opt.data_root_text(args["data_root"])
    direct["posttrain.students"] = args["students"].split(",") if args["students"] else None
    direct.update(opt.label_settings(args["label_mode"], args["label_topk"], args["label_precision"], args["mix"]))
    given = opt.overrides(args["settings"], **direct)
    out, quiet = args["out"], args["quiet"]
    data, notes = None, {}
    if args["log"] == "tensorboard":
        from scdd.curves import tensorboard_writer

        tensorboard_writer(Path("."), create=False)  # a missing extra fails before any work
    if args["resume_dir"] is not None:  # the manifest's settings; options given too must agree with them
        if args["recipe"] is not None:
            raise ConfigError("--resume takes the settings the run recorded; leave out --config")
        config, out = recorded_config(args["resume_dir"], out, args["preset"], given), args["resume_dir"]
    else:
        resolved = resolve_run(given, args["preset"], recipe=args["recipe"], out=out)
        config, data, notes = resolved.config, resolved.data, resolved.notes
        if args["plan_only"]:
            from scdd.cli.plan import print_plan

            print_plan(resolved)
            return
        _echo_sizing(notes.get("sizing"), config.dataset, quiet)
        if resolved.plan is not None and not quiet and not opt.secondary_rank():
            from scdd.cli.plan import estimate_lines

            click.echo("\n".join(estimate_lines(resolved.plan, config)))
    out = out or Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tensorboard = args["log"] == "tensorboard"
    with opt.progress(quiet) as shown:
        record = run_pipeline(config, out, progress=shown, overwrite=args["overwrite"], data=data, notes=notes, tensorboard=tensorboard)
    opt.warn_skipped(record.data.get("skipped"), record.data.get("skipped_files"))
    opt.echo_results({"teacher (aligned)": record.metrics["teacher"], **record.metrics["students"]}, quiet)
    opt.echo_label_storage(record.stages.get("relabel", {}).get("metrics", {}))
    if quiet:
        click.echo(str(out / MANIFEST_FILE))
    else:
        stdout.print(artifacts_table(record.stages, str(out)))
        stdout.print(f"manifest: {out / MANIFEST_FILE}")


def _echo_sizing(sizing, dataset: str, quiet: bool) -> None:
    """The settings sized to the data and the device (no preset applies), one per line, before the run."""
    if not sizing or quiet or opt.secondary_rank():
        return
    inputs = sizing["inputs"]
    click.echo(
        f"{dataset} has no preset: settings sized to {inputs['train_images']:,} training images of {inputs['image_size']} px, "
        f"{inputs['classes']} classes, on {inputs['device']} (recorded in the manifest; --preset or --set override them)"
    )
    for setting, value, why in sizing["settings"]:
        click.echo(f"  {setting} = {value}  ({why})")
