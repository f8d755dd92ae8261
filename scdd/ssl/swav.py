"""SwAV (Caron et al., 2020) for ResNet backbones: prototypes, Sinkhorn-Knopp equal-partition codes,
swapped prediction across views, and multi-crop (2 large + N small views).

Each view's l2-normalised projection is scored against l2-normalised prototypes (a bias-free linear
layer, re-normalised before every step). Codes for each large view come from Sinkhorn-Knopp
(ε = 0.05, 3 iterations) over the batch (plus an optional queue of earlier large-view projections,
for small batches); every other view predicts them through ``softmax(scores / τ)``. The swapped
prediction loss and Sinkhorn are lightly's ``SwaVLoss``; the projection head is lightly's
``SwaVProjectionHead`` (2048-d hidden layer with BatchNorm and ReLU). The prototypes stay frozen for
the first epoch (SwAV's ``freeze_prototypes_niters``: 313 iterations at batch 4096, 5005 at batch 256).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from lightly.loss import SwaVLoss
from lightly.models.modules.heads import SwaVProjectionHead
from torch import nn

from scdd.augment import CropSpec, MultiCropSpec, ViewSpec, local_crop_size
from scdd.data.base import DatasetSplits
from scdd.errors import ConfigError
from scdd.ssl.base import PixelEncoder, PretrainConfig, Pretrainer


@dataclass
class SwAVConfig(PretrainConfig):
    """SwAV for ResNet-50: τ = 0.1, ε = 0.05, 3 Sinkhorn iterations, 3000 prototypes, MLP 2048 → 128,
    2×224 px crops from 14% and 6×96 px crops of 5-14%, prototypes frozen for one epoch, no queue
    (SwAV uses a 3840-long queue from epoch 15 at batch 256). Optimiser: Table 14's SGD; SwAV's own
    LARS is ``optimizer=lars`` (lightly's)."""

    temperature: float = 0.1
    hue: float = 0.2  # colour distortion of strength 1: ColorJitter(0.8, 0.8, 0.8, 0.2)
    sinkhorn_epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    prototypes: int = 3000
    hidden_dim: int = 2048
    output_dim: int = 128
    crop_min_scale: float = 0.14
    local_views: int = 6
    local_crop_scale: tuple[float, float] = (0.05, 0.14)
    local_crop_ratio: float = 96 / 224
    freeze_prototypes_epochs: float = 1.0
    queue_length: int = 0
    queue_start_epoch: int = 15

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.local_views < 0 or self.prototypes < 2:
            raise ConfigError("swav needs local_views >= 0 and prototypes >= 2")


def multi_crop_spec(config: SwAVConfig, data: DatasetSplits) -> MultiCropSpec:
    """SwAV's augmentation: every crop gets colour distortion of strength 1 (0.8, 0.8, 0.8, hue 0.2) with p 0.8,
    grayscale 0.2, Gaussian blur 0.5 and flip."""
    flip_p = 0.5 if data.info.hflip else 0.0
    common: dict[str, Any] = dict(flip_p=flip_p, brightness=0.8, contrast=0.8, saturation=0.8, hue=config.hue, blur_p=0.5)
    large = ViewSpec(crop=CropSpec(scale=(config.crop_min_scale, 1.0)), **common)
    small = ViewSpec(
        crop=CropSpec(scale=config.local_crop_scale),
        size=local_crop_size(data.info.image_size, config.local_crop_ratio),
        **common,
    )
    return MultiCropSpec(global_views=(large, large), local_view=small, local_count=config.local_views)


def build_criterion(config: SwAVConfig) -> SwaVLoss:
    """Swapped prediction with Sinkhorn-Knopp codes (lightly)."""
    return SwaVLoss(
        temperature=config.temperature,
        sinkhorn_iterations=config.sinkhorn_iterations,
        sinkhorn_epsilon=config.sinkhorn_epsilon,
    )


def prototype_scores(projections: torch.Tensor, prototypes: nn.Linear) -> torch.Tensor:
    """Cosine similarity of each l2-normalised projection with each (unit-norm) prototype."""
    return prototypes(F.normalize(projections, dim=1))


@torch.no_grad()
def normalize_prototypes(prototypes: nn.Linear) -> None:
    prototypes.weight.copy_(F.normalize(prototypes.weight, dim=1))


class ProjectionQueue:
    """The last ``length`` normalised large-view projections of each assigned view, newest first."""

    def __init__(self, views: int, length: int, dim: int, device: torch.device) -> None:
        self.items = torch.zeros(views, length, dim, device=device)
        self.filled = 0

    def scores(self, prototypes: nn.Linear) -> list[torch.Tensor] | None:
        if self.filled < self.items.shape[1]:
            return None  # SwAV uses the queue only once it is full
        return [prototypes(view) for view in self.items]

    def push(self, projections: list[torch.Tensor]) -> None:
        batch = projections[0].shape[0]
        self.items = torch.cat([torch.stack([F.normalize(p.detach(), dim=1) for p in projections]), self.items], 1)
        self.items = self.items[:, : self.items.shape[1] - batch]
        self.filled = min(self.items.shape[1], self.filled + batch)


class SwAVPretrainer(Pretrainer[SwAVConfig]):
    name = "swav"

    def build(self, encoder: PixelEncoder, data: DatasetSplits) -> dict[str, nn.Module]:
        config = self.config
        self.encoder = nn.Sequential(encoder, SwaVProjectionHead(encoder.num_features, config.hidden_dim, config.output_dim))
        self.prototypes = nn.Linear(config.output_dim, config.prototypes, bias=False)
        self.criterion = build_criterion(config)
        self.crops = multi_crop_spec(config, data)
        self.queue = ProjectionQueue(2, config.queue_length, config.output_dim, self.device) if config.queue_length > 0 else None
        return {"encoder": self.encoder, "prototypes": self.prototypes}

    def keeps_progress(self) -> bool:
        return self.queue is None  # the queue is rebuilt each step, not in place: with one, a squeeze starts over

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> torch.Tensor:
        config, prototypes = self.config, self.prototypes
        steps_per_epoch = total // config.epochs
        normalize_prototypes(prototypes)
        prototypes.requires_grad_(step >= math.ceil(config.freeze_prototypes_epochs * steps_per_epoch))
        large, small = self.multi_crop(images, self.crops)
        large_projections = self.encoder(torch.cat(large)).chunk(len(large))
        small_projections = self.encoder(torch.cat(small)).chunk(len(small)) if small else ()
        queue_scores = None
        if self.queue is not None and step >= config.queue_start_epoch * steps_per_epoch:
            with torch.no_grad():
                queue_scores = self.queue.scores(prototypes)
            self.queue.push(list(large_projections))
        return self.criterion(
            [prototype_scores(p, prototypes) for p in large_projections],
            [prototype_scores(p, prototypes) for p in small_projections],
            queue_scores,
        ).squeeze()


build = SwAVPretrainer
