"""Building the configured dataset through the registry."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scdd.data.base import DatasetSplits
from scdd.data.carve import select_split
from scdd.errors import DataError
from scdd.registry import get_component

if TYPE_CHECKING:  # scdd.config imports every stage; the loader needs only six of its fields
    from scdd.config import RunConfig


def load_dataset(config: RunConfig) -> DatasetSplits:
    """Build the configured dataset; a ``data_root`` that does not exist is an error naming it. With
    ``eval_split = "validation"`` the held-out split is replaced by a carve of the training images."""
    component = get_component("dataset", config.dataset)
    if config.data_root is not None and not Path(config.data_root).is_dir():
        raise DataError(f"--data-root {config.data_root} does not exist or is not a folder")
    options = dict(config.dataset_options)
    config_class = component.config_class()
    if config.strict and config_class is not None and "strict" in {f.name for f in dataclasses.fields(config_class)}:
        options["strict"] = True  # datasets of image files; array datasets have nothing to decode
    return select_split(component.build(options, data_root=config.data_root), config.eval_split, config.validation_fraction)


def skipped_summary(data: DatasetSplits) -> dict[str, Any]:
    """The manifest's note of image files left out because they could not be decoded."""
    return {"skipped_files": len(data.skipped), "skipped": list(data.skipped[:20])} if data.skipped else {}
