"""Stage 2, align: fit the backbone to the labels with a registered aligner (linear probe by default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scdd import distributed
from scdd.artifacts import load_tensors
from scdd.data.base import DatasetSplits
from scdd.errors import DataError
from scdd.models.classifier import Classifier
from scdd.models.saved import ModelRecord, load_model, save_model
from scdd.progress import SILENT, Progress
from scdd.registry import get_component
from scdd.runtime import derive_seed, seed_everything
from scdd.stages.common import StageResult, Stopwatch, accuracy

CLASSIFIER_FILE = "classifier.safetensors"


@dataclass
class AlignConfig:
    aligner: str = "linear-probe"
    aligner_options: dict[str, Any] = field(default_factory=dict)


def align(
    config: AlignConfig,
    backbone_path: Path,
    data: DatasetSplits,
    out_dir: Path,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> StageResult:
    """Align a squeezed backbone to ``data``'s classes; writes ``classifier.safetensors`` (the teacher)."""
    component = get_component("aligner", config.aligner)
    aligner = component.build(config.aligner_options)
    backbone, record = load_model(backbone_path, "backbone")
    if (record.dataset.channels, record.dataset.image_size) != (data.info.channels, data.info.image_size):
        raise DataError(
            f"backbone was squeezed on {record.dataset.channels}-channel {record.dataset.image_size}px images, "
            f"dataset {data.info.name!r} has {data.info.channels}-channel {data.info.image_size}px images"
        )
    seed_everything(derive_seed(seed, "align", "init"))
    classifier = Classifier(backbone, data.info.num_classes, data.info.mean, data.info.std)
    extra = {}
    if getattr(aligner, "uses_pretrained_head", False):  # the squeeze's own head (SRe²L's teacher)
        head_file = record.extra.get("head_file")
        extra["pretrained_head"] = load_tensors(Path(backbone_path).parent / head_file, "head")[0] if head_file else None
    with Stopwatch() as clock:
        classifier = aligner.align(classifier, data, device=device, seed=derive_seed(seed, "align"), progress=progress, **extra)
    held_out = accuracy(classifier, data.val, device=device)
    out = ModelRecord(
        kind="classifier",
        architecture=record.architecture,
        architecture_options=record.architecture_options,
        dataset=data.info,
        extra={"pretrainer": record.extra.get("pretrainer"), "aligner": component.name},
    )
    path = distributed.on_main(save_model, Path(out_dir) / CLASSIFIER_FILE, classifier, out)  # rank 0 writes
    return StageResult(
        "align",
        artifacts={"classifier": path},
        metrics={"teacher_heldout_top1": held_out["top1"], "teacher_heldout_top5": held_out["top5"]},
        seconds=clock.seconds,
    )
