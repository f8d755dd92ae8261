"""Stage 6, evaluate: top-1 / top-5 of trained classifiers over the whole real held-out split."""

from __future__ import annotations

from pathlib import Path

import torch

from scdd.artifacts import load_model
from scdd.data.base import DatasetSplits
from scdd.errors import DataError
from scdd.stages.common import StageResult, Stopwatch, accuracy


def evaluate(model_paths: dict[str, Path], data: DatasetSplits, *, device: torch.device) -> StageResult:
    """Accuracy (percent) of each classifier artifact on ``data.val``, at its final weights."""
    metrics = {}
    with Stopwatch() as clock:
        for name, path in model_paths.items():
            model, record = load_model(path, "classifier")
            if record.dataset.num_classes != data.info.num_classes:
                raise DataError(
                    f"{path}: model has {record.dataset.num_classes} classes, dataset {data.info.name!r} has "
                    f"{data.info.num_classes}"
                )
            metrics[name] = accuracy(model.to(device), data.val, device=device)
    return StageResult("evaluate", metrics=metrics, seconds=clock.seconds)
