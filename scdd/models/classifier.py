"""The classifier every stage shares: pixel normalisation, a registered backbone, a linear head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``; part of the model so every stage feeds pixels in [0, 1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """``head(backbone(normalize(pixels)))``; ``backbone.num_features`` sizes the head."""

    def __init__(self, backbone: nn.Module, num_classes: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, num_classes)
        head_init_std = getattr(backbone, "head_init_std", None)  # an architecture may ask for a small head
        if head_init_std is not None:
            nn.init.normal_(self.head.weight, 0.0, head_init_std)
            nn.init.zeros_(self.head.bias)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(pixels))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels))


def batchnorm_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """The model's 2-d BatchNorm layers in forward-definition order (k = 0 is the first BN of Eq. 8)."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)]


def batchnorm_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every BN running statistic, to check that a stage left them untouched."""
    state = {}
    for name, module in batchnorm_layers(model):
        state[f"{name}.running_mean"] = module.running_mean.detach().clone()
        state[f"{name}.running_var"] = module.running_var.detach().clone()
        state[f"{name}.num_batches_tracked"] = module.num_batches_tracked.detach().clone()
    return state
