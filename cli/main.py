"""The ``scdd`` command: parses options, calls the library, renders the result.

Heavy imports (torch and everything that needs it) happen inside command bodies, so
``scdd --help`` and ``scdd plugins`` start fast.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from scdd import __version__


class ScddGroup(click.Group):
    """Turns the library's typed errors into one-line messages (``--debug`` keeps the traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            from scdd.errors import ScddError

            debug = bool(ctx.obj and ctx.obj.get("debug"))
            if isinstance(error, ScddError) and not debug:
                raise click.ClickException(" ".join(str(error).split())) from None
            raise


@click.group(cls=ScddGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scdd")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Dataset distillation by self-supervised compression (SC-DD).

    Squeeze a backbone with a self-supervised objective, align it to the labels, recover
    synthetic images by BN-statistic matching, relabel them, and post-train students.
    `scdd run` does all of it; each stage is also a command of its own.
    """
    ctx.ensure_object(dict)["debug"] = debug


# ----------------------------------------------------------------------------- shared options


def _set_option(function):
    return click.option(
        "--set",
        "settings",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override any setting, e.g. --set recover.iterations=500 or "
        "--set squeeze.pretrainer_options.epochs=20 (repeatable; values are JSON or text).",
    )(function)


def _remember_download(ctx: click.Context, _param, value: bool) -> bool:
    if value:
        ctx.meta["scdd.download"] = True
    return value


def _remember_strict(ctx: click.Context, _param, value: bool) -> bool:
    if value:
        ctx.meta["scdd.strict"] = True
    return value


def _warn_skipped(skipped, count: int | None = None) -> None:
    """One line on stderr when undecodable image files were left out."""
    if skipped:
        click.echo(f"warning: skipped {count or len(skipped)} image file(s) that could not be decoded (first: {skipped[0]}); "
                   "--strict makes this an error", err=True)


def _data_options(function):
    function = click.option(
        "--strict", is_flag=True, expose_value=False, callback=_remember_strict,
        help="Stop at an image file that cannot be decoded (default: skip it and count it in the manifest).",
    )(function)
    function = click.option(
        "--download", is_flag=True, expose_value=False, callback=_remember_download,
        help="Let the dataset reader download missing files (datasets that can, e.g. cifar10).",
    )(function)
    function = click.option("--data-root", type=click.Path(path_type=Path), help="Folder holding the dataset's files.")(function)
    return click.option("--dataset", help="Registered dataset name (default: the embedded mnist5k).")(function)


def _run_options(function):
    for decorator in reversed(
        [
            click.option("--seed", type=int, help="Run seed (default 0)."),
            click.option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N."),
            click.option("--preset", help="Named preset of settings (default: the dataset's own, if any)."),
            click.option("--quiet", "-q", is_flag=True, help="No progress bars; print results only."),
            click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty --out folder."),
            _set_option,
        ]
    ):
        function = decorator(function)
    return function


def _overrides(settings: tuple[str, ...], **direct: Any) -> dict[str, Any]:
    """Nested overrides from ``--set`` pairs plus directly given options (``None`` means not given)."""
    from scdd._options import parse_option_pairs
    from scdd._options import dotted_to_nested

    pairs = parse_option_pairs(settings)
    pairs.update({key: value for key, value in direct.items() if value is not None})
    context = click.get_current_context(silent=True)
    if context is not None and context.meta.get("scdd.download"):
        pairs["dataset_options.download"] = True
    if context is not None and context.meta.get("scdd.strict"):
        pairs["strict"] = True
    return dotted_to_nested(pairs)


def _progress(quiet: bool):
    from scdd.progress import SilentProgress

    from scdd.cli.render import RichProgress

    if quiet or _secondary_rank():  # under torchrun only rank 0 shows progress
        return _NullContext(SilentProgress())
    return RichProgress()


class _NullContext:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __enter__(self) -> Any:
        return self.value

    def __exit__(self, *exc: object) -> None:
        pass


def _echo_results(metrics: dict[str, Any], quiet: bool) -> None:
    from scdd.cli.render import out, results_table

    if quiet:
        for name, values in metrics.items():
            spread = "".join(f"\t{key}={values[key]:.2f}" for key in ("top1_std", "top5_std") if key in values)
            params = f"\tparams={values['params']}" if values.get("params") else ""
            click.echo(f"{name}\ttop1={values['top1']:.2f}\ttop5={values['top5']:.2f}{spread}{params}")
    else:
        out.print(results_table(metrics))


def _echo_label_storage(metrics: dict[str, Any]) -> None:
    """One line on the soft labels: their encoding and bytes per image per epoch (stored), or online."""
    if metrics.get("mode") == "online":
        click.echo("soft labels: online (teacher labels each crop during post-training; nothing stored)")
    elif metrics.get("mode") == "stored":
        click.echo(
            f"soft labels: {metrics['encoding']}, {metrics['label_bytes_per_image_per_epoch']} B per image per epoch "
            f"(+{metrics['crop_bytes_per_image_per_epoch']} B crop parameters; "
            f"{metrics['stored_bytes_per_image_per_epoch']:.1f} B on disk)"
        )


def _config(settings, preset, **direct):
    from scdd.config import make_run_config

    return make_run_config(_overrides(settings, **direct), preset)


def _data_root(data_root: Path | None) -> str | None:
    return str(data_root) if data_root is not None else None


# ----------------------------------------------------------------------------- run


def _label_options(function):
    for decorator in reversed(
        [
            click.option("--label-mode", type=click.Choice(["stored", "online"]), help="Store soft labels, or run the teacher during post-training."),
            click.option("--label-topk", type=click.IntRange(min=0), help="Store only the top-K probabilities (fp16); 0 keeps all."),
            click.option("--label-precision", type=click.Choice(["fp32", "fp16"]), help="Precision of stored full logits."),
            click.option("--mix", type=click.Choice(["none", "cutmix", "mixup"]), help="Mix each crop with a partner's before labelling."),
        ]
    ):
        function = decorator(function)
    return function


def _label_settings(label_mode, label_topk, label_precision, mix) -> dict[str, Any]:
    return {
        "relabel.mode": label_mode,
        "relabel.label_topk": label_topk,
        "relabel.precision": label_precision,
        "relabel.mix": mix,
    }


@cli.command()
@click.option("--pretrainer", help="Squeeze objective, e.g. moco_v3 (see `scdd plugins`).")
@click.option("--backbone", help="Architecture to squeeze and recover from.")
@click.option("--aligner", help="Alignment strategy, e.g. linear-probe.")
@click.option("--matcher", help="Statistic matcher for recovery, e.g. imbalanced-bn.")
@click.option("--ipc", type=click.IntRange(min=1), help="Distilled images per class.")
@click.option("--students", help="Comma-separated post-train architectures (see `scdd archs`).")
@click.option("--method", help="sc-dd (recover synthetic images), coreset-random or coreset-herding (real images).")
@_label_options
@click.option("--runs", type=click.IntRange(min=1), help="Post-train each student this many times; reports mean ± std.")
@_data_options
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (default: runs/<timestamp>).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path),
              help="Continue the interrupted run in this folder with the settings its manifest records.")
@_run_options
def run(
    pretrainer, backbone, aligner, matcher, ipc, students, method, label_mode, label_topk, label_precision, mix, runs,
    dataset, data_root, out, resume_dir, seed, device, preset, quiet, overwrite, settings,
):
    """Run every stage, squeeze to evaluate, into one run folder.

    With no options it distils the embedded MNIST subset with MoCo v3 and imbalanced BN matching.
    The same command on the same --out continues an interrupted run (so does --resume DIR).
    """
    from scdd.cli.render import artifacts_table, out as stdout
    from scdd.run_folder import MANIFEST_FILE
    from scdd.pipeline import run_pipeline

    direct = {
        "dataset": dataset,
        "data_root": _data_root(data_root),
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
        **_label_settings(label_mode, label_topk, label_precision, mix),
    }
    if resume_dir is not None:  # the manifest's settings; options given too must agree with them
        from scdd.run_folder import recorded_config

        config, out = recorded_config(resume_dir, out, preset, _overrides(settings, **direct)), resume_dir
    else:
        config = _config(settings, preset, **direct)
    out = out or Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    with _progress(quiet) as progress:
        record = run_pipeline(config, out, progress=progress, overwrite=overwrite)
    _warn_skipped(record.data.get("skipped"), record.data.get("skipped_files"))
    results = {"teacher (aligned)": record.metrics["teacher"], **record.metrics["students"]}
    _echo_results(results, quiet)
    _echo_label_storage(record.stages.get("relabel", {}).get("metrics", {}))
    if quiet:
        click.echo(str(out / MANIFEST_FILE))
    else:
        stdout.print(artifacts_table(record.stages, str(out)))
        stdout.print(f"manifest: {out / MANIFEST_FILE}")


# ----------------------------------------------------------------------------- single stages


def _stage_command(function):
    """Common tail of the single-stage commands: --out (required) and the run options."""
    function = _run_options(function)
    return click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for this stage's artifacts.")(function)


def _finish_stage(result, quiet: bool) -> None:
    from scdd.cli.render import out as stdout

    for key, path in result.artifacts.items():
        if quiet:
            click.echo(str(path))
        else:
            stdout.print(f"[bold]{key}[/bold]: {path}")


def _run_resumable(stage: str, out: Path, overwrite: bool, config, inputs: dict, quiet: bool, action):
    """Run ``action(target, progress)`` as a resumable stage command: the same command on the same --out
    continues an interrupted run (or returns its finished result); other settings are refused."""
    from scdd.config import to_dict
    from scdd.run_folder import run_stage_command

    with _progress(quiet) as progress:
        return run_stage_command(
            stage, out, to_dict(config), inputs, overwrite=overwrite, action=lambda target: action(target, progress)
        )


@cli.command()
@click.option("--pretrainer", help="Squeeze objective (see `scdd plugins`).")
@click.option("--backbone", help="Architecture to pretrain.")
@_data_options
@_stage_command
def squeeze(pretrainer, backbone, dataset, data_root, out, seed, device, preset, quiet, overwrite, settings):
    """Pretrain a backbone (self-supervised, or supervised for SRe²L) and save it with its BN statistics."""
    from scdd.config import check_components
    from scdd.data.loading import load_dataset
    from scdd.runtime import resolve_device
    from scdd.stages.squeeze import squeeze as squeeze_stage

    config = _config(
        settings, preset, dataset=dataset, data_root=_data_root(data_root), seed=seed, device=device,
        **{"squeeze.pretrainer": pretrainer, "squeeze.architecture": backbone},
    )
    check_components(config)
    data = load_dataset(config)
    _warn_skipped(data.skipped)
    result = _run_resumable(
        "squeeze", out, overwrite, config, {}, quiet,
        lambda target, p: squeeze_stage(config.squeeze, data, target, device=resolve_device(config.device), seed=config.seed, progress=p),
    )
    _finish_stage(result, quiet)


@cli.command()
@click.argument("backbone_file", type=click.Path(path_type=Path))
@click.option("--aligner", help="Alignment strategy (see `scdd plugins`).")
@_data_options
@_stage_command
def align(backbone_file, aligner, dataset, data_root, out, seed, device, preset, quiet, overwrite, settings):
    """Align a squeezed backbone to the labels (linear probe by default) and save the classifier."""
    from scdd.config import check_components
    from scdd.data.loading import load_dataset
    from scdd.runtime import resolve_device
    from scdd.stages.align import align as align_stage

    config = _config(
        settings, preset, dataset=dataset, data_root=_data_root(data_root), seed=seed, device=device,
        **{"align.aligner": aligner},
    )
    check_components(config)
    data = load_dataset(config)
    _warn_skipped(data.skipped)
    result = _run_resumable(
        "align", out, overwrite, config, {"backbone": backbone_file}, quiet,
        lambda target, p: align_stage(
            config.align, backbone_file, data, target, device=resolve_device(config.device), seed=config.seed, progress=p
        ),
    )
    _finish_stage(result, quiet)
    if not quiet:
        click.echo(f"teacher held-out top-1: {result.metrics['teacher_heldout_top1']:.2f}%")


@cli.command()
@click.argument("classifier_file", type=click.Path(path_type=Path))
@click.option("--matcher", help="Statistic matcher (see `scdd plugins`).")
@click.option("--ipc", type=click.IntRange(min=1), help="Images per class to synthesise.")
@click.option("--dataset", help="Dataset whose preset to use (default: the classifier's).")
@_stage_command
def recover(classifier_file, matcher, ipc, dataset, out, seed, device, preset, quiet, overwrite, settings):
    """Synthesise a distilled set from an aligned classifier (data-free)."""
    from scdd.artifacts import load_tensors
    from scdd.config import check_components
    from scdd.runtime import resolve_device
    from scdd.stages.recover import recover as recover_stage

    dataset = dataset or load_tensors(classifier_file, "classifier")[1]["dataset"]["name"]
    config = _config(
        settings, preset, dataset=dataset, seed=seed, device=device, **{"recover.matcher": matcher, "recover.ipc": ipc}
    )
    check_components(config, dataset=False)  # data-free: an imported classifier's dataset need not be registered
    result = _run_resumable(
        "recover", out, overwrite, config, {"classifier": classifier_file}, quiet,
        lambda target, p: recover_stage(
            config.recover, classifier_file, target, device=resolve_device(config.device), seed=config.seed, progress=p
        ),
    )
    _finish_stage(result, quiet)


@cli.command()
@click.argument("classifier_file", type=click.Path(path_type=Path))
@click.argument("distilled_file", type=click.Path(path_type=Path))
@click.option("--epochs", type=click.IntRange(min=1), help="Post-training epochs to label (one crop per image each).")
@_label_options
@_stage_command
def relabel(classifier_file, distilled_file, epochs, label_mode, label_topk, label_precision, mix, out, seed, device, preset, quiet, overwrite, settings):
    """Label crops of a distilled set with the aligned classifier (crop-level soft labels)."""
    from scdd.artifacts import load_tensors
    from scdd.runtime import resolve_device
    from scdd.stages.relabel import relabel as relabel_stage

    dataset = load_tensors(classifier_file, "classifier")[1]["dataset"]["name"]
    config = _config(
        settings, preset, dataset=dataset, seed=seed, device=device,
        **{"posttrain.epochs": epochs, **_label_settings(label_mode, label_topk, label_precision, mix)},
    )
    result = _run_resumable(
        "relabel", out, overwrite, config, {"classifier": classifier_file, "distilled": distilled_file}, quiet,
        lambda target, p: relabel_stage(
            config.relabel, classifier_file, distilled_file, target,
            device=resolve_device(config.device), seed=config.seed, progress=p,
        ),
    )
    _finish_stage(result, quiet)
    if not quiet:
        _echo_label_storage(result.metrics)


@cli.command()
@click.argument("distilled_file", type=click.Path(path_type=Path))
@click.option("--soft-labels", "soft_labels_file", type=click.Path(path_type=Path), help="Soft labels from `scdd relabel`.")
@click.option("--hard-labels", is_flag=True, help="Train on the class labels instead (real-image baseline).")
@click.option("--students", help="Comma-separated student architectures.")
@click.option("--epochs", type=click.IntRange(min=1), help="Post-training epochs.")
@click.option("--runs", type=click.IntRange(min=1), help="Train each student this many times (own seeds).")
@_stage_command
def posttrain(distilled_file, soft_labels_file, hard_labels, students, epochs, runs, out, seed, device, preset, quiet, overwrite, settings):
    """Train fresh students on a distilled set."""
    from scdd.distilled import load_distilled
    from scdd.errors import ConfigError
    from scdd.config import check_components
    from scdd.runtime import resolve_device
    from scdd.stages.posttrain import posttrain as posttrain_stage

    if hard_labels == (soft_labels_file is not None):
        raise ConfigError("give exactly one of --soft-labels FILE or --hard-labels")
    if soft_labels_file is not None and epochs is None:
        from scdd.labels import read_metadata

        epochs = int(read_metadata(soft_labels_file)["epochs"])
    distilled = load_distilled(distilled_file)
    config = _config(
        settings, preset, dataset=distilled.info.name, seed=seed, device=device,
        **{
            "posttrain.students": students.split(",") if students else None,
            "posttrain.epochs": epochs,
            "posttrain.labels": "hard" if hard_labels else "soft",
            "posttrain.runs": runs,
        },
    )
    check_components(config, dataset=False)
    result = _run_resumable(
        "posttrain", out, overwrite, config, {"distilled": distilled_file, "soft_labels": soft_labels_file}, quiet,
        lambda target, p: posttrain_stage(
            config.posttrain, distilled_file, soft_labels_file, target,
            device=resolve_device(config.device), seed=config.seed, progress=p,
        ),
    )
    _finish_stage(result, quiet)


@cli.command()
@click.argument("model_files", nargs=-1, required=True, type=click.Path(path_type=Path))
@_data_options
@click.option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--quiet", "-q", is_flag=True, help="Plain-text output.")
def evaluate(model_files, dataset, data_root, device, quiet):
    """Top-1 / top-5 of classifier artifacts on the real held-out split."""
    from scdd.artifacts import load_tensors
    from scdd.data.loading import load_dataset
    from scdd.config import make_run_config
    from scdd.runtime import resolve_device
    from scdd.stages.evaluate import evaluate as evaluate_stage

    dataset = dataset or load_tensors(model_files[0], "classifier")[1]["dataset"]["name"]
    config = make_run_config(_overrides((), dataset=dataset, data_root=_data_root(data_root)))
    data = load_dataset(config)
    _warn_skipped(data.skipped)
    result = evaluate_stage({str(path): path for path in model_files}, data, device=resolve_device(device or "auto"))
    _echo_results(result.metrics, quiet)


# ----------------------------------------------------------------------------- import-checkpoint


def _checkpoint_format(ctx, param, value: str) -> str:
    from scdd.published import FORMATS

    name = value.strip().lower().replace("-", "_")
    if name not in FORMATS:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}")
    return name


@cli.command("import-checkpoint")
@click.argument("checkpoint_file", type=click.Path(path_type=Path))
@click.option("--format", "format_name", required=True, callback=_checkpoint_format,
              help="Layout of the file: moco_v2, moco_v3, swav, dino or torchvision.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the artifacts.")
@click.option("--linear", "linear_file", type=click.Path(path_type=Path),
              help="A linear-probe file whose classifier to import too (SwAV / DINO eval_linear output).")
@click.option("--dataset", help="Registered dataset the weights are for (default: ImageNet-1K, 3x224 px, 1000 classes).")
@click.option("--data-root", type=click.Path(path_type=Path), help="Folder holding --dataset's files.")
@click.option("--trust-pickle", is_flag=True, help="Allow files that need full unpickling (it can run code: trusted sources only).")
@click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty --out folder.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the artifact paths.")
def import_checkpoint(checkpoint_file, format_name, out, linear_file, dataset, data_root, trust_pickle, overwrite, quiet):
    """Convert a published ResNet-50 checkpoint into a backbone artifact (and a classifier when it has one).

    Projection heads, predictors, prototypes, queues and momentum encoders are dropped; what is kept
    and dropped is printed. Files are read with torch.load(weights_only=True).
    """
    from scdd.data.loading import load_dataset
    from scdd.config import make_run_config
    from scdd.run_folder import prepare_out_dir
    from scdd.stages.import_checkpoint import import_checkpoint as import_stage

    info = None
    if dataset is not None:
        info = load_dataset(make_run_config(_overrides((), dataset=dataset, data_root=_data_root(data_root)))).info
    if out.exists():  # refuse a non-empty folder now; a missing one is created only once the import succeeds
        prepare_out_dir(out, overwrite)
    result = import_stage(
        checkpoint_file, out, format=format_name, info=info, linear=linear_file, trust_pickle=trust_pickle
    )
    if not quiet:
        from scdd.cli.render import import_table, out as stdout

        stdout.print(import_table(result.metrics, str(checkpoint_file)))
    _finish_stage(result, quiet)


@cli.command()
@click.option("--method", type=click.Choice(["random", "herding"]), default="random", show_default=True, help="How to pick the images.")
@click.option("--ipc", type=click.IntRange(min=1), help="Real images per class (default: the preset's recover.ipc).")
@click.option("--classifier", "classifier_file", type=click.Path(path_type=Path), help="Aligned classifier; herding uses its backbone features.")
@_data_options
@_stage_command
def coreset(method, ipc, classifier_file, dataset, data_root, out, seed, device, preset, quiet, overwrite, settings):
    """Pick IPC real training images per class and write them as a distilled set (coreset baseline)."""
    from scdd.config import check_components
    from scdd.data.loading import load_dataset
    from scdd.runtime import resolve_device
    from scdd.stages.coreset import coreset as coreset_stage

    config = _config(
        settings, preset, dataset=dataset, data_root=_data_root(data_root), seed=seed, device=device, **{"recover.ipc": ipc}
    )
    check_components(config)
    if method == "herding" and classifier_file is None:
        from scdd.errors import ConfigError

        raise ConfigError("--method herding needs --classifier FILE (the aligned model whose features it uses)")
    data = load_dataset(config)
    _warn_skipped(data.skipped)
    result = _run_resumable(
        f"coreset-{method}", out, overwrite, config, {"classifier": classifier_file}, quiet,
        lambda target, p: coreset_stage(
            method, data, config.recover.ipc, target, seed=config.seed, classifier_path=classifier_file,
            device=resolve_device(config.device), progress=p,
        ),
    )
    _finish_stage(result, quiet)


@cli.command()
@click.option("--channels", type=click.IntRange(min=1), default=3, show_default=True, help="Input channels.")
@click.option("--image-size", type=click.IntRange(min=8), default=224, show_default=True, help="Input size in pixels.")
@click.option("--classes", type=click.IntRange(min=1), default=1000, show_default=True, help="Classifier head width.")
def archs(channels, image_size, classes):
    """List the registered architectures with their parameter counts (as classifiers for the given input)."""
    from scdd.cli.render import architectures_table, out
    from scdd.models.catalog import architecture_rows

    rows = architecture_rows(channels=channels, image_size=image_size, num_classes=classes)
    out.print(architectures_table(rows, f"{channels}x{image_size}x{image_size} input, {classes} classes"))


# ----------------------------------------------------------------------------- plugins


@cli.command()
@click.option("--kind", help="Only this kind of component.")
def plugins(kind):
    """List plugins and every component they register, by kind."""
    from scdd.cli.render import components_table, out, plugins_table
    from scdd.registry import get_registry, plugin_state

    state = plugin_state()
    rows = [
        (info.name, info.package or "-", info.version or "-", f"broken: {info.error}" if info.error else "loaded")
        for info in state.plugins.values()
    ]
    out.print(plugins_table(rows))
    for info in state.plugins.values():  # also as plain lines, whatever the terminal's width
        if info.error:
            click.echo(f"warning: plugin {info.name!r} is broken: {info.error}", err=True)
    plugin_packages = {info.name: info.package or info.name for info in state.plugins.values()}
    components = [
        (c.kind, c.name, ", ".join(c.aliases), f"{c.plugin} ({plugin_packages.get(c.plugin, c.plugin)})", c.description)
        for c in get_registry()
        if kind is None or c.kind == kind
    ]
    out.print(components_table(components))


# ----------------------------------------------------------------------------- presets


@cli.group()
def presets():
    """The named presets (`--preset NAME`): the paper's settings per dataset, and mnist5k."""


@presets.command("list")
def presets_list():
    """List the presets and the dataset each one is for."""
    from scdd.presets import PRESETS

    for name, values in PRESETS.items():
        click.echo(f"{name}\t{values.get('dataset', name)}")


@presets.command("show")
@click.argument("name")
def presets_show(name):
    """Print every value of preset NAME with the paper table it comes from."""
    from scdd.cli.render import out, preset_table
    from scdd.presets import preset_rows

    out.print(preset_table(name, preset_rows(name)))


# ----------------------------------------------------------------------------- analyses

from scdd.cli.analyses import COMMANDS as _ANALYSIS_COMMANDS  # noqa: E402  (uses the helpers above)

for _command in _ANALYSIS_COMMANDS:
    cli.add_command(_command)


# ----------------------------------------------------------------------------- plugin commands


def _load_plugin_commands() -> None:
    from scdd.registry import plugin_state

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = plugin_state()
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    for impl in state.manager.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as error:  # one broken plugin must not take the CLI down
            click.echo(f"warning: plugin {impl.plugin_name!r} failed to add commands: {error}", err=True)


@functools.cache
def _ready() -> click.Group:
    _load_plugin_commands()
    return cli


def _launched() -> bool:
    """Started by torchrun with more than one process (read from the environment, without importing torch)."""
    return os.environ.get("WORLD_SIZE", "1") not in ("", "1")


def _secondary_rank() -> bool:
    """A torchrun process other than rank 0: it shows no progress and prints nothing to stdout."""
    return _launched() and os.environ.get("RANK", "0") != "0"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Under torchrun (``WORLD_SIZE`` > 1) the process joins the group
    first (``scdd.distributed``) and leaves it at exit."""
    args = argv if argv is not None else sys.argv[1:]
    if not _launched():
        _ready().main(args=args, prog_name="scdd")
        return
    from scdd.distributed import session

    if _secondary_rank():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (open for the life of the process)
    with session():
        _ready().main(args=args, prog_name="scdd")
