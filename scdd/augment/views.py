"""Self-supervised views of a batch on any device, every random parameter drawn per image from an
explicit generator: random-resized crop and flip (``scdd.augment.crops``), colour jitter, grayscale,
Gaussian blur and solarisation, and multi-crop (SwAV, DINO).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scdd.augment.crops import CropSpec, random_resized_crop, sample_flips, uniform


@dataclass(frozen=True)
class ViewSpec:
    """One self-supervised view recipe (MoCo v2/v3 style), with per-sample random parameters.

    Color jitter (brightness, contrast, saturation, then on colour images hue) is applied with probability
    ``jitter_p``; ``hue`` is the largest shift in turns (torchvision's ColorJitter ``hue``: 0.1 in MoCo v2/v3
    and DINO, 0.2 in SwAV). Blur sigma is given for a 224 px image and scaled to the input size.
    """

    crop: CropSpec = CropSpec()
    size: int | None = None
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor.view(-1, 1, 1, 1) * a + (1 - factor.view(-1, 1, 1, 1)) * b).clamp(0, 1)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True).expand_as(images)


# RGB <-> YIQ (NTSC): hue is the angle of the (I, Q) chroma plane, luma Y is kept
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def rotate_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each RGB image's hue turned by ``shift`` (turns, per image) as a rotation of its YIQ chroma plane: one
    3x3 colour matrix per image, so the whole batch is one batched product (luma kept; clamped to [0, 1])."""
    to_yiq = _RGB_TO_YIQ.to(device=images.device, dtype=images.dtype)
    to_rgb = _YIQ_TO_RGB.to(device=images.device, dtype=images.dtype)
    angle = 2 * math.pi * shift.to(images.dtype)
    cos, sin, zero, one = angle.cos(), angle.sin(), torch.zeros_like(angle), torch.ones_like(angle)
    rotation = torch.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], dim=1).view(-1, 3, 3)
    matrix = to_rgb @ rotation @ to_yiq  # [n, 3, 3]
    return torch.einsum("nij,njhw->nihw", matrix, images).clamp(0, 1)


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample separable Gaussian blur as one grouped convolution."""
    n, c, h, w = images.shape
    radius = max(1, int(math.ceil(3 * float(sigma.max()))))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-(offsets.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [n*c, k]
    flat = images.reshape(1, n * c, h, w)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(flat, kernel.view(n * c, 1, -1, 1), groups=n * c)
    return flat.view(n, c, h, w)


def random_view(
    images: torch.Tensor, spec: ViewSpec, *, generator: torch.Generator | None = None, crop_generator: torch.Generator | None = None
) -> torch.Tensor:
    """One augmented view of a batch of float pixel images in [0, 1]; crop boxes come from the CPU
    ``crop_generator`` (``scdd.augment.crops.random_resized_crop``), everything else from ``generator``."""
    n, device = images.shape[0], images.device

    def chosen(p: float) -> torch.Tensor:
        return sample_flips(n, p, generator=generator, device=device)

    out = random_resized_crop(images, spec.crop, flip_p=spec.flip_p, size=spec.size, generator=generator, crop_generator=crop_generator)
    if spec.jitter_p > 0:
        apply = chosen(spec.jitter_p)
        ones = torch.ones(n, device=device)

        def factor(strength: float) -> torch.Tensor:
            return torch.where(apply, uniform(n, 1 - strength, 1 + strength, generator, device), ones)

        out = _blend(out, torch.zeros_like(out), factor(spec.brightness))
        mean = _grayscale(out).mean(dim=(1, 2, 3), keepdim=True)
        out = _blend(out, mean.expand_as(out), factor(spec.contrast))
        if out.shape[1] > 1:
            out = _blend(out, _grayscale(out), factor(spec.saturation))
        if out.shape[1] == 3 and spec.hue > 0:
            shift = uniform(n, -spec.hue, spec.hue, generator, device)
            out = torch.where(apply.view(-1, 1, 1, 1), rotate_hue(out, shift), out)
    if spec.grayscale_p > 0 and out.shape[1] > 1:
        out = torch.where(chosen(spec.grayscale_p).view(-1, 1, 1, 1), _grayscale(out), out)
    if spec.blur_p > 0:
        apply = chosen(spec.blur_p)
        scale = out.shape[-1] / 224
        sigma = uniform(n, spec.blur_sigma[0] * scale, spec.blur_sigma[1] * scale, generator, device).clamp(min=1e-3)
        out = torch.where(apply.view(-1, 1, 1, 1), _gaussian_blur(out, sigma), out)
    if spec.solarize_p > 0:
        solarized = torch.where(out >= 0.5, 1 - out, out)
        out = torch.where(chosen(spec.solarize_p).view(-1, 1, 1, 1), solarized, out)
    return out


@dataclass(frozen=True)
class MultiCropSpec:
    """Multi-crop (SwAV Sec. 3.2, DINO Sec. 3.1): one full-size view per ``global_views`` spec and
    ``local_count`` small views drawn from ``local_view``, whose ``size`` sets their side in pixels."""

    global_views: tuple[ViewSpec, ...]
    local_view: ViewSpec
    local_count: int


def multi_crop(
    images: torch.Tensor,
    spec: MultiCropSpec,
    *,
    generator: torch.Generator | None = None,
    crop_generator: torch.Generator | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The global (full-size) and local (small) views of a batch of [0, 1] pixel images."""
    draw = {"generator": generator, "crop_generator": crop_generator}
    global_views = [random_view(images, view, **draw) for view in spec.global_views]
    local_views = [random_view(images, spec.local_view, **draw) for _ in range(spec.local_count)]
    return global_views, local_views


def local_crop_size(image_size: int, ratio: float) -> int:
    """Side of a small multi-crop view: ``ratio`` of the image side (96/224 in SwAV and DINO), at least 8 px."""
    return max(8, round(image_size * ratio))
