"""What is registered and preset: ``scdd plugins``, ``scdd archs`` and ``scdd presets``."""

from __future__ import annotations

from pathlib import Path

import click

from scdd.cli.render import architectures_table, components_table, out, plugins_table, preset_table
from scdd.presets import PRESETS, preset_rows
from scdd.registry import get_registry, plugin_state


@click.command()
@click.option("--kind", help="Only this kind of component.")
def plugins(kind):
    """List plugins and every component they register, by kind."""
    state = plugin_state()
    rows = [
        (info.name, info.package or "-", info.version or "-", f"broken: {info.error}" if info.error else "loaded")
        for info in state.plugins.values()
    ]
    out.print(plugins_table(rows))
    for info in state.plugins.values():  # also as plain lines, whatever the terminal's width
        if info.error:
            click.echo(f"warning: plugin {info.name!r} is broken: {info.error}", err=True)
    plugin_packages = {info.name: info.package or info.name for info in state.plugins.values()}
    components = [
        (c.kind, c.name, ", ".join(c.aliases), f"{c.plugin} ({plugin_packages.get(c.plugin, c.plugin)})", c.description)
        for c in get_registry()
        if kind is None or c.kind == kind
    ]
    out.print(components_table(components))


@click.command()
@click.option("--channels", type=click.IntRange(min=1), default=3, show_default=True, help="Input channels.")
@click.option("--image-size", type=click.IntRange(min=8), default=224, show_default=True, help="Input size in pixels.")
@click.option("--classes", type=click.IntRange(min=1), default=1000, show_default=True, help="Classifier head width.")
def archs(channels, image_size, classes):
    """List the registered architectures with their parameter counts (as classifiers for the given input)."""
    from scdd.models.catalog import architecture_rows  # lazy: builds every architecture with torch

    rows = architecture_rows(channels=channels, image_size=image_size, num_classes=classes)
    out.print(architectures_table(rows, f"{channels}x{image_size}x{image_size} input, {classes} classes"))


@click.group()
def presets():
    """The named presets (`--preset NAME`): the paper's settings per dataset, and mnist5k."""


@presets.command("list")
def presets_list():
    """List the presets and the dataset each one is for."""
    for name, values in PRESETS.items():
        click.echo(f"{name}\t{values.get('dataset', name)}")


@presets.command("show")
@click.argument("name")
def presets_show(name):
    """Print every value of preset NAME with the paper table it comes from."""
    out.print(preset_table(name, preset_rows(name)))


@presets.command("export")
@click.argument("name")
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="File to write (default: print it).")
def presets_export(name, out_file):
    """Write preset NAME as a recipe file (TOML), each value's source a comment: scdd run --config FILE."""
    from scdd.artifacts import atomic_path  # lazy: torch
    from scdd.recipes import preset_recipe

    text = preset_recipe(name)
    if out_file is None:
        click.echo(text, nl=False)
        return
    with atomic_path(out_file) as tmp:
        tmp.write_text(text)
    click.echo(str(out_file))


COMMANDS = (plugins, archs, presets)
