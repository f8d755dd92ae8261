"""Fine-tuning alignment (Sec. 2.2's alternative to the linear probe): the whole network, backbone
included, is trained on the labels with BatchNorm in training mode, so the BN running statistics
move to the labelled data. The paper finds this worse for recovery than linear probing because it
disturbs the self-supervised BN statistics that recovery matches; it is here to compare with.

Defaults are Table 16's linear-probing column, the only alignment recipe the paper gives: SGD,
lr 0.03, weight decay 1e-4, momentum 0.9, batch 256, cosine schedule, 200 epochs; random-resized
crop (+ flip where the dataset allows) each step. Under torchrun the classifier is wrapped in
DistributedDataParallel, each process takes its part (``batch_size / processes`` images) of every
global batch, and BatchNorm statistics are per process (rank 0's are kept, as DDP broadcasts them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scdd import distributed
from scdd.augment import CropSpec, random_resized_crop
from scdd.data.base import DatasetSplits, steps_per_epoch
from scdd.errors import ConfigError
from scdd.models.classifier import Classifier
from scdd.progress import SILENT, Progress
from scdd.training.checkpoint import epoch_checkpoint
from scdd.runtime import generator
from scdd.training import check_finite, cosine_schedule, make_optimizer

SYNC_EVERY = 10  # steps between loss reports (host synchronisations)


@dataclass
class FinetuneConfig:
    epochs: int = 200
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.03
    weight_decay: float = 1e-4
    momentum: float = 0.9
    augment: bool = True  # random-resized crop (+ flip where the dataset allows) each step
    crop_min_scale: float = 0.08

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
        optimizer = make_optimizer(
            config.optimizer, classifier.parameters(), lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum
        )
        per_epoch = steps_per_epoch(data.train, config.batch_size, drop_last=True)
        total = config.epochs * per_epoch
        schedule = cosine_schedule(optimizer, total)
        order = generator(seed, "finetune", "order")
        crops = generator(seed, "finetune", "crops", *distributed.rank_parts(), device=device)
        crop = CropSpec(scale=(config.crop_min_scale, 1.0))
        flip_p = 0.5 if data.info.hflip else 0.0
        model = distributed.wrap_ddp(classifier, device)  # under torchrun: gradients averaged over processes
        checkpoint = epoch_checkpoint(
            "align-finetune", identity={"epochs": config.epochs, "per_epoch": per_epoch},
            modules={"classifier": classifier}, optimizer=optimizer, scheduler=schedule, generators={"order": order, "crops": crops},
        )
        start, _, _ = checkpoint.restore()  # an interrupted run continues after its last finished epoch
        task = progress.task("align finetune", total)
        task.advance(start * per_epoch)
        step = start * per_epoch
        try:
            for epoch in range(start, config.epochs):
                batches = distributed.sharded_batches(data.train, config.batch_size, shuffle=True, generator=order, drop_last=True)
                for images, labels in batches:
                    images, labels = images.to(device), labels.to(device)
                    if config.augment:
                        images = random_resized_crop(images, crop, flip_p=flip_p, generator=crops)
                    loss = F.cross_entropy(model(images), labels)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    step += 1
                    metrics = {"loss": check_finite(loss.item(), "align", step)} if step % SYNC_EVERY == 0 else {}
                    task.advance(1, **metrics)
                checkpoint.epoch_done(epoch + 1)
        finally:
            task.close()
        return classifier.eval()


def build(config: FinetuneConfig) -> Finetune:
    return Finetune(config)
