"""Stage 4, relabel: crop-level soft labels from the aligned model (SRe²L's relabelling, Sec. 2.5).

For every post-training epoch, each distilled image gets a random-resized crop (+ flip where the
dataset allows); the teacher's logits for exactly that crop are stored with the crop's box and
flip, so post-training replays the same crops (Eq. 10). The same seed gives identical crops and labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from scdd.artifacts import load_model, load_tensors, save_tensors
from scdd.augment import CropSpec, apply_crops, sample_boxes, sample_flips
from scdd.data.base import DatasetInfo
from scdd.distilled import load_distilled
from scdd.errors import ArtifactError, ConfigError
from scdd.progress import SILENT, Progress
from scdd.runtime import generator
from scdd.stages.common import StageResult, Stopwatch

SOFT_LABELS_FILE = "soft_labels.safetensors"


@dataclass
class RelabelConfig:
    epochs: int = 300  # one crop per image per post-training epoch (Table 16: 300 epochs)
    crop_min_scale: float = 0.08
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError("relabel needs epochs >= 1")


def crop_plan(
    count: int, epoch: int, info: DatasetInfo, crop_min_scale: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop boxes ``[count, 4]`` and flips ``[count]`` of one epoch, determined by ``(seed, epoch)``."""
    gen = generator(seed, "crops", epoch)
    boxes = sample_boxes(count, CropSpec(scale=(crop_min_scale, 1.0)), generator=gen)
    flips = sample_flips(count, 0.5 if info.hflip else 0.0, generator=gen)
    return boxes, flips


@dataclass
class SoftLabels:
    boxes: torch.Tensor  # [epochs, N, 4]
    flips: torch.Tensor  # [epochs, N] bool
    logits: torch.Tensor  # [epochs, N, classes]

    @property
    def epochs(self) -> int:
        return self.boxes.shape[0]


def load_soft_labels(path: str | Path) -> SoftLabels:
    tensors, _ = load_tensors(path, "soft_labels")
    try:
        return SoftLabels(tensors["boxes"], tensors["flips"].bool(), tensors["logits"].float())
    except KeyError as missing:
        raise ArtifactError(f"{path}: soft labels lack tensor {missing}") from None


def relabel(
    config: RelabelConfig,
    classifier_path: Path,
    distilled_path: Path,
    out_dir: Path,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> StageResult:
    """Label ``config.epochs`` crops of every distilled image with the teacher; writes ``soft_labels.safetensors``."""
    teacher, record = load_model(classifier_path, "classifier")
    distilled = load_distilled(distilled_path)
    if distilled.info.num_classes != record.dataset.num_classes:
        raise ArtifactError(
            f"teacher has {record.dataset.num_classes} classes, distilled set {distilled.info.num_classes}"
        )
    teacher.to(device).eval()
    count = len(distilled.labels)
    boxes, flips, logits = [], [], []
    task = progress.task("relabel", config.epochs)
    with Stopwatch() as clock, torch.no_grad():
        for epoch in range(config.epochs):
            epoch_boxes, epoch_flips = crop_plan(count, epoch, distilled.info, config.crop_min_scale, seed)
            epoch_logits = []
            for start in range(0, count, config.batch_size):
                part = slice(start, start + config.batch_size)
                crops = apply_crops(
                    distilled.images[part].to(device), epoch_boxes[part], epoch_flips[part], distilled.info.image_size
                )
                epoch_logits.append(teacher(crops).float().cpu())
            boxes.append(epoch_boxes)
            flips.append(epoch_flips)
            logits.append(torch.cat(epoch_logits))
            task.advance(1)
    task.close()
    labels = SoftLabels(torch.stack(boxes), torch.stack(flips), torch.stack(logits))
    path = save_tensors(
        Path(out_dir) / SOFT_LABELS_FILE,
        {"boxes": labels.boxes, "flips": labels.flips.to(torch.uint8), "logits": labels.logits},
        {"kind": "soft_labels", "epochs": config.epochs, "images": count},
    )
    agreement = (labels.logits.argmax(-1) == distilled.labels).float().mean().item() * 100
    return StageResult(
        "relabel",
        artifacts={"soft_labels": path},
        metrics={"crop_label_agreement": agreement, "bytes_per_image_per_epoch": labels.logits[0, 0].numel() * 4},
        seconds=clock.seconds,
    )
