"""Crops as explicit boxes: sampled per image, applied to a batch in one differentiable resampling.

A crop is a box ``(cx, cy, w, h)`` in fractions of the image, so a crop sampled once can be replayed
exactly: relabelling stores boxes and flips, post-training re-applies them (``scdd.labels``).
``apply_crops`` uses ``grid_sample`` and is differentiable, which recovery needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CropSpec:
    """Random-resized-crop parameters: area fraction range and aspect-ratio range."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)


def uniform(n: int, low: float, high: float, generator: torch.Generator | None, device) -> torch.Tensor:
    """``n`` draws from U(low, high)."""
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def sample_boxes(
    n: int, spec: CropSpec = CropSpec(), *, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """``n`` random-resized-crop boxes ``[n, 4]`` = (cx, cy, w, h) in image fractions, for square images."""
    area = uniform(n, spec.scale[0], spec.scale[1], generator, device)
    log_ratio = uniform(n, math.log(spec.ratio[0]), math.log(spec.ratio[1]), generator, device)
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(area * ratio).clamp(max=1.0)
    height = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = width / 2 + torch.rand(n, generator=generator, device=device) * (1 - width)
    cy = height / 2 + torch.rand(n, generator=generator, device=device) * (1 - height)
    return torch.stack([cx, cy, width, height], dim=1)


def sample_flips(n: int, p: float, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """``n`` booleans, each true with probability ``p``."""
    return torch.rand(n, generator=generator, device=device) < p


def apply_crops(
    images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor | None, size: int, *, padding_mode: str = "border"
) -> torch.Tensor:
    """Crop each image to its box, optionally flip it, and resize to ``size`` (bilinear); outside the
    image ``padding_mode`` reads the border pixel or, with ``"zeros"``, black (padded crops)."""
    n = images.shape[0]
    boxes = boxes.to(device=images.device, dtype=images.dtype)
    sign = torch.ones(n, device=images.device, dtype=images.dtype)
    if flips is not None:
        sign = torch.where(flips.to(images.device), -sign, sign)
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = boxes[:, 2] * sign
    theta[:, 0, 2] = boxes[:, 0] * 2 - 1
    theta[:, 1, 1] = boxes[:, 3]
    theta[:, 1, 2] = boxes[:, 1] * 2 - 1
    grid = F.affine_grid(theta, [n, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def random_resized_crop(
    images: torch.Tensor,
    spec: CropSpec = CropSpec(),
    *,
    flip_p: float = 0.5,
    size: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-sample random-resized crop plus horizontal flip."""
    n = images.shape[0]
    boxes = sample_boxes(n, spec, generator=generator, device=images.device)
    flips = sample_flips(n, flip_p, generator=generator, device=images.device) if flip_p > 0 else None
    return apply_crops(images, boxes, flips, size or images.shape[-1])
