"""``scdd prune``: the click command, added to the ``scdd`` group by the ``prune`` plugin's
``register_commands`` hook. It parses options, calls ``scdd.prune.stage.prune`` and renders the result;
torch is imported only when the command runs."""

from __future__ import annotations

from pathlib import Path

import click

from scdd._options import build_dataclass, parse_option_pairs
from scdd.cli.options import data_root_text, progress
from scdd.cli.render import out as stdout
from scdd.cli.render import prune_table


@click.command("prune")
@click.option("--model", "model_file", type=click.Path(path_type=Path), required=True,
              help="Classifier artifact to prune (an aligned teacher or a post-trained student).")
@click.option("--distilled", "distilled_file", type=click.Path(path_type=Path), required=True,
              help="Distilled set (or a coreset) to fine-tune on.")
@click.option("--soft-labels", "soft_labels_file", type=click.Path(path_type=Path), required=True,
              help="Its crop-level soft labels from `scdd relabel`.")
@click.option("--ratio", type=float, help="Share of the prunable channels to remove (default 0.5).")
@click.option("--sparsity-epochs", type=click.IntRange(min=0), help="Epochs of L1-on-γ training before pruning.")
@click.option("--finetune-epochs", type=click.IntRange(min=0), help="Epochs of fine-tuning after pruning.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the pruned model and prune.json.")
@click.option("--data-root", type=click.Path(path_type=Path), help="Folder holding the model's dataset files.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of crop order and initialisation.")
@click.option("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; plain-text results.")
@click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty --out folder.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any prune setting, e.g. --set sparsity=1e-4 --set lr=0.01 (see PruneConfig).")
def prune_command(model_file, distilled_file, soft_labels_file, ratio, sparsity_epochs, finetune_epochs, out,
                  data_root, seed, device, quiet, overwrite, settings):
    """Data-free pruning (network slimming) of a classifier with a distilled set.

    Fine-tunes the model on the distilled images and soft labels with an L1 penalty on BN scales,
    removes the channels with the smallest scales across all layers, fine-tunes the pruned network,
    and reports held-out accuracy, parameters and FLOPs before and after.
    """
    # lazy: the stage, its config and the dataset import torch
    from scdd.artifacts import load_tensors
    from scdd.config import make_run_config
    from scdd.data.loading import load_dataset
    from scdd.prune.config import PruneConfig
    from scdd.prune.stage import prune
    from scdd.run_folder import prepare_out_dir
    from scdd.runtime import resolve_device

    options = parse_option_pairs(settings)
    direct = {"ratio": ratio, "sparsity_epochs": sparsity_epochs, "finetune_epochs": finetune_epochs}
    options.update({key: value for key, value in direct.items() if value is not None})
    config = build_dataclass(PruneConfig, options, owner="prune")
    dataset = load_tensors(model_file, "classifier")[1]["dataset"]["name"]
    data = load_dataset(make_run_config({"dataset": dataset, "data_root": data_root_text(data_root)}))
    torch_device = resolve_device(device)
    if out.exists():
        prepare_out_dir(out, overwrite)  # refuses a folder holding files; a new one appears only with results
    with progress(quiet) as shown:
        result = prune(config, model_file, distilled_file, soft_labels_file, data, out,
                       device=torch_device, seed=seed, progress=shown)
    _show(result, distilled_file, config, quiet)


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
