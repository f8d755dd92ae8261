"""The ``scdd`` command-line interface."""

from scdd.cli.main import cli, main

__all__ = ["cli", "main"]
