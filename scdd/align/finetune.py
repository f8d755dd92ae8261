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
import torch.nn.functional as F

from scdd import distributed
from scdd.align.recipe import AlignRecipe, augmented
from scdd.data.base import DatasetSplits, steps_per_epoch
from scdd.errors import ConfigError
from scdd.models.classifier import Classifier
from scdd.progress import SILENT, Progress
from scdd.runtime import generator
from scdd.training import TrainLoop


@dataclass
class FinetuneConfig(AlignRecipe):
    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("fine-tuning needs epochs >= 1 and batch_size >= 2 (BatchNorm trains on the batch)")


class Finetune:
    def __init__(self, config: FinetuneConfig) -> None:
        self.config = config

    def align(
        self,
        classifier: Classifier,
        data: DatasetSplits,
        *,
        device: torch.device,
        seed: int,
        progress: Progress = SILENT,
    ) -> Classifier:
        """Train every parameter of ``classifier`` in place (BN in training mode); returns it in eval mode."""
        config = self.config
        classifier.to(device).train()
        for parameter in classifier.parameters():
            parameter.requires_grad_(True)
        per_epoch = steps_per_epoch(data.train, config.batch_size, drop_last=True)
        loop = TrainLoop(
            "align finetune", config, classifier.parameters(), epochs=config.epochs, steps_per_epoch=per_epoch, device=device
        )
        order = generator(seed, "finetune", "order")
        crops = generator(seed, "finetune", "crops", *distributed.rank_parts(), device=device)
        model = loop.wrap(classifier)  # under torchrun: gradients averaged over processes
        identity = {"epochs": config.epochs, "per_epoch": per_epoch}
        loop.keep("align-finetune", identity, modules={"classifier": classifier}, generators={"order": order, "crops": crops})

        def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            shards = distributed.sharded_batches(data.train, config.batch_size, shuffle=True, generator=order, drop_last=True)
            for images, labels in shards:
                images, labels = images.to(device), labels.to(device)
                yield (augmented(images, config, data.info, crops) if config.augment else images), labels

        loop.run(batches, lambda batch, _: F.cross_entropy(model(batch[0]), batch[1]), progress=progress)
        return classifier.eval()


def build(config: FinetuneConfig) -> Finetune:
    return Finetune(config)
