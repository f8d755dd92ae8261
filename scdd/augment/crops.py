"""Crops as explicit boxes: sampled per image, applied to a batch in one differentiable resampling.

A crop is a box ``(cx, cy, w, h)`` in fractions of the image. Where a crop must be replayed exactly
(relabelling stores boxes and flips, post-training re-applies them, ``scdd.labels``; recovery
recomputes any batch, ``scdd.augment.recovery``), ``sample_boxes`` draws it from an explicit
generator on any device. Elsewhere (self-supervised views, the supervised squeeze, the aligners'
augmentation) ``random_resized_crop`` draws boxes as torchvision's ``RandomResizedCrop`` does, with
its rejection of boxes that do not fit (``torchvision_boxes``). ``apply_crops`` uses ``grid_sample``
and is differentiable, which recovery needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms import RandomResizedCrop


@dataclass(frozen=True)
class CropSpec:
    """Random-resized-crop parameters: area fraction range and aspect-ratio range."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)


def uniform(n: int, low: float, high: float, generator: torch.Generator | None, device) -> torch.Tensor:
    """``n`` draws from U(low, high)."""
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def sample_boxes(n: int, spec: CropSpec = CropSpec(), *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
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


def torchvision_boxes(n: int, spec: CropSpec, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` boxes ``[n, 4]`` = (cx, cy, w, h) of a ``size``-pixel square image, drawn by torchvision's
    ``RandomResizedCrop.get_params``: area and log aspect ratio uniform, a box that does not fit is
    drawn again (10 tries, then the central crop), its corner uniform over the pixel positions.
    ``generator`` (a CPU generator) supplies the randomness; without one, torch's global generator does."""
    image = torch.empty(1, size, size)  # get_params reads only the image size
    with torch.random.fork_rng(devices=[], enabled=generator is not None):
        if generator is not None:
            torch.set_rng_state(generator.get_state())
        params = [RandomResizedCrop.get_params(image, list(spec.scale), list(spec.ratio)) for _ in range(n)]
        if generator is not None:
            generator.set_state(torch.get_rng_state())
    top, left, height, width = torch.tensor(params, dtype=torch.float32).reshape(n, 4).unbind(1)
    return torch.stack([(left + width / 2) / size, (top + height / 2) / size, width / size, height / size], dim=1)


def random_resized_crop(
    images: torch.Tensor,
    spec: CropSpec = CropSpec(),
    *,
    flip_p: float = 0.5,
    size: int | None = None,
    generator: torch.Generator | None = None,
    crop_generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-sample random-resized crop (boxes by ``torchvision_boxes`` from the CPU ``crop_generator``)
    plus horizontal flip (from ``generator``, on the images' device)."""
    n = images.shape[0]
    boxes = torchvision_boxes(n, spec, images.shape[-1], crop_generator).to(images.device)
    flips = sample_flips(n, flip_p, generator=generator, device=images.device) if flip_p > 0 else None
    return apply_crops(images, boxes, flips, size or images.shape[-1])
