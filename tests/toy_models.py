"""Toy architectures for the pruning tests: a torchvision-style VGG, a VGG-BN backbone and a CNN
without BatchNorm, registered in process by the ``test_architectures`` fixture (conftest.py); and
the matcher tests' two-BN model."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vgg import make_layers

from scdd.registry import hookimpl

VGG_CFG = [8, "M", 16, "M", 32]


class TorchvisionStyleVGG(nn.Module):
    """torchvision's VGG layout at toy size: ``make_layers`` features, adaptive average pool to 2x2,
    flatten, MLP classifier (so each last-layer channel owns 4 classifier inputs)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.features = make_layers(VGG_CFG, batch_norm=True)
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Linear(32 * 4, 24), nn.ReLU(True), nn.Dropout(), nn.Linear(24, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def tiny_vgg_bn(config, *, in_chans: int, image_size: int) -> nn.Module:
    """A VGG-BN backbone as scdd architectures are: conv/BN features, global pool, ``num_features``."""
    features = make_layers(VGG_CFG, batch_norm=True)
    features[0] = nn.Conv2d(in_chans, VGG_CFG[0], kernel_size=3, padding=1)
    backbone = nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    backbone.num_features = VGG_CFG[-1]
    return backbone


def plain_cnn(config, *, in_chans: int, image_size: int) -> nn.Module:
    backbone = nn.Sequential(nn.Conv2d(in_chans, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    backbone.num_features = 8
    return backbone


class TestArchitectures:
    @hookimpl
    def register_architectures(self, register):
        register("tiny-vgg-bn", tiny_vgg_bn, description="test: torchvision-style VGG-BN features")
        register("plain-cnn", plain_cnn, description="test: no BatchNorm")


def randomise_bn(model: nn.Module) -> None:
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)


def two_bn_model() -> nn.Module:
    """Two conv → BN layers (4 and 6 channels) with random running statistics, in eval mode: the matcher tests' model."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6))
    for bn in (model[1], model[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return model.eval()
