"""The single-stage commands (``scdd squeeze``, ``align``, ``recover``, ``relabel``, ``posttrain``,
``coreset``), made from one table.

Every one resolves its config (paper defaults, preset, ``--set``), checks the component names,
loads the dataset when it trains on one, and runs its library stage as a resumable stage command:
the same command on the same ``--out`` continues an interrupted run (or returns its finished
result); other settings or inputs are refused. A row of ``STAGES`` says what differs: the
command's own parameters, the settings they give, the files it reads, and the library call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from scdd.cli.options import (
    data_options,
    data_root_text,
    echo_artifacts,
    echo_label_storage,
    label_options,
    label_settings,
    overrides,
    progress,
    run_options,
    warn_skipped,
)
from scdd.errors import ConfigError

Args = dict[str, Any]


@dataclass(frozen=True)
class StageCommand:
    """One row of the table: a command and the library stage it runs."""

    name: str
    help: str
    params: tuple[Callable, ...]  # click decorators of the command's own arguments and options
    run: Callable[..., Any]  # (config, args, data, out_dir, device, progress) -> StageResult
    settings: Callable[[Args], dict[str, Any]] = lambda args: {}  # dotted overrides from the options
    inputs: tuple[str, ...] = ()  # arguments naming input files: their SHA-256 is part of the stage's identity
    uses_data: bool = False  # trains on the configured dataset (takes --dataset / --data-root, loads it)
    dataset_of: Callable[[Args], str] | None = None  # data-free: the dataset whose preset applies
    record: Callable[[Args], str] | None = None  # the stage's name in its record (default: the command's)
    after: Callable[[Any, Args], None] = lambda result, args: None  # extra lines printed when not quiet


def _artifact_dataset(key: str, kind: str) -> Callable[[Args], str]:
    def dataset(args: Args) -> str:
        from scdd.artifacts import load_tensors  # lazy: reading safetensors imports torch

        return args.get("dataset") or load_tensors(args[key], kind)[1]["dataset"]["name"]

    return dataset


def _distilled_dataset(args: Args) -> str:
    from scdd.distilled import load_distilled  # lazy: torch

    return load_distilled(args["distilled_file"]).info.name


def _squeeze(config, args, data, out_dir, device, shown):
    from scdd.stages.squeeze import squeeze  # lazy: torch

    return squeeze(config.squeeze, data, out_dir, device=device, seed=config.seed, progress=shown)


def _align(config, args, data, out_dir, device, shown):
    from scdd.stages.align import align  # lazy: torch

    return align(config.align, args["backbone_file"], data, out_dir, device=device, seed=config.seed, progress=shown)


def _recover(config, args, data, out_dir, device, shown):
    from scdd.stages.recover import recover  # lazy: torch

    return recover(config.recover, args["classifier_file"], out_dir, device=device, seed=config.seed, progress=shown)


def _relabel(config, args, data, out_dir, device, shown):
    from scdd.stages.relabel import relabel  # lazy: torch

    classifier, distilled = args["classifier_file"], args["distilled_file"]
    return relabel(config.relabel, classifier, distilled, out_dir, device=device, seed=config.seed, progress=shown)


def _posttrain(config, args, data, out_dir, device, shown):
    from scdd.stages.posttrain import posttrain  # lazy: torch

    distilled, labels = args["distilled_file"], args["soft_labels_file"]
    return posttrain(config.posttrain, distilled, labels, out_dir, device=device, seed=config.seed, progress=shown)


def _coreset(config, args, data, out_dir, device, shown):
    from scdd.stages.coreset import coreset  # lazy: torch

    return coreset(
        args["method"], data, config.recover.ipc, out_dir, seed=config.seed, classifier_path=args["classifier_file"],
        device=device, progress=shown,
    )


def _posttrain_settings(args: Args) -> dict[str, Any]:
    if args["hard_labels"] == (args["soft_labels_file"] is not None):
        raise ConfigError("give exactly one of --soft-labels FILE or --hard-labels")
    epochs = args["epochs"]
    if args["soft_labels_file"] is not None and epochs is None:
        from scdd.labels import read_metadata  # lazy: torch

        epochs = int(read_metadata(args["soft_labels_file"])["epochs"])
    students = args["students"]
    return {
        "posttrain.students": students.split(",") if students else None,
        "posttrain.epochs": epochs,
        "posttrain.labels": "hard" if args["hard_labels"] else "soft",
        "posttrain.runs": args["runs"],
    }


def _coreset_settings(args: Args) -> dict[str, Any]:
    if args["method"] == "herding" and args["classifier_file"] is None:
        raise ConfigError("--method herding needs --classifier FILE (the aligned model whose features it uses)")
    return {"recover.ipc": args["ipc"]}


def _echo_teacher(result, args: Args) -> None:
    click.echo(f"teacher held-out top-1: {result.metrics['teacher_heldout_top1']:.2f}%")


_FILE = click.Path(path_type=Path)
STAGES = (
    StageCommand(
        "squeeze", "Pretrain a backbone (self-supervised, or supervised for SRe²L) and save it with its BN statistics.",
        (click.option("--pretrainer", help="Squeeze objective (see `scdd plugins`)."),
         click.option("--backbone", help="Architecture to pretrain.")),
        _squeeze, settings=lambda a: {"squeeze.pretrainer": a["pretrainer"], "squeeze.architecture": a["backbone"]},
        uses_data=True,
    ),
    StageCommand(
        "align", "Align a squeezed backbone to the labels (linear probe by default) and save the classifier.",
        (click.argument("backbone_file", type=_FILE), click.option("--aligner", help="Alignment strategy (see `scdd plugins`).")),
        _align, settings=lambda a: {"align.aligner": a["aligner"]}, inputs=("backbone_file",), uses_data=True,
        after=_echo_teacher,
    ),
    StageCommand(
        "recover", "Synthesise a distilled set from an aligned classifier (data-free).",
        (click.argument("classifier_file", type=_FILE),
         click.option("--matcher", help="Statistic matcher (see `scdd plugins`)."),
         click.option("--ipc", type=click.IntRange(min=1), help="Images per class to synthesise."),
         click.option("--dataset", help="Dataset whose preset to use (default: the classifier's).")),
        _recover, settings=lambda a: {"recover.matcher": a["matcher"], "recover.ipc": a["ipc"]},
        inputs=("classifier_file",), dataset_of=_artifact_dataset("classifier_file", "classifier"),
    ),
    StageCommand(
        "relabel", "Label crops of a distilled set with the aligned classifier (crop-level soft labels).",
        (click.argument("classifier_file", type=_FILE), click.argument("distilled_file", type=_FILE),
         click.option("--epochs", type=click.IntRange(min=1), help="Post-training epochs to label (one crop per image each)."),
         label_options),
        _relabel,
        settings=lambda a: {"posttrain.epochs": a["epochs"], **label_settings(a["label_mode"], a["label_topk"], a["label_precision"], a["mix"])},
        inputs=("classifier_file", "distilled_file"), dataset_of=_artifact_dataset("classifier_file", "classifier"),
        after=lambda result, args: echo_label_storage(result.metrics),
    ),
    StageCommand(
        "posttrain", "Train fresh students on a distilled set.",
        (click.argument("distilled_file", type=_FILE),
         click.option("--soft-labels", "soft_labels_file", type=_FILE, help="Soft labels from `scdd relabel`."),
         click.option("--hard-labels", is_flag=True, help="Train on the class labels instead (real-image baseline)."),
         click.option("--students", help="Comma-separated student architectures."),
         click.option("--epochs", type=click.IntRange(min=1), help="Post-training epochs."),
         click.option("--runs", type=click.IntRange(min=1), help="Train each student this many times (own seeds).")),
        _posttrain, settings=_posttrain_settings, inputs=("distilled_file", "soft_labels_file"), dataset_of=_distilled_dataset,
    ),
    StageCommand(
        "coreset", "Pick IPC real training images per class and write them as a distilled set (coreset baseline).",
        (click.option("--method", type=click.Choice(["random", "herding"]), default="random", show_default=True,
                      help="How to pick the images."),
         click.option("--ipc", type=click.IntRange(min=1), help="Real images per class (default: the preset's recover.ipc)."),
         click.option("--classifier", "classifier_file", type=_FILE,
                      help="Aligned classifier; herding uses its backbone features.")),
        _coreset, settings=_coreset_settings, inputs=("classifier_file",), uses_data=True,
        record=lambda a: f"coreset-{a['method']}",
    ),
)


def _invoke(spec: StageCommand, args: Args) -> None:
    # lazy: config, dataset and run folder import torch, which `scdd --help` must not
    from scdd.config import check_components, make_run_config, to_dict
    from scdd.data.loading import load_dataset
    from scdd.run_folder import run_stage_command
    from scdd.runtime import resolve_device

    quiet, out = args["quiet"], args["out"]
    direct = {"seed": args["seed"], "device": args["device"], **spec.settings(args)}
    if spec.uses_data:
        direct.update(dataset=args["dataset"], data_root=data_root_text(args["data_root"]))
    else:
        direct["dataset"] = spec.dataset_of(args)
    config = make_run_config(overrides(args["settings"], **direct), args["preset"])
    check_components(config, dataset=spec.uses_data)  # data-free: an imported classifier's dataset need not be registered
    data = load_dataset(config) if spec.uses_data else None
    if data is not None:
        warn_skipped(data.skipped)
    name = spec.record(args) if spec.record else spec.name
    inputs = {key: args[key] for key in spec.inputs}
    device = resolve_device(config.device)
    with progress(quiet) as shown:
        result = run_stage_command(
            name, out, to_dict(config), inputs, overwrite=args["overwrite"],
            action=lambda target: spec.run(config, args, data, target, device, shown),
        )
    echo_artifacts(result.artifacts, quiet)
    if not quiet:
        spec.after(result, args)


def stage_command(spec: StageCommand) -> click.Command:
    """The click command of one table row."""

    def command(**args: Any) -> None:
        _invoke(spec, args)

    command.__doc__ = spec.help
    decorators = [*spec.params, *([data_options] if spec.uses_data else [])]
    decorators.append(click.option("--out", type=_FILE, required=True, help="Folder for this stage's artifacts."))
    decorators.append(run_options)
    for decorator in reversed(decorators):
        command = decorator(command)
    return click.command(spec.name)(command)


COMMANDS = tuple(stage_command(spec) for spec in STAGES)
