"""ConvNet-BN: the distillation literature's small ConvNet (DC, DSA, DM, MTT), with BatchNorm.

``depth`` blocks of 3x3 convolution (``width`` channels, padding 1) → BatchNorm → ReLU → 2x2 average
pool, then the feature map is flattened (``pool="flatten"``, as in the literature) or globally
average-pooled (``pool="avg"``). The literature's default is width 128, depth 3 with instance norm;
scdd uses BatchNorm because recovery matches BatchNorm statistics (Eq. 8), which is the ConvNetBN
variant of the same code. Width and depth are options, so one family gives a scaling ladder.
A block is not pooled once the map is down to one pixel, so 8 px inputs take any depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scdd.errors import ConfigError

POOLS = ("flatten", "avg")


@dataclass
class ConvNetConfig:
    width: int = 128
    depth: int = 3
    pool: str = "flatten"  # "flatten" (the literature's) or "avg" (global average pool)

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1:
            raise ConfigError(f"convnet needs width >= 1 and depth >= 1, got width {self.width}, depth {self.depth}")
        if self.pool not in POOLS:
            raise ConfigError(f"convnet pool must be one of {', '.join(POOLS)}, got {self.pool!r}")


class HalvingPool(nn.Module):
    """2x2 average pooling; a map already down to one pixel (a small multi-crop view) passes unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if min(x.shape[-2:]) >= 2 else x


class ConvNet(nn.Module):
    """Pixels (already normalised) to features: ``num_features`` is ``width × side²`` when flattened."""

    def __init__(self, config: ConvNetConfig, *, in_chans: int, image_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, side = in_chans, image_size
        for _ in range(config.depth):
            layers += [
                nn.Conv2d(channels, config.width, kernel_size=3, padding=1),
                nn.BatchNorm2d(config.width),
                nn.ReLU(inplace=True),
            ]
            if side >= 2:
                layers.append(HalvingPool())
                side //= 2
            channels = config.width
        self.features = nn.Sequential(*layers)
        self.pool = config.pool
        self.side = side
        self.num_features = config.width * (side * side if config.pool == "flatten" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if self.pool == "avg":
            return x.mean(dim=(2, 3))
        if x.shape[-2:] != (self.side, self.side):
            x = F.adaptive_avg_pool2d(x, self.side)
        return torch.flatten(x, 1)


def convnet(config: ConvNetConfig, *, in_chans: int, image_size: int) -> nn.Module:
    return ConvNet(config, in_chans=in_chans, image_size=image_size)
