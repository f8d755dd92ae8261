"""The classifier every stage shares: pixel normalisation, a registered backbone, a linear head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std``; part of the model so every stage feeds pixels in [0, 1]."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def feature_width(backbone: nn.Module) -> int:
    """A backbone's ``num_features``, the width of its pooled features (``build_backbone`` checks it is an int)."""
    width = backbone.num_features
    if not isinstance(width, int):
        raise TypeError(f"{type(backbone).__name__} has no int 'num_features'")
    return width


class Classifier(nn.Module):
    """``head(backbone(normalize(pixels)))``; ``backbone.num_features`` sizes the head."""

    def __init__(self, backbone: nn.Module, num_classes: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone
        self.head = nn.Linear(feature_width(backbone), num_classes)
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
        mean, var = running_statistics(module)
        state[f"{name}.running_mean"] = mean.detach().clone()
        state[f"{name}.running_var"] = var.detach().clone()
        assert module.num_batches_tracked is not None  # tracked with the statistics
        state[f"{name}.num_batches_tracked"] = module.num_batches_tracked.detach().clone()
    return state


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def submodule(model: nn.Module, name: str, kind: type[ModuleT]) -> ModuleT:
    """``model.get_submodule(name)``, which the caller knows to be a ``kind``."""
    layer = model.get_submodule(name)
    assert isinstance(layer, kind), f"{name} is a {type(layer).__name__}, not a {kind.__name__}"
    return layer


def running_statistics(layer: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """A BN layer's running mean and variance (``None`` only in a layer made with ``track_running_stats=False``)."""
    mean, var = layer.running_mean, layer.running_var
    assert mean is not None and var is not None, f"{type(layer).__name__} keeps no running statistics"
    return mean, var
