"""What both aligners share: Table 16's linear-probing column, the only alignment recipe the paper
gives (SGD, lr 0.03, weight decay 1e-4, momentum 0.9, batch 256, cosine schedule, 200 epochs), its
augmentation (a random-resized crop, + flip where the dataset allows, of every image each step), and
``RecipeAligner``, which trains with cross-entropy through ``scdd.training.TrainLoop``: an aligner
says only which parameters train and what its batches are."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from scdd import distributed
from scdd.augment import CropSpec, random_resized_crop
from scdd.data.base import DatasetInfo, DatasetSplits, steps_per_epoch
from scdd.models.classifier import Classifier
from scdd.progress import SILENT, Progress
from scdd.runtime import generator, place
from scdd.training import TrainingConfig, TrainLoop

Batches = Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]


@dataclass
class Generators:
    """An alignment's random streams: batch order (CPU), flips (the device's), crop boxes (CPU)."""

    order: torch.Generator
    flips: torch.Generator
    boxes: torch.Generator


@dataclass
class AlignRecipe(TrainingConfig):
    batch_size: int = 256
    lr: float = 0.03
    weight_decay: float = 1e-4
    augment: bool = True  # random-resized crop (+ flip where the dataset allows) each step
    crop_min_scale: float = 0.08


def augmented(images: torch.Tensor, config: AlignRecipe, info: DatasetInfo, generators: Generators) -> torch.Tensor:
    """The recipe's random-resized crop (+ flip where ``info`` allows) of every image: flips from
    ``generators.flips``, crop boxes as torchvision draws them from the CPU ``generators.boxes``."""
    crop = CropSpec(scale=(config.crop_min_scale, 1.0))
    flip_p = 0.5 if info.hflip else 0.0
    return random_resized_crop(images, crop, flip_p=flip_p, generator=generators.flips, crop_generator=generators.boxes)


class RecipeAligner:
    """Trains part of a classifier on the labels with cross-entropy (``align`` is the aligner contract)."""

    name: ClassVar[str]
    drop_last: ClassVar[bool] = False  # a smaller last batch each epoch (False) or none (True)

    def __init__(self, config: AlignRecipe) -> None:
        self.config = config

    def trained(self, classifier: Classifier) -> nn.Module:
        """Set ``classifier``'s modes and gradients; return the module that trains (its state is kept)."""
        raise NotImplementedError

    def batches(self, classifier: Classifier, data: DatasetSplits, generators: Generators) -> Batches:
        """``batches(epoch)``: (inputs of the trained module, labels) on the classifier's device."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """Settings besides the budget that an interrupted alignment must share to be continued."""
        return {}

    def align(
        self, classifier: Classifier, data: DatasetSplits, *, device: torch.device, seed: int, progress: Progress = SILENT
    ) -> Classifier:
        """Align ``classifier`` in place; returns it in eval mode."""
        config = self.config
        module = self.trained(place(classifier, device, config.memory_format))
        per_epoch = steps_per_epoch(data.train, config.batch_size, drop_last=self.drop_last)
        loop = TrainLoop(f"align {self.name}", config, module.parameters(), per_epoch, device)
        ranked = distributed.rank_parts()
        streams = Generators(
            generator(seed, self.name, "order"),
            generator(seed, self.name, "crops", *ranked, device=device),
            generator(seed, self.name, "boxes", *ranked),
        )
        identity = {"epochs": config.epochs, "per_epoch": per_epoch, **self.identity()}
        loop.keep(f"align-{self.name}", identity, modules={"module": module}, generators=vars(streams))
        batches = self.batches(classifier, data, streams)
        model = loop.wrap(module)  # under torchrun: gradients averaged over processes
        loop.run(batches, lambda batch, _: F.cross_entropy(model(batch[0]), batch[1]), progress=progress)
        return classifier.eval()
