"""Stage 6, evaluate: top-1 / top-5 of trained classifiers over the whole real held-out split.

Every model is evaluated at its final weights (no best-epoch-on-test picking). Repeated post-training
runs of one student (keys ``<arch>/run<r>``) are summarised as mean ± sample standard deviation.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

import torch

from scdd.data.base import DatasetSplits
from scdd.errors import DataError
from scdd.models.saved import load_model
from scdd.runtime import place
from scdd.stages.common import StageResult, Stopwatch, accuracy

_RUN_SUFFIX = re.compile(r"^(?P<name>.+)/run(?P<run>\d+)$")


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def summarize_runs(per_run: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Group ``<name>/run<r>`` entries by name: mean top-1/top-5, their standard deviation and every run's values."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for key, values in per_run.items():
        match = _RUN_SUFFIX.match(key)
        groups.setdefault(match["name"] if match else key, []).append(values)
    summary = {}
    for name, runs in groups.items():
        entry: dict[str, Any] = {"params": runs[0].get("params")}
        for metric in ("top1", "top5"):
            scores = [run[metric] for run in runs]
            entry[metric] = statistics.fmean(scores)
            if len(scores) > 1:
                entry[f"{metric}_std"] = statistics.stdev(scores)
                entry[f"{metric}_runs"] = scores
        summary[name] = entry
    return summary


def evaluate(model_paths: dict[str, Path], data: DatasetSplits, *, device: torch.device) -> StageResult:
    """Accuracy (percent) of each classifier artifact on ``data.val`` at its final weights, with its parameter
    count; repeated runs of one architecture are summarised (``summarize_runs``)."""
    metrics = {}
    with Stopwatch() as clock:
        for name, path in model_paths.items():
            model, record = load_model(path, "classifier")
            if record.dataset.num_classes != data.info.num_classes:
                raise DataError(
                    f"{path}: model has {record.dataset.num_classes} classes, dataset {data.info.name!r} has {data.info.num_classes}"
                )
            metrics[name] = {**accuracy(place(model, device), data.val, device=device), "params": parameter_count(model)}
    return StageResult("evaluate", metrics=summarize_runs(metrics), seconds=clock.seconds)
