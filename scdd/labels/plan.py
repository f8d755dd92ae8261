"""Crop plans (SRe²L's relabelling, used by SC-DD's post-training, Eq. 10).

For every post-training epoch each distilled image gets a crop plan: a random-resized-crop box, a
horizontal flip (where the dataset allows), and optionally a CutMix or MixUp partner. The teacher's
label for exactly that (mixed) crop is either stored with the plan (``stored`` mode, safetensors
shards, ``scdd.labels.store``) or computed while the student trains (``online`` mode). Either way the
student replays the same crops (``replay_batches``), and the same seed gives the same plans and labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from scdd.augment.crops import CropSpec, apply_crops, sample_boxes, sample_flips
from scdd.errors import ConfigError
from scdd.labels.targets import SoftTargets
from scdd.runtime import derive_seed, generator

MIX_KINDS = ("none", "cutmix", "mixup")



@dataclass(frozen=True)
class PlanSpec:
    """What determines the crops: RandomResizedCrop scale, whether flips keep labels, the mix."""

    crop_min_scale: float = 0.08
    hflip: bool = True
    mix: str = "none"
    mix_alpha: float = 1.0  # λ ~ Beta(α, α), as CutMix and MixUp draw it

    def __post_init__(self) -> None:
        if self.mix not in MIX_KINDS:
            raise ConfigError(f"mix must be one of {', '.join(MIX_KINDS)}, got {self.mix!r}")
        if not 0 < self.crop_min_scale <= 1:
            raise ConfigError(f"crop_min_scale must be in (0, 1], got {self.crop_min_scale}")
        if self.mix != "none" and self.mix_alpha <= 0:
            raise ConfigError(f"mix_alpha must be positive, got {self.mix_alpha}")


@dataclass
class EpochPlan:
    """One epoch's crop parameters for all N images; ``partners`` etc. are set when mixing."""

    boxes: torch.Tensor  # [N, 4] (cx, cy, w, h) fractions
    flips: torch.Tensor  # [N] bool
    partners: torch.Tensor | None = None  # [N] index of the image mixed in
    lambdas: torch.Tensor | None = None  # [N] weight of the image's own crop (MixUp)
    regions: torch.Tensor | None = None  # [N, 4] pasted partner region (x0, y0, x1, y1) fractions (CutMix)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"boxes": self.boxes, "flips": self.flips.to(torch.uint8)}
        for key in ("partners", "lambdas", "regions"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def plan_epoch(count: int, epoch: int, spec: PlanSpec, seed: int) -> EpochPlan:
    """The crop plan of one epoch, determined by ``(seed, epoch)`` alone."""
    gen = generator(seed, "crops", epoch)
    boxes = sample_boxes(count, CropSpec(scale=(spec.crop_min_scale, 1.0)), generator=gen)
    flips = sample_flips(count, 0.5 if spec.hflip else 0.0, generator=gen)
    plan = EpochPlan(boxes, flips)
    if spec.mix == "none":
        return plan
    rng = np.random.default_rng(derive_seed(seed, "mix", epoch))
    plan.partners = torch.from_numpy(rng.permutation(count)).long()
    lam = torch.from_numpy(rng.beta(spec.mix_alpha, spec.mix_alpha, size=count)).float()
    if spec.mix == "mixup":
        plan.lambdas = lam
    else:  # CutMix: a square-ish region of area 1 - λ, centred uniformly, clipped to the crop
        side = torch.sqrt(1 - lam)
        centre = torch.from_numpy(rng.random((count, 2))).float()
        low = (centre - side[:, None] / 2).clamp(0, 1)
        high = (centre + side[:, None] / 2).clamp(0, 1)
        plan.regions = torch.cat([low, high], dim=1)
    return plan


def region_mask(regions: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, 1, size, size]`` booleans: pixels whose centres lie inside each (x0, y0, x1, y1) region."""
    centres = (torch.arange(size, device=regions.device, dtype=torch.float32) + 0.5) / size
    inside_x = (centres[None, :] >= regions[:, 0:1]) & (centres[None, :] < regions[:, 2:3])
    inside_y = (centres[None, :] >= regions[:, 1:2]) & (centres[None, :] < regions[:, 3:4])
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]


def render_crops(
    images: torch.Tensor, plan: EpochPlan, index: torch.Tensor, size: int, device: torch.device
) -> torch.Tensor:
    """The (mixed) crops of ``images[index]`` under ``plan``, on ``device``; a partner is cropped by its own box."""
    index_cpu = index.cpu()
    crops = apply_crops(images[index_cpu].to(device), plan.boxes[index_cpu], plan.flips[index_cpu], size)
    if plan.partners is None:
        return crops
    partner = plan.partners[index_cpu]
    other = apply_crops(images[partner].to(device), plan.boxes[partner], plan.flips[partner], size)
    if plan.lambdas is not None:
        lam = plan.lambdas[index_cpu].to(device=device, dtype=crops.dtype).view(-1, 1, 1, 1)
        return lam * crops + (1 - lam) * other
    return torch.where(region_mask(plan.regions[index_cpu].to(device), size), other, crops)


def replay_batches(
    source,
    images: torch.Tensor,
    epoch: int,
    order: torch.Tensor,
    batch_size: int,
    *,
    image_size: int,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, SoftTargets]]:
    """Yield ``(index, crops, targets)`` per batch of one epoch, in ``order``.

    ``source`` is a stored (``StoredSoftLabels``) or online (``OnlineSoftLabels``) label source;
    the crops are exactly those the teacher labelled. Reusable by anything that trains on soft labels.
    """
    plan, stored = source.epoch(epoch)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield index, *replay_crops(source, plan, stored, images, index, image_size=image_size, device=device)


def replay_crops(source, plan: EpochPlan, stored, images: torch.Tensor, index: torch.Tensor, *, image_size: int,
                 device: torch.device) -> tuple[torch.Tensor, SoftTargets]:
    """The crops of images ``index`` in an epoch's ``plan`` and their targets: ``stored`` (that epoch's
    labels from ``source.epoch``) or, when it is None, the online teacher's for exactly those crops."""
    crops = render_crops(images, plan, index, image_size, device)
    return crops, stored.select(index).to(device) if stored is not None else source.label(crops)
