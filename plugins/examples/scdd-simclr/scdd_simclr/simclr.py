"""SimCLR (Chen et al., 2020) as an scdd squeeze objective.

Two views of each image go through the backbone and a 2-layer projection head; the NT-Xent loss
pulls the two views of an image together against every other view in the batch. The epoch loop,
optimiser and schedule are scdd's (``scdd.ssl.base.train_epochs``, Table 14 defaults), the views are
scdd's batched augmentations, the head and loss are lightly's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn

from scdd.augment import CropSpec, ViewSpec, random_view
from scdd.data.base import DatasetInfo, DatasetSplits
from scdd.progress import SILENT, Progress
from scdd.runtime import generator
from scdd.ssl.base import PretrainConfig, PretrainResult, pixel_encoder, train_epochs


@dataclass
class SimCLRConfig(PretrainConfig):
    """SimCLR's settings: τ = 0.5, a 2048-wide head with 128 outputs, crops from 8% of the image,
    colour jitter of strength 1 (0.8 brightness / contrast / saturation, applied with p = 0.8)."""

    temperature: float = 0.5
    hidden_dim: int = 2048
    output_dim: int = 128
    crop_min_scale: float = 0.08
    jitter_strength: float = 1.0


def simclr_view(config: SimCLRConfig, info: DatasetInfo) -> ViewSpec:
    """SimCLR's view recipe (one recipe for both views)."""
    strength = 0.8 * config.jitter_strength
    return ViewSpec(
        crop=CropSpec(scale=(config.crop_min_scale, 1.0)),
        flip_p=0.5 if info.hflip else 0.0,
        jitter_p=0.8,
        brightness=strength,
        contrast=strength,
        saturation=strength,
        grayscale_p=0.2,
        blur_p=0.5,
    )


class SimCLRPretrainer:
    def __init__(self, config: SimCLRConfig) -> None:
        self.config = config

    def pretrain(
        self,
        backbone: nn.Module,
        data: DatasetSplits,
        *,
        device: torch.device,
        seed: int,
        progress: Progress = SILENT,
    ) -> PretrainResult:
        config = self.config
        backbone.to(device).train()
        encoder = pixel_encoder(backbone, data.info).to(device)
        head = SimCLRProjectionHead(backbone.num_features, config.hidden_dim, config.output_dim).to(device)
        criterion = NTXentLoss(temperature=config.temperature)
        view = simclr_view(config, data.info)
        views = generator(seed, "simclr", "views", device=device)

        def step(images: torch.Tensor, labels: torch.Tensor, global_step: int, total: int) -> torch.Tensor:
            first = random_view(images, view, generator=views)
            second = random_view(images, view, generator=views)
            return criterion(head(encoder(first)), head(encoder(second)))

        curve = train_epochs(
            name="simclr",
            config=config,
            data=data,
            parameters=[*backbone.parameters(), *head.parameters()],
            step=step,
            device=device,
            seed=seed,
            progress=progress,
            state={"modules": {"encoder": encoder, "head": head}, "generators": {"views": views}},  # resumable per epoch
        )
        return PretrainResult(backbone=backbone.eval(), loss_per_epoch=curve)


def build(config: SimCLRConfig) -> SimCLRPretrainer:
    return SimCLRPretrainer(config)
