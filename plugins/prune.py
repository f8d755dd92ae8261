"""Built-in ``scdd prune`` command, added through the same ``register_commands`` hook a third-party
package uses."""

from scdd.registry import hookimpl


@hookimpl
def register_commands(cli):
    from scdd.prune.command import prune_command

    cli.add_command(prune_command)
