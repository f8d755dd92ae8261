"""Supervised squeeze: plain cross-entropy training of backbone + linear head.

This is the squeeze SRe²L uses (the paper's baseline): the backbone learns from the labels,
and the head is dropped afterwards, so the align stage treats it like any other backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scdd.augment import CropSpec, random_resized_crop
from scdd.data.base import DatasetSplits
from scdd.ssl.base import PixelEncoder, PretrainConfig, Pretrainer


@dataclass
class SupervisedConfig(PretrainConfig):
    """Cross-entropy squeeze with random-resized-crop (+ flip where the dataset allows)."""

    crop_min_scale: float = 0.08
    label_smoothing: float = 0.0


class SupervisedPretrainer(Pretrainer[SupervisedConfig]):
    name = "supervised"

    def build(self, encoder: PixelEncoder, data: DatasetSplits) -> dict[str, nn.Module]:
        self.encoder, self.head = encoder, nn.Linear(encoder.num_features, data.info.num_classes)
        self.crop = CropSpec(scale=(self.config.crop_min_scale, 1.0))
        return {"encoder": self.encoder, "head": self.head}

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> torch.Tensor:
        view = random_resized_crop(images, self.crop, flip_p=self.flip_p, generator=self.views, crop_generator=self.boxes)
        return F.cross_entropy(self.head(self.encoder(view)), labels, label_smoothing=self.config.label_smoothing)

    def kept_head(self) -> nn.Module:
        return self.head


build = SupervisedPretrainer
