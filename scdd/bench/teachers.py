"""A bench's teachers: each distinct squeeze + align is trained once into ``teachers/<name>/``, recorded
there (``teacher.json``: its key, classifier, seconds and top-1) and reused by a bench continued in the
same folder when the key matches (``scdd.bench.plan.teacher_key``: data, settings and seed)."""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scdd.analysis.bn_stats import inspect_checkpoint
from scdd.artifacts import write_json
from scdd.bench.reuse import bench_path, read_record, relative
from scdd.config import RunConfig
from scdd.data.base import DatasetSplits
from scdd.pipeline import train_teacher
from scdd.progress import Progress

TEACHER_RECORD = "teacher.json"


@dataclass
class Teacher:
    classifier: Path
    seconds: float
    top1: float
    summary: dict[str, Any] = field(default_factory=dict)  # what results.json's "teachers" says about it
    reused: bool = False  # taken from its record in the bench folder


def teacher_summary(config: RunConfig, teacher: Teacher) -> dict[str, Any]:
    """A teacher's components, top-1, cost and BatchNorm statistics (Table 2's BN-mean Var, Eq. 7's entropy)."""
    layers = inspect_checkpoint(teacher.classifier).layers
    return {
        "pretrainer": config.squeeze.pretrainer,
        "architecture": config.squeeze.architecture,
        "architecture_options": dict(config.squeeze.architecture_options),
        "aligner": config.align.aligner,
        "top1": teacher.top1,
        "seconds": round(teacher.seconds, 1),
        "classifier": str(teacher.classifier),
        "bn_first_mean_variance": layers[0].mean_variance if layers else None,
        "bn_mean_variance": statistics.fmean(layer.mean_variance for layer in layers) if layers else None,
        "bn_var_variance": statistics.fmean(layer.var_variance for layer in layers) if layers else None,
        "bn_entropy": statistics.fmean(layer.entropy for layer in layers) if layers else None,
        "bn_layers": [dataclasses.asdict(layer) for layer in layers],
    }


def record_teacher(folder: Path, key: str, classifier: Path, seconds: float, top1: float) -> None:
    write_json(
        folder / TEACHER_RECORD,
        {"scdd_bench_teacher": 1, "key": key, "classifier": relative(folder, classifier), "seconds": seconds, "top1": top1},
    )


def recorded_teacher(folder: Path, key: str) -> tuple[Path, float, float] | None:
    """The classifier, seconds and top-1 of a finished teacher with this key in ``folder``, else None."""
    record = read_record(folder / TEACHER_RECORD)
    if record is None or record.get("key") != key:
        return None
    classifier = bench_path(folder, str(record.get("classifier", "")))
    try:
        seconds, top1 = float(record["seconds"]), float(record["top1"])
    except (KeyError, TypeError, ValueError):
        return None
    return (classifier, seconds, top1) if classifier.is_file() else None


def bench_teacher(
    config: RunConfig, data: DatasetSplits, folder: Path, key: str, *, device: torch.device, progress: Progress, reuse: bool
) -> Teacher:
    """The teacher of ``config`` in ``folder``: its record's when ``reuse`` and it matches ``key``, else trained and recorded."""
    finished = recorded_teacher(folder, key) if reuse else None
    if finished is not None:
        teacher = Teacher(*finished, reused=True)
    else:
        squeezed, aligned = train_teacher(config, data, folder, device=device, seed=config.seed, progress=progress)
        teacher = Teacher(aligned.artifacts["classifier"], squeezed.seconds + aligned.seconds, aligned.metrics["teacher_heldout_top1"])
        record_teacher(folder, key, teacher.classifier, teacher.seconds, teacher.top1)
    teacher.summary = teacher_summary(config, teacher)
    return teacher
