"""``scdd simclr-info``: a small command contributed by the plugin."""

from __future__ import annotations

from importlib import metadata

import click

from scdd.registry import get_component


@click.command("simclr-info")
def simclr_info() -> None:
    """Show the SimCLR pretrainer's default options and how to use it."""
    component = get_component("pretrainer", "simclr")
    click.echo(f"{component.name} (scdd-simclr {metadata.version('scdd-simclr')}): {component.description}")
    for key, value in component.defaults().items():
        click.echo(f"  {key} = {value}")
    click.echo("use: scdd run --pretrainer simclr --set squeeze.pretrainer_options.temperature=0.5")
