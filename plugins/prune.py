"""Built-in ``scdd prune`` command, added through the same ``register_commands`` hook a third-party
package uses."""

from scdd.prune.command import prune_command
from scdd.registry import hookimpl


@hookimpl
def register_commands(cli):
    cli.add_command(prune_command)
