"""Soft class-aware BatchNorm matching (EDC's soft category-aware matching, Shao et al. 2024).

Eq. 8 matches each BN layer's batch moments to the layer's global running statistics, which mix
every class. EDC adds class-conditional statistics: for each class c present in the batch, the
moments of that class's synthetic images are matched to the moments of the class's real images,
and the two terms are mixed:

    R(x') = (1 − w) · Σ_k β_k‖μ_k(x') − BN_k^RM‖ + γ_k‖σ²_k(x') − BN_k^RV‖
          +      w  · Σ_k mean_c [β_k‖μ_k(x'_c) − μ_k^c‖ + γ_k‖σ²_k(x'_c) − σ²_k^c‖]

with ``w = class_weight``. The class statistics μ_k^c, σ²_k^c are not stored in a model: ``prepare``
computes them once from the training images, through the recovery classifier in eval mode. This
matcher therefore reads real training data (``reads_data``), unlike ``bn`` and ``imbalanced-bn``.
Layer weights (β_k, γ_k, first-BN multiplier, learnable) are those of ``imbalanced-bn``.

Extra contract on top of ``scdd.matchers.base``: ``prepare(model, data, *, device)`` before
``attach`` and ``set_targets(labels)`` before each batch's steps; recovery calls both when a matcher
has them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from scdd.data.base import DatasetSplits, iterate_batches
from scdd.errors import ConfigError
from scdd.matchers.bn import BNMatchConfig, BNStatMatcher
from scdd.models.classifier import batchnorm_layers, running_statistics


@dataclass
class ClassAwareBNConfig(BNMatchConfig):
    """``class-aware-bn`` options: ``imbalanced-bn``'s, plus ``class_weight`` w of the class-conditional term."""

    class_weight: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.class_weight <= 1:
            raise ConfigError(f"class_weight must be in [0, 1], got {self.class_weight}")


@torch.no_grad()
def class_statistics(
    model: nn.Module, data: DatasetSplits, *, device: torch.device, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, the mean and biased variance of every BN layer's input over the class's training
    images (``[classes, ΣC]`` each, layers concatenated in ``batchnorm_layers`` order), model in eval mode."""
    layers = [layer for _, layer in batchnorm_layers(model)]
    classes = data.info.num_classes
    width = sum(layer.num_features for layer in layers)
    sums = torch.zeros(classes, width, dtype=torch.float64)
    squares = torch.zeros(classes, width, dtype=torch.float64)
    counts = torch.zeros(classes, dtype=torch.float64)
    offsets = [0]
    for layer in layers:
        offsets.append(offsets[-1] + layer.num_features)
    batch_labels: list[torch.Tensor] = []

    def hook(index: int):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].double()
            onehot = nn.functional.one_hot(batch_labels[0], classes).double().to(x.device)
            per_sample = x.mean(dim=(2, 3))
            per_sample_sq = x.square().mean(dim=(2, 3))
            sums[:, offsets[index] : offsets[index + 1]] += (onehot.T @ per_sample).cpu()
            squares[:, offsets[index] : offsets[index + 1]] += (onehot.T @ per_sample_sq).cpu()

        return record

    was_training = model.training
    model.eval()
    handles = [layer.register_forward_pre_hook(hook(index)) for index, layer in enumerate(layers)]
    try:
        for images, labels in iterate_batches(data.train, batch_size):
            batch_labels[:] = [labels.long()]
            counts += torch.bincount(labels.long(), minlength=classes).double()
            model(images.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if bool((counts == 0).any()):
        raise ConfigError("class-aware BN matching needs training images of every class")
    means = sums / counts[:, None]
    variances = (squares / counts[:, None] - means.square()).clamp_min(0)
    return means.float(), variances.float()


class ClassAwareBNMatcher(BNStatMatcher):
    reads_data = True
    config: ClassAwareBNConfig

    def __init__(self, config: ClassAwareBNConfig) -> None:
        super().__init__(config)
        self.class_means: torch.Tensor | None = None
        self.class_vars: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None
        self._sample_means: list[torch.Tensor | None] = []
        self._sample_squares: list[torch.Tensor | None] = []

    def prepare(self, model: nn.Module, data: DatasetSplits, *, device: torch.device) -> None:
        """Class-conditional BN input statistics of ``model`` over ``data.train`` (reads real images)."""
        self.class_means, self.class_vars = class_statistics(model, data, device=device)

    def set_targets(self, labels: torch.Tensor) -> None:
        self._targets = labels.long()

    def attach(self, model: nn.Module) -> ClassAwareBNMatcher:
        if self.class_means is None:
            raise ConfigError("class-aware-bn needs prepare(model, data) before attach: it reads class statistics from the training images")
        assert self.class_vars is not None  # prepare sets both
        super().attach(model)
        self._sample_means = [None] * len(self._layers)
        self._sample_squares = [None] * len(self._layers)
        device = running_statistics(self._layers[0])[0].device
        self.class_means, self.class_vars = self.class_means.to(device), self.class_vars.to(device)
        return self

    def _matching_forward(self, index: int, layer: nn.modules.batchnorm._BatchNorm):
        inner = super()._matching_forward(index, layer)

        def forward(x: torch.Tensor) -> torch.Tensor:
            if self.config.class_weight > 0:
                wide = x if x.dtype in (torch.float32, torch.float64) else x.float()
                self._sample_means[index] = wide.mean(dim=(2, 3))
                self._sample_squares[index] = wide.square().mean(dim=(2, 3))
            return inner(x)

        return forward

    def detach(self) -> None:
        super().detach()
        self._sample_means = []
        self._sample_squares = []

    def _class_distances(self) -> torch.Tensor:
        """``[2, K]``: per layer, the mean over the batch's classes of ‖μ_k(x'_c) − μ_k^c‖₂ and ‖σ²_k(x'_c) − σ²_k^c‖₂."""
        if self._targets is None:
            raise RuntimeError("class-aware-bn needs set_targets(labels) before the forward pass")
        assert self.class_means is not None and self.class_vars is not None  # attach needs them
        sample_means = [mean for mean in self._sample_means if mean is not None]
        sample_squares = [square for square in self._sample_squares if square is not None]
        if not self._layers or len(sample_means) < len(self._layers) or len(sample_squares) < len(self._layers):
            raise RuntimeError("no forward pass has run since the matcher was attached")
        means = torch.cat(sample_means, dim=1)  # [N, ΣC]
        squares = torch.cat(sample_squares, dim=1)
        targets = self._targets.to(means.device)
        present = torch.unique(targets)
        onehot = (targets[:, None] == present[None, :]).to(means.dtype)  # [N, P]
        counts = onehot.sum(0)[:, None]
        class_mean = onehot.T @ means / counts  # [P, ΣC]
        class_var = onehot.T @ squares / counts - class_mean.square()
        squared = torch.stack(
            [(class_mean - self.class_means[present].to(means)).square(), (class_var - self.class_vars[present].to(means)).square()]
        )  # [2, P, ΣC]
        sums = torch.zeros(2, len(present), len(self._layers), device=means.device, dtype=means.dtype)
        sums.index_add_(2, self._segments.to(means.device), squared)
        return sums.clamp_min(torch.finfo(sums.dtype).tiny).sqrt().mean(1)

    def layer_losses(self) -> torch.Tensor:
        weight = self.config.class_weight
        weights = self.weights()
        if weight >= 1:
            class_distances = self._class_distances()
            return weight * (weights.to(class_distances.device) * class_distances).sum(0)
        distances = self._distances()  # on the device of the layers' statistics, as are the class distances
        total = (1 - weight) * (weights.to(distances.device) * distances).sum(0)
        if weight > 0:
            total = total + weight * (weights.to(distances.device) * self._class_distances()).sum(0)
        return total


def build(config: ClassAwareBNConfig) -> ClassAwareBNMatcher:
    """The ``class-aware-bn`` matcher (EDC's soft category-aware matching over Eq. 8)."""
    return ClassAwareBNMatcher(config)
