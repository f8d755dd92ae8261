"""What the command modules share: option decorators, turning options into config overrides, the
progress display, and the lines every command prints. Nothing here imports torch at import time."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import click

from scdd._options import dotted_to_nested, parse_option_pairs
from scdd.cli.render import RichProgress, out, results_table
from scdd.progress import SilentProgress


def set_option(function):
    return click.option(
        "--set",
        "settings",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override any setting, e.g. --set recover.iterations=500 or "
        "--set squeeze.pretrainer_options.epochs=20 (repeatable; values are JSON or text).",
    )(function)


def _remember(key: str):
    """A flag callback that notes the flag in the click context, for ``overrides``."""

    def callback(ctx: click.Context, _param, value: bool) -> bool:
        if value:
            ctx.meta[key] = True
        return value

    return callback


def _stack(function, decorators):
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _noted_flag(name: str, help: str):
    """A flag that is not passed to the command but noted for ``overrides`` (``--strict``, ``--download``)."""
    return click.option(name, is_flag=True, expose_value=False, callback=_remember(f"scdd.{name[2:]}"), help=help)


FILE = click.Path(path_type=Path)
STRICT_HELP = "Stop at an image file that cannot be decoded (default: skip it and count it in the manifest)."
DOWNLOAD_HELP = "Let the dataset reader download missing files (datasets that can, e.g. cifar10)."


def data_options(function):
    return _stack(
        function,
        [
            click.option("--dataset", help="Registered dataset name (default: the embedded mnist5k)."),
            click.option("--data-root", type=FILE, help="Folder holding the dataset's files."),
            _noted_flag("--download", DOWNLOAD_HELP),
            _noted_flag("--strict", STRICT_HELP),
        ],
    )


def run_options(function):
    return _stack(
        function,
        [
            click.option("--seed", type=int, help="Run seed (default 0)."),
            click.option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N."),
            click.option("--preset", help="Named preset of settings (default: the dataset's own, if any)."),
            click.option("--quiet", "-q", is_flag=True, help="No progress bars; print results only."),
            click.option("--overwrite", is_flag=True, help="Allow writing into a non-empty --out folder."),
            set_option,
        ],
    )


def label_options(function):
    return _stack(
        function,
        [
            click.option(
                "--label-mode", type=click.Choice(["stored", "online"]), help="Store soft labels, or run the teacher during post-training."
            ),
            click.option("--label-topk", type=click.IntRange(min=0), help="Store only the top-K probabilities (fp16); 0 keeps all."),
            click.option("--label-precision", type=click.Choice(["fp32", "fp16"]), help="Precision of stored full logits."),
            click.option("--mix", type=click.Choice(["none", "cutmix", "mixup"]), help="Mix each crop with a partner's before labelling."),
        ],
    )


def label_settings(label_mode, label_topk, label_precision, mix) -> dict[str, Any]:
    return {"relabel.mode": label_mode, "relabel.label_topk": label_topk, "relabel.precision": label_precision, "relabel.mix": mix}


def data_root_text(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def overrides(settings: tuple[str, ...], **direct: Any) -> dict[str, Any]:
    """Nested overrides from ``--set`` pairs plus directly given options (``None`` means not given)."""
    pairs = parse_option_pairs(settings)
    pairs.update({key: value for key, value in direct.items() if value is not None})
    context = click.get_current_context(silent=True)
    if context is not None and context.meta.get("scdd.download"):
        pairs["dataset_options.download"] = True
    if context is not None and context.meta.get("scdd.strict"):
        pairs["strict"] = True
    return dotted_to_nested(pairs)


def launched() -> bool:
    """Started by torchrun with more than one process (read from the environment, without importing torch)."""
    return os.environ.get("WORLD_SIZE", "1") not in ("", "1")


def secondary_rank() -> bool:
    """A torchrun process other than rank 0: it shows no progress and prints nothing to stdout."""
    return launched() and os.environ.get("RANK", "0") != "0"


def progress(quiet: bool, *, transient: bool = False):
    """A context giving the library's ``Progress``: rich bars, or silence when quiet or not rank 0."""
    if quiet or secondary_rank():
        return contextlib.nullcontext(SilentProgress())
    return RichProgress(transient_tasks=transient)


def warn_skipped(skipped, count: int | None = None) -> None:
    """One line on stderr when undecodable image files were left out."""
    if skipped:
        click.echo(
            f"warning: skipped {count or len(skipped)} image file(s) that could not be decoded (first: {skipped[0]}); "
            "--strict makes this an error",
            err=True,
        )


def echo_results(metrics: dict[str, Any], quiet: bool) -> None:
    if not quiet:
        out.print(results_table(metrics))
        return
    for name, values in metrics.items():
        spread = "".join(f"\t{key}={values[key]:.2f}" for key in ("top1_std", "top5_std") if key in values)
        params = f"\tparams={values['params']}" if values.get("params") else ""
        click.echo(f"{name}\ttop1={values['top1']:.2f}\ttop5={values['top5']:.2f}{spread}{params}")


def echo_label_storage(metrics: dict[str, Any]) -> None:
    """One line on the soft labels: their encoding and bytes per image per epoch (stored), or online."""
    if metrics.get("mode") == "online":
        click.echo("soft labels: online (teacher labels each crop during post-training; nothing stored)")
    elif metrics.get("mode") == "stored":
        click.echo(
            f"soft labels: {metrics['encoding']}, {metrics['label_bytes_per_image_per_epoch']} B per image per epoch "
            f"(+{metrics['crop_bytes_per_image_per_epoch']} B crop parameters; "
            f"{metrics['stored_bytes_per_image_per_epoch']:.1f} B on disk)"
        )


def echo_artifacts(artifacts: dict[str, Any], quiet: bool) -> None:
    for key, path in artifacts.items():
        if quiet:
            click.echo(str(path))
        else:
            out.print(f"[bold]{key}[/bold]: {path}")
