"""Fine-tuning alignment (Sec. 2.2's alternative to the linear probe): the whole network, backbone
included, is trained on the labels with BatchNorm in training mode, so the BN running statistics
move to the labelled data. The paper finds this worse for recovery than linear probing because it
disturbs the self-supervised BN statistics that recovery matches; it is here to compare with.

Defaults are Table 16's linear-probing column (``scdd.align.recipe``). Under torchrun the classifier
is wrapped in DistributedDataParallel, each process takes its part (``batch_size / processes``
images) of every global batch, and BatchNorm statistics are per process (rank 0's are kept, as DDP
broadcasts them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from scdd import distributed
from scdd.align.recipe import AlignRecipe, Batches, Generators, RecipeAligner, augmented
from scdd.data.base import DatasetSplits
from scdd.errors import ConfigError
from scdd.models.classifier import Classifier


@dataclass
class FinetuneConfig(AlignRecipe):
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("fine-tuning needs epochs >= 1 and batch_size >= 2 (BatchNorm trains on the batch)")


class Finetune(RecipeAligner):
    name = "finetune"
    drop_last = True  # BatchNorm trains on every batch: no small last one

    def trained(self, classifier: Classifier) -> nn.Module:
        classifier.train()
        for parameter in classifier.parameters():
            parameter.requires_grad_(True)
        return classifier

    def batches(self, classifier: Classifier, data: DatasetSplits, generators: Generators) -> Batches:
        config, device = self.config, classifier.head.weight.device

        def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            shards = distributed.sharded_batches(data.train, config.batch_size, shuffle=True, generator=generators.order, drop_last=True)
            for images, labels in shards:
                images, labels = images.to(device), labels.to(device)
                yield (augmented(images, config, data.info, generators) if config.augment else images), labels

        return batches


build = Finetune
