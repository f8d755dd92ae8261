"""Linear-probe alignment (Sec. 2.2): learn only the head ``v`` of ``vᵀ f(x)``; the backbone ``f``
stays frozen with BatchNorm in eval mode, so its running statistics are never touched.

Defaults are Table 16's linear-probing column: SGD, lr 0.03, weight decay 1e-4, momentum 0.9,
batch 256, cosine schedule, 200 epochs. Without augmentation the frozen features are computed
once and the head trains on them directly (same result, far less compute). Under torchrun the head
is wrapped in DistributedDataParallel and each process takes its part (``batch_size / processes``
images) of every global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scdd import distributed
from scdd.augment import CropSpec, random_resized_crop
from scdd.data.base import DatasetSplits, ImageTensorDataset, iterate_batches, steps_per_epoch
from scdd.errors import ConfigError
from scdd.models.classifier import Classifier
from scdd.progress import SILENT, Progress
from scdd.training.checkpoint import epoch_checkpoint
from scdd.runtime import generator
from scdd.training import check_finite, cosine_schedule, make_optimizer


@dataclass
class LinearProbeConfig:
    epochs: int = 200
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.03
    weight_decay: float = 1e-4
    momentum: float = 0.9
    augment: bool = True  # random-resized crop (+ flip where the dataset allows) each step
    crop_min_scale: float = 0.08

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("linear probe needs epochs >= 1 and batch_size >= 1")


@torch.no_grad()
def extract_features(classifier: Classifier, data, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen features and labels of a whole split (backbone in eval mode)."""
    classifier.eval()
    features, labels = [], []
    for images, batch_labels in iterate_batches(data, batch_size):
        features.append(classifier.features(images.to(device)))
        labels.append(batch_labels.to(device))
    return torch.cat(features), torch.cat(labels)


class LinearProbe:
    def __init__(self, config: LinearProbeConfig) -> None:
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
        """Train ``classifier.head`` in place on frozen features; returns the classifier in eval mode."""
        config = self.config
        classifier.to(device).eval()
        for parameter in classifier.backbone.parameters():
            parameter.requires_grad_(False)
        head = classifier.head
        optimizer = make_optimizer(
            config.optimizer, head.parameters(), lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum
        )
        order = generator(seed, "linear-probe", "order")
        crops = generator(seed, "linear-probe", "crops", *distributed.rank_parts(), device=device)
        per_epoch = steps_per_epoch(data.train, config.batch_size, drop_last=False)
        total = config.epochs * per_epoch
        schedule = cosine_schedule(optimizer, total)
        checkpoint = epoch_checkpoint(
            "align-linear-probe", identity={"epochs": config.epochs, "per_epoch": per_epoch, "augment": config.augment},
            modules={"head": head}, optimizer=optimizer, scheduler=schedule, generators={"order": order, "crops": crops},
        )
        start, _, _ = checkpoint.restore()  # an interrupted run continues after its last finished epoch
        if config.augment:
            batches = _augmented_batches(classifier, data, config, crops, device, order, start)
        else:
            features, labels = extract_features(classifier, data.train, 1024, device)
            cached = ImageTensorDataset(features.view(len(features), -1, 1, 1), labels)
            batches = _cached_batches(cached, config, order, device, start)
        trained = distributed.wrap_ddp(head, device)  # under torchrun: gradients averaged over processes
        task = progress.task("align linear-probe", total)
        task.advance(start * per_epoch)
        try:
            for step, (features, labels) in enumerate(batches, start=start * per_epoch + 1):
                loss = F.cross_entropy(trained(features), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                metrics = {"loss": check_finite(loss.item(), "align", step)} if step % per_epoch == 0 else {}
                task.advance(1, **metrics)
                if step % per_epoch == 0:
                    checkpoint.epoch_done(step // per_epoch)
        finally:
            task.close()
        return classifier.eval()


def _cached_batches(cached: ImageTensorDataset, config: LinearProbeConfig, order: torch.Generator, device, start: int = 0):
    for _ in range(start, config.epochs):
        for features, labels in distributed.sharded_batches(cached, config.batch_size, shuffle=True, generator=order):
            yield features.flatten(1).to(device), labels.to(device)


def _augmented_batches(classifier: Classifier, data: DatasetSplits, config: LinearProbeConfig, augment_generator, device, order, start: int = 0):
    crop = CropSpec(scale=(config.crop_min_scale, 1.0))
    flip_p = 0.5 if data.info.hflip else 0.0
    for _ in range(start, config.epochs):
        for images, labels in distributed.sharded_batches(data.train, config.batch_size, shuffle=True, generator=order):
            images = random_resized_crop(images.to(device), crop, flip_p=flip_p, generator=augment_generator)
            with torch.no_grad():
                features = classifier.features(images)
            yield features, labels.to(device)


def build(config: LinearProbeConfig) -> LinearProbe:
    return LinearProbe(config)
