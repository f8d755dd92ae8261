"""Commands on model artifacts: ``scdd evaluate`` and ``scdd import-checkpoint``."""

from __future__ import annotations

from pathlib import Path

import click

from scdd.cli.options import data_options, data_root_text, echo_artifacts, echo_results, overrides, warn_skipped
from scdd.cli.render import import_table
from scdd.cli.render import out as stdout
from scdd.published import FORMATS


@click.command()
@click.argument("model_files", nargs=-1, required=True, type=click.Path(path_type=Path))
@data_options
@click.option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--quiet", "-q", is_flag=True, help="Plain-text output.")
def evaluate(model_files, dataset, data_root, device, quiet):
    """Top-1 / top-5 of classifier artifacts on the real held-out split."""
    # lazy: the stage and the dataset import torch
    from scdd.artifacts import load_tensors
    from scdd.config import make_run_config
    from scdd.data.loading import load_dataset
    from scdd.runtime import resolve_device
    from scdd.stages.evaluate import evaluate as evaluate_stage

    dataset = dataset or load_tensors(model_files[0], "classifier")[1]["dataset"]["name"]
    data = load_dataset(make_run_config(overrides((), dataset=dataset, data_root=data_root_text(data_root))))
    warn_skipped(data.skipped)
    result = evaluate_stage({str(path): path for path in model_files}, data, device=resolve_device(device or "auto"))
    echo_results(result.metrics, quiet)


def _checkpoint_format(ctx, param, value: str) -> str:
    name = value.strip().lower().replace("-", "_")
    if name not in FORMATS:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}")
    return name


@click.command("import-checkpoint")
@click.argument("checkpoint_file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "format_name",
    required=True,
    callback=_checkpoint_format,
    help="Layout of the file: moco_v2, moco_v3, swav, dino or torchvision.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the artifacts.")
@click.option(
    "--linear",
    "linear_file",
    type=click.Path(path_type=Path),
    help="A linear-probe file whose classifier to import too (SwAV / DINO eval_linear output).",
)
@click.option("--dataset", help="Registered dataset the weights are for (default: ImageNet-1K, 3x224 px, 1000 classes).")
@click.option("--data-root", type=click.Path(path_type=Path), help="Folder holding --dataset's files.")
@click.option("--trust-pickle", is_flag=True, help="Allow files that need full unpickling (it can run code: trusted sources only).")
@click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty --out folder.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the artifact paths.")
def import_checkpoint(checkpoint_file, format_name, out, linear_file, dataset, data_root, trust_pickle, overwrite, quiet):
    """Convert a published ResNet (18, 50 or 101) checkpoint into a backbone artifact (and a classifier when it has one).

    Projection heads, predictors, prototypes, queues and momentum encoders are dropped; what is kept
    and dropped is printed. Files are read with torch.load(weights_only=True).
    """
    # lazy: the import stage and the dataset import torch
    from scdd.config import make_run_config
    from scdd.data.loading import load_dataset
    from scdd.out_dir import locked_out_dir
    from scdd.stages.import_checkpoint import import_checkpoint as import_stage

    info = None
    if dataset is not None:
        info = load_dataset(make_run_config(overrides((), dataset=dataset, data_root=data_root_text(data_root)))).info
    with locked_out_dir(out, overwrite):  # a folder it creates is removed again if the import fails
        result = import_stage(checkpoint_file, out, format=format_name, info=info, linear=linear_file, trust_pickle=trust_pickle)
    if not quiet:
        stdout.print(import_table(result.metrics, str(checkpoint_file)))
    echo_artifacts(result.artifacts, quiet)


COMMANDS = (evaluate, import_checkpoint)
