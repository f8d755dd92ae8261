"""``scdd prune``: the click command, added to the ``scdd`` group by the ``prune`` plugin's
``register_commands`` hook. It parses options, calls ``scdd.prune.stage.prune`` and renders the result;
torch is imported only when the command runs."""

from __future__ import annotations

from pathlib import Path

import click

from scdd._options import build_dataclass, parse_option_pairs
from scdd.cli.options import FILE, data_root_text, progress
from scdd.cli.render import out as stdout
from scdd.cli.render import prune_table

SET_HELP = "Any prune setting, e.g. --set sparsity=1e-4 --set lr=0.01 (see PruneConfig)."


def _input(flag: str, name: str, help: str):
    return click.option(flag, name, type=FILE, required=True, help=help)


@click.command("prune")
@_input("--model", "model_file", "Classifier artifact to prune (an aligned teacher or a post-trained student).")
@_input("--distilled", "distilled_file", "Distilled set (or a coreset) to fine-tune on.")
@_input("--soft-labels", "soft_labels_file", "Its crop-level soft labels from `scdd relabel`.")
@click.option("--ratio", type=float, help="Share of the prunable channels to remove (default 0.5).")
@click.option("--sparsity-epochs", type=click.IntRange(min=0), help="Epochs of L1-on-γ training before pruning.")
@click.option("--finetune-epochs", type=click.IntRange(min=0), help="Epochs of fine-tuning after pruning.")
@click.option("--out", type=FILE, required=True, help="Folder for the pruned model and prune.json.")
@click.option("--data-root", type=FILE, help="Folder holding the model's dataset files.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of crop order and initialisation.")
@click.option("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; plain-text results.")
@click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty --out folder.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
def prune_command(**args):
    """Data-free pruning (network slimming) of a classifier with a distilled set.

    Fine-tunes the model on the distilled images and soft labels with an L1 penalty on BN scales,
    removes the channels with the smallest scales across all layers, fine-tunes the pruned network,
    and reports held-out accuracy, parameters and FLOPs before and after.
    """
    # lazy: the stage, its config and the dataset import torch
    from scdd.artifacts import load_tensors
    from scdd.config import make_run_config
    from scdd.data.loading import load_dataset
    from scdd.out_dir import locked_out_dir
    from scdd.prune.config import PruneConfig
    from scdd.prune.stage import prune
    from scdd.runtime import resolve_device

    options = parse_option_pairs(args["settings"])
    options.update({key: args[key] for key in ("ratio", "sparsity_epochs", "finetune_epochs") if args[key] is not None})
    config = build_dataclass(PruneConfig, options, owner="prune")
    inputs = args["model_file"], args["distilled_file"], args["soft_labels_file"]
    dataset = load_tensors(inputs[0], "classifier")[1]["dataset"]["name"]
    data = load_dataset(make_run_config({"dataset": dataset, "data_root": data_root_text(args["data_root"])}))
    device, out = resolve_device(args["device"]), args["out"]
    # refuses a folder holding files or in use; a folder it creates is removed again if pruning fails
    with locked_out_dir(out, args["overwrite"]), progress(args["quiet"]) as shown:
        result = prune(config, *inputs, data, out, device=device, seed=args["seed"], progress=shown)
    _show(result, inputs[1], config, args["quiet"])


def _show(result, distilled_file: Path, config, quiet: bool) -> None:
    rows = result.metrics["rows"]
    if quiet:
        for name, row in rows.items():
            click.echo(
                f"{name}\ttop1={row['top1']:.2f}\ttop5={row['top5']:.2f}\tparams={row['parameters']}"
                f"\tflops={row['flops']}\tchannels={row['prunable_channels']}"
            )
        click.echo(str(result.artifacts["pruned"]))
        return
    stdout.print(prune_table(rows, f"data-free pruning with {distilled_file} (ratio {config.ratio:g})"))
    stdout.print(f"pruned model: {result.artifacts['pruned']}")
