"""The distilled-set artifact: images (lossless float32 pixels), labels, and where they came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from scdd.artifacts import dataset_info_from, load_tensors
from scdd.data.base import DatasetInfo, ImageTensorDataset
from scdd.errors import ArtifactError


@dataclass
class DistilledSet:
    images: torch.Tensor  # [N, C, H, W] float pixels in [0, 1]
    labels: torch.Tensor  # [N]
    info: DatasetInfo
    ipc: int
    source: str

    def as_dataset(self) -> ImageTensorDataset:
        return ImageTensorDataset(self.images, self.labels)


def load_distilled(path: str | Path) -> DistilledSet:
    tensors, metadata = load_tensors(path, "distilled")
    if "images" not in tensors or "labels" not in tensors:
        raise ArtifactError(f"{path}: a distilled set needs 'images' and 'labels' tensors")
    bad = int((~torch.isfinite(tensors["images"].float())).sum())
    if bad:
        raise ArtifactError(f"{path}: {bad} pixel value(s) are NaN or infinite; the distilled set is damaged")
    return DistilledSet(
        images=tensors["images"].float(),
        labels=tensors["labels"].long(),
        info=dataset_info_from(metadata, path),
        ipc=int(metadata.get("ipc", 0)),
        source=str(metadata.get("source", "unknown")),
    )
