"""The random view of the synthetic batch that recovery optimises through at each step.

SRe²L/SC-DD recovery (their ``data_synthesis.py``) takes a random-resized crop and a horizontal
flip of every synthetic image, then rolls the batch by a random jitter offset of up to 32 px at
224 px (4 px at 32 px). Here all three are one sampling grid per step: crop box and flip as in
``scdd.augment.crops``, and the circular shift (``torch.roll``) folded into the grid's pixel positions.
The official code draws one crop, one flip and one roll per step for the whole batch (torchvision's
transforms applied to the 4-D batch; ``per_batch``); drawing them per image is scdd's other choice.
Without a crop (``crop=None``, the official CIFAR-100 recovery: roll only) the view is the whole image. The grid is written into a buffer allocated once, and
``grid_sample`` is the only full-size operation, so the view costs one differentiable resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scdd.augment.crops import CropSpec, sample_boxes, sample_flips


@dataclass(frozen=True)
class RecoveryViewSpec:
    """Crop scale range (``None``: no crop, the whole image), flip probability, the largest jitter
    shift in pixels (shifts are drawn from ``min_shift``..``max_shift``; SRe²L's Tiny-ImageNet code rolls
    by -4..4), and whether one view is drawn per batch (the official code) or per image."""

    crop: CropSpec | None
    flip_p: float
    max_shift: int
    per_batch: bool = False
    min_shift: int = 0


def shifted_crop_grid(
    boxes: torch.Tensor,
    flips: torch.Tensor | None,
    shifts: torch.Tensor | None,
    size: int,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """The ``grid_sample`` grid ``[n, size, size, 2]`` that crops each image to its box
    (``(cx, cy, w, h)`` fractions), flips it where ``flips`` is true, then rolls the result by
    ``shifts`` = ``(rows, columns)`` pixels, exactly as ``torch.roll(crop, (rows, columns), (2, 3))``."""
    n = boxes.shape[0]
    dtype, device = boxes.dtype, boxes.device
    positions = torch.arange(size, device=device)
    if shifts is None:
        rows = positions.expand(n, size)
        columns = rows
    else:
        rows = (positions - shifts[:, :1]).remainder(size)
        columns = (positions - shifts[:, 1:]).remainder(size)
    # Pixel centres in normalised coordinates (align_corners=False): (2j + 1) / size - 1.
    u_columns = (2 * columns + 1).to(dtype) / size - 1
    u_rows = (2 * rows + 1).to(dtype) / size - 1
    width = boxes[:, 2:3]
    if flips is not None:
        width = torch.where(flips[:, None], -width, width)
    x = torch.addcmul(boxes[:, 0:1] * 2 - 1, width, u_columns)  # [n, size]
    y = torch.addcmul(boxes[:, 1:2] * 2 - 1, boxes[:, 3:4], u_rows)  # [n, size]
    grid = out if out is not None else torch.empty(n, size, size, 2, device=device, dtype=dtype)
    grid[..., 0].copy_(x[:, None, :])
    grid[..., 1].copy_(y[:, :, None])
    return grid


class SyntheticViews:
    """Draws and applies one random view per step for a fixed batch of ``n`` images."""

    def __init__(self, n: int, size: int, spec: RecoveryViewSpec, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.size, self.spec, self.generator, self.device = n, size, spec, generator, device
        self._grid = torch.empty(n, size, size, 2, device=device)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Crop boxes, flips and shifts for the next step."""
        spec, n = self.spec, self.n
        draws = 1 if spec.per_batch else n
        if spec.crop is None:
            boxes = torch.tensor([[0.5, 0.5, 1.0, 1.0]], device=self.device).expand(draws, 4)
        else:
            boxes = sample_boxes(draws, spec.crop, generator=self.generator, device=self.device)
        flips = sample_flips(draws, spec.flip_p, generator=self.generator, device=self.device) if spec.flip_p > 0 else None
        shifts = None
        if spec.max_shift > spec.min_shift:
            shifts = torch.randint(spec.min_shift, spec.max_shift + 1, (draws, 2), generator=self.generator, device=self.device)
        if spec.per_batch:  # the same view for every image of the batch
            boxes = boxes.expand(n, 4)
            flips = None if flips is None else flips.expand(n)
            shifts = None if shifts is None else shifts.expand(n, 2)
        return boxes, flips, shifts

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        boxes, flips, shifts = self.sample()
        shifted_crop_grid(boxes, flips, shifts, self.size, out=self._grid)
        return self.again(images)

    def again(self, images: torch.Tensor) -> torch.Tensor:
        """The last step's view (same crops, flips and shifts) of other images of the batch's shape."""
        return F.grid_sample(images, self._grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)
