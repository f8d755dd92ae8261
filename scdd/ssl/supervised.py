"""Supervised squeeze: plain cross-entropy training of backbone + linear head.

This is the squeeze SRe²L uses (the paper's baseline): the backbone learns from the labels,
and the head is dropped afterwards, so the align stage treats it like any other backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scdd import distributed
from scdd.augment import CropSpec, random_resized_crop
from scdd.data.base import DatasetSplits
from scdd.progress import SILENT, Progress
from scdd.runtime import generator
from scdd.ssl.base import PretrainConfig, PretrainResult, pixel_encoder, train_epochs


@dataclass
class SupervisedConfig(PretrainConfig):
    """Cross-entropy squeeze with random-resized-crop (+ flip where the dataset allows)."""

    crop_min_scale: float = 0.08
    label_smoothing: float = 0.0


class SupervisedPretrainer:
    def __init__(self, config: SupervisedConfig) -> None:
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
        head = nn.Linear(backbone.num_features, data.info.num_classes).to(device)
        crop = CropSpec(scale=(config.crop_min_scale, 1.0))
        flip_p = 0.5 if data.info.hflip else 0.0
        augment_generator = generator(seed, "supervised", "views", *distributed.rank_parts(), device=device)

        def step(images: torch.Tensor, labels: torch.Tensor, global_step: int, total: int) -> torch.Tensor:
            view = random_resized_crop(images, crop, flip_p=flip_p, generator=augment_generator)
            return F.cross_entropy(head(encoder(view)), labels, label_smoothing=config.label_smoothing)

        curve = train_epochs(
            name="supervised",
            config=config,
            data=data,
            parameters=[*backbone.parameters(), *head.parameters()],
            step=step,
            device=device,
            seed=seed,
            progress=progress,
            state={"modules": {"encoder": encoder, "head": head}, "generators": {"views": augment_generator}},
        )
        return PretrainResult(backbone=backbone.eval(), loss_per_epoch=curve)


def build(config: SupervisedConfig) -> SupervisedPretrainer:
    return SupervisedPretrainer(config)
