"""The single-stage commands (``scdd squeeze``, ``align``, ``recover``, ``relabel``, ``posttrain``,
``coreset``), made from one table.

Every one resolves its config (paper defaults, preset, ``--set``), checks the component names,
loads the dataset when it trains on one, and runs its library stage as a resumable stage command:
the same command on the same ``--out`` continues an interrupted run (or returns its finished
result); other settings or inputs are refused. A row of ``STAGES`` says what differs: the
command's own parameters, the settings they give, the files it reads, and the library call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from scdd.cli.options import (
    FILE,
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
    stage: str  # the library stage, "module:function" (imported when the command runs: it imports torch)
    call: Callable[..., Any]  # (stage, config, args, data, out_dir, device=, progress=) -> StageResult
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


def _relabel_settings(args: Args) -> dict[str, Any]:
    labels = label_settings(args["label_mode"], args["label_topk"], args["label_precision"], args["mix"])
    return {"posttrain.epochs": args["epochs"], **labels}


def _echo_teacher(result, args: Args) -> None:
    click.echo(f"teacher held-out top-1: {result.metrics['teacher_heldout_top1']:.2f}%")


EPOCHS_HELP = "Post-training epochs to label (one crop per image each)."
METHOD_HELP = "How to pick the images."
STAGES = (
    StageCommand(
        "squeeze",
        "Pretrain a backbone (self-supervised, or supervised for SRe²L) and save it with its BN statistics.",
        (
            click.option("--pretrainer", help="Squeeze objective (see `scdd plugins`)."),
            click.option("--backbone", help="Architecture to pretrain."),
        ),
        "scdd.stages.squeeze:squeeze",
        lambda stage, c, a, data, out, **run: stage(c.squeeze, data, out, seed=c.seed, **run),
        settings=lambda a: {"squeeze.pretrainer": a["pretrainer"], "squeeze.architecture": a["backbone"]},
        uses_data=True,
    ),
    StageCommand(
        "align",
        "Align a squeezed backbone to the labels (linear probe by default) and save the classifier.",
        (click.argument("backbone_file", type=FILE), click.option("--aligner", help="Alignment strategy (see `scdd plugins`).")),
        "scdd.stages.align:align",
        lambda stage, c, a, data, out, **run: stage(c.align, a["backbone_file"], data, out, seed=c.seed, **run),
        settings=lambda a: {"align.aligner": a["aligner"]},
        inputs=("backbone_file",),
        uses_data=True,
        after=_echo_teacher,
    ),
    StageCommand(
        "recover",
        "Synthesise a distilled set from an aligned classifier (data-free).",
        (
            click.argument("classifier_file", type=FILE),
            click.option("--matcher", help="Statistic matcher (see `scdd plugins`)."),
            click.option("--ipc", type=click.IntRange(min=1), help="Images per class to synthesise."),
            click.option("--dataset", help="Dataset whose preset to use (default: the classifier's)."),
        ),
        "scdd.stages.recover:recover",
        lambda stage, c, a, data, out, **run: stage(c.recover, a["classifier_file"], out, seed=c.seed, **run),
        settings=lambda a: {"recover.matcher": a["matcher"], "recover.ipc": a["ipc"]},
        inputs=("classifier_file",),
        dataset_of=_artifact_dataset("classifier_file", "classifier"),
    ),
    StageCommand(
        "relabel",
        "Label crops of a distilled set with the aligned classifier (crop-level soft labels).",
        (
            click.argument("classifier_file", type=FILE),
            click.argument("distilled_file", type=FILE),
            click.option("--epochs", type=click.IntRange(min=1), help=EPOCHS_HELP),
            label_options,
        ),
        "scdd.stages.relabel:relabel",
        lambda stage, c, a, data, out, **run: stage(c.relabel, a["classifier_file"], a["distilled_file"], out, seed=c.seed, **run),
        settings=_relabel_settings,
        inputs=("classifier_file", "distilled_file"),
        dataset_of=_artifact_dataset("classifier_file", "classifier"),
        after=lambda result, args: echo_label_storage(result.metrics),
    ),
    StageCommand(
        "posttrain",
        "Train fresh students on a distilled set.",
        (
            click.argument("distilled_file", type=FILE),
            click.option("--soft-labels", "soft_labels_file", type=FILE, help="Soft labels from `scdd relabel`."),
            click.option("--hard-labels", is_flag=True, help="Train on the class labels instead (real-image baseline)."),
            click.option("--students", help="Comma-separated student architectures."),
            click.option("--epochs", type=click.IntRange(min=1), help="Post-training epochs."),
            click.option("--runs", type=click.IntRange(min=1), help="Train each student this many times (own seeds)."),
        ),
        "scdd.stages.posttrain:posttrain",
        lambda stage, c, a, data, out, **run: stage(c.posttrain, a["distilled_file"], a["soft_labels_file"], out, seed=c.seed, **run),
        settings=_posttrain_settings,
        inputs=("distilled_file", "soft_labels_file"),
        dataset_of=_distilled_dataset,
    ),
    StageCommand(
        "coreset",
        "Pick IPC real training images per class and write them as a distilled set (coreset baseline).",
        (
            click.option("--method", type=click.Choice(["random", "herding"]), default="random", show_default=True, help=METHOD_HELP),
            click.option("--ipc", type=click.IntRange(min=1), help="Real images per class (default: the preset's recover.ipc)."),
            click.option("--classifier", "classifier_file", type=FILE, help="Aligned classifier; herding uses its backbone features."),
        ),
        "scdd.stages.coreset:coreset",
        lambda stage, c, a, data, out, **run: stage(
            a["method"], data, c.recover.ipc, out, seed=c.seed, classifier_path=a["classifier_file"], **run
        ),
        settings=_coreset_settings,
        inputs=("classifier_file",),
        uses_data=True,
        record=lambda a: f"coreset-{a['method']}",
    ),
)


def _stage_function(target: str) -> Callable[..., Any]:
    """The library stage ``module:function``, imported only when its command runs (stages import torch)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


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
        assert spec.dataset_of is not None  # a data-free stage names the dataset whose preset applies
        direct["dataset"] = spec.dataset_of(args)
    config = make_run_config(overrides(args["settings"], **direct), args["preset"])
    check_components(config, dataset=spec.uses_data)  # data-free: an imported classifier's dataset need not be registered
    data = load_dataset(config) if spec.uses_data else None
    if data is not None:
        warn_skipped(data.skipped)
    name = spec.record(args) if spec.record else spec.name
    inputs = {key: args[key] for key in spec.inputs}
    device, stage = resolve_device(config.device), _stage_function(spec.stage)
    with progress(quiet) as shown:
        result = run_stage_command(
            name,
            out,
            to_dict(config),
            inputs,
            overwrite=args["overwrite"],
            action=lambda target: spec.call(stage, config, args, data, target, device=device, progress=shown),
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
    decorators.append(click.option("--out", type=FILE, required=True, help="Folder for this stage's artifacts."))
    decorators.append(run_options)
    for decorator in reversed(decorators):
        command = decorator(command)
    return click.command(spec.name)(command)


COMMANDS = tuple(stage_command(spec) for spec in STAGES)
