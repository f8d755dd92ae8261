"""The plugin module named by the ``scdd`` entry point: hook implementations only.

Factories and configs are given as ``"module:attribute"`` strings, so listing plugins
(``scdd plugins``) never imports torch or lightly.
"""

from scdd.registry import hookimpl
from scdd_simclr.command import simclr_info


@hookimpl
def register_pretrainers(register):
    register(
        "simclr",
        "scdd_simclr.simclr:build",
        config="scdd_simclr.simclr:SimCLRConfig",
        aliases=["sim-clr"],
        description="SimCLR: NT-Xent over two augmented views, in-batch negatives (example plugin)",
    )


@hookimpl
def register_commands(cli):
    cli.add_command(simclr_info)
