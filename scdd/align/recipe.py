"""What both aligners share: Table 16's linear-probing column, the only alignment recipe the paper
gives (SGD, lr 0.03, weight decay 1e-4, momentum 0.9, batch 256, cosine schedule, 200 epochs), and its
augmentation: a random-resized crop (+ flip where the dataset allows) of every image each step."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scdd.augment import CropSpec, random_resized_crop
from scdd.data.base import DatasetInfo


@dataclass
class AlignRecipe:
    epochs: int = 200
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.03
    weight_decay: float = 1e-4
    momentum: float = 0.9
    augment: bool = True  # random-resized crop (+ flip where the dataset allows) each step
    crop_min_scale: float = 0.08


def augmented(images: torch.Tensor, config: AlignRecipe, info: DatasetInfo, generator: torch.Generator) -> torch.Tensor:
    """The recipe's random-resized crop (+ flip where ``info`` allows) of every image."""
    crop = CropSpec(scale=(config.crop_min_scale, 1.0))
    return random_resized_crop(images, crop, flip_p=0.5 if info.hflip else 0.0, generator=generator)
