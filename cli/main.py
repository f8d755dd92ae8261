"""The ``scdd`` command group: one-line errors, the built-in command modules, plugin commands, and
the entry point (which joins the process group under torchrun).

Each command module parses options, calls the library and renders (``render``): ``run`` (the whole
pipeline), ``stages`` (one command per stage, from one table), ``models`` (evaluate and import
checkpoints), ``catalog`` (plugins, architectures, presets) and ``analyses`` (inspect, report,
bench). Heavy imports (torch and everything that needs it) happen inside command bodies, so
``scdd --help`` and ``scdd plugins`` start fast.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from typing import Any

import click

from scdd import __version__
from scdd.cli.analyses import COMMANDS as ANALYSIS_COMMANDS
from scdd.cli.catalog import COMMANDS as CATALOG_COMMANDS
from scdd.cli.models import COMMANDS as MODEL_COMMANDS
from scdd.cli.options import launched, secondary_rank
from scdd.cli.run import run
from scdd.cli.stages import COMMANDS as STAGE_COMMANDS
from scdd.errors import ProgressNotReused, ScddError
from scdd.host_memory import keep_freed_memory
from scdd.registry import plugin_state


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` that prints scdd's warnings as one ``warning:`` line on stderr."""
    if issubclass(category, ProgressNotReused):
        click.echo(f"warning: {' '.join(str(message).split())}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


class ScddGroup(click.Group):
    """Turns the library's typed errors into one-line messages (``--debug`` keeps the traceback) and
    its warnings into one-line ``warning:`` messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", ProgressNotReused)
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except ScddError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(" ".join(str(error).split())) from None


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


for _command in (run, *STAGE_COMMANDS, *MODEL_COMMANDS, *CATALOG_COMMANDS, *ANALYSIS_COMMANDS):
    cli.add_command(_command)


def _load_plugin_commands() -> None:
    """Add the commands of every plugin's ``register_commands`` hook; a broken one is named and skipped."""
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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Under torchrun (``WORLD_SIZE`` > 1) the process joins the group
    first (``scdd.distributed``), leaves it and its threads at the end, then exits with the command's
    status (``distributed.exit_process``). Freed host memory stays in the process (``scdd.host_memory``)."""
    keep_freed_memory()
    args = argv if argv is not None else sys.argv[1:]
    if not launched():
        _ready().main(args=args, prog_name="scdd")
        return
    from scdd.distributed import exit_process, session  # lazy: torch.distributed, only under torchrun

    if secondary_rank():
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (open for the life of the process)
    status: int | str | None = 0
    try:
        with session():
            _ready().main(args=args, prog_name="scdd")
    except SystemExit as stop:  # click ends every command with one; the group is left by now
        status = stop.code
    if isinstance(status, str):
        print(status, file=sys.stderr)
    exit_process(status if isinstance(status, int) else int(status is not None))
