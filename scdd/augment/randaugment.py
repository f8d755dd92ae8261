"""RandAugment (Cubuk et al., 2020; Table 15's Tiny-ImageNet post-training) with every image's ops
drawn from an explicit generator, so a crop plan can store them and post-training replay them.

The op table, magnitudes and op code are torchvision's (``transforms.v2.RandAugment``: 14 ops,
``num_ops`` of them per image, magnitude bin ``magnitude`` of ``num_bins``, a random sign for signed
ops). torchvision draws the ops from the global random state and, given a batch, applies the same
ops to every image; here each image has its own ops, stored as codes ``op * 2 + negative``, and
each distinct code is applied once to the images that drew it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2


@dataclass(frozen=True)
class RandAugmentSpec:
    """``num_ops`` ops per image at magnitude bin ``magnitude`` of ``num_bins`` (torchvision's defaults)."""

    num_ops: int = 2
    magnitude: int = 9
    num_bins: int = 31

    def transform(self) -> v2.RandAugment:
        return v2.RandAugment(self.num_ops, self.magnitude, self.num_bins)


def op_names(spec: RandAugmentSpec = RandAugmentSpec()) -> list[str]:
    """torchvision's RandAugment ops, in the order codes index them."""
    return list(spec.transform()._AUGMENTATION_SPACE)


def sample_codes(n: int, spec: RandAugmentSpec, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[n, num_ops]`` codes: each op uniform over the table, negated with probability 1/2."""
    ops = torch.randint(0, len(op_names(spec)), (n, spec.num_ops), generator=generator)
    negative = torch.rand(n, spec.num_ops, generator=generator) < 0.5
    return (ops * 2 + negative.long()).to(torch.int16)


def signed_magnitude(spec: RandAugmentSpec, code: int, height: int, width: int) -> tuple[str, float]:
    """The op name and signed magnitude a code stands for at this image size (as torchvision computes it)."""
    transform = spec.transform()
    name = op_names(spec)[code // 2]
    magnitudes_fn, signed = transform._AUGMENTATION_SPACE[name]
    magnitudes = magnitudes_fn(spec.num_bins, height, width)
    if magnitudes is None:
        return name, 0.0
    magnitude = float(magnitudes[spec.magnitude])
    return name, -magnitude if signed and code % 2 else magnitude


def apply_randaugment(images: torch.Tensor, codes: torch.Tensor, spec: RandAugmentSpec) -> torch.Tensor:
    """Each image of ``images`` (float pixels in [0, 1], ``[B, C, H, W]``) through its ops ``codes[b]``, in order."""
    transform = spec.transform()
    out = images.clone()
    height, width = images.shape[-2:]
    for step in range(codes.shape[1]):
        column = codes[:, step].cpu()
        for code in column.unique().tolist():
            rows = (column == code).nonzero().squeeze(1).to(images.device)
            name, magnitude = signed_magnitude(spec, code, height, width)
            out[rows] = transform._apply_image_or_video_transform(
                out[rows], name, magnitude, interpolation=transform.interpolation, fill=transform._fill
            )
    return out
