"""Linear-probe alignment (Sec. 2.2): learn only the head ``v`` of ``vᵀ f(x)``; the backbone ``f``
stays frozen with BatchNorm in eval mode, so its running statistics are never touched.

Defaults are Table 16's linear-probing column (``scdd.align.recipe``). ``bn_statistics = "labelled"``
is an ablation, not the paper's probe: before the head trains, the frozen backbone's BN running
statistics are re-estimated on one pass over the clean labelled training images (its weights
unchanged), which separates what fine-tuning changes in the statistics from what it changes in the
weights (the README's probe-vs-fine-tune claim). Without augmentation the
frozen features are computed once and the head trains on them directly (same result, far less
compute). Under torchrun the head is wrapped in DistributedDataParallel and each process takes its
part (``batch_size / processes`` images) of every global batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from scdd import distributed
from scdd.align.recipe import AlignRecipe, Batches, Generators, RecipeAligner, augmented
from scdd.data.base import DatasetSplits, ImageTensorDataset, iterate_batches
from scdd.errors import ConfigError
from scdd.models.classifier import Classifier

BN_STATISTICS = ("squeeze", "labelled")


@dataclass
class LinearProbeConfig(AlignRecipe):
    bn_statistics: str = "squeeze"  # the squeeze's (Sec. 2.2), or "labelled": re-estimated on the clean training images

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("linear probe needs epochs >= 1 and batch_size >= 1")
        if self.bn_statistics not in BN_STATISTICS:
            raise ConfigError(f"linear probe bn_statistics must be one of {', '.join(BN_STATISTICS)}, got {self.bn_statistics!r}")


@torch.no_grad()
def extract_features(classifier: Classifier, data, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen features and labels of a whole split (backbone in eval mode)."""
    classifier.eval()
    features, labels = [], []
    for images, batch_labels in iterate_batches(data, batch_size):
        features.append(classifier.features(images.to(device)))
        labels.append(batch_labels.to(device))
    return torch.cat(features), torch.cat(labels)


class LinearProbe(RecipeAligner):
    name = "linear-probe"
    config: LinearProbeConfig

    def trained(self, classifier: Classifier) -> nn.Module:
        classifier.eval()
        for parameter in classifier.backbone.parameters():
            parameter.requires_grad_(False)
        return classifier.head

    def identity(self) -> dict[str, Any]:
        return {"augment": self.config.augment, "bn_statistics": self.config.bn_statistics}

    def batches(self, classifier: Classifier, data: DatasetSplits, generators: Generators) -> Batches:
        config, device = self.config, classifier.head.weight.device
        if config.bn_statistics == "labelled":  # every process over the whole split: the same statistics on each
            with torch.no_grad():
                update_bn((images for images, _ in iterate_batches(data.train, 1024)), classifier, device)

        def augmented_batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for images, labels in distributed.sharded_batches(data.train, config.batch_size, shuffle=True, generator=generators.order):
                images = augmented(images.to(device), config, data.info, generators)
                with torch.no_grad():
                    features = classifier.features(images)
                yield features, labels.to(device)

        def cached_batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for features, labels in distributed.sharded_batches(cached, config.batch_size, shuffle=True, generator=generators.order):
                yield features.flatten(1).to(device), labels.to(device)

        if config.augment:
            return augmented_batches
        features, labels = extract_features(classifier, data.train, 1024, device)
        cached = ImageTensorDataset(features.view(len(features), -1, 1, 1), labels)
        return cached_batches


build = LinearProbe
