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

from scdd import distributed
from scdd.augment.crops import CropSpec, apply_crops, sample_boxes, sample_flips
from scdd.augment.randaugment import RandAugmentSpec, apply_randaugment, sample_codes
from scdd.errors import ConfigError
from scdd.labels.targets import SoftTargets
from scdd.runtime import derive_seed, generator

MIX_KINDS = ("none", "cutmix", "mixup")
CROP_KINDS = ("resized", "padded")
MIX_SCOPES = ("image", "batch")


@dataclass(frozen=True)
class PlanSpec:
    """What determines the crops: the crop kind and its parameters, whether flips keep labels, the mix.

    ``crop="resized"`` is RandomResizedCrop from ``crop_min_scale``; ``crop="padded"`` is RandomCrop
    with ``crop_padding`` pixels of zero padding (the official CIFAR-100 post-training's
    ``RandomCrop(32, padding=4)``: a whole-pixel shift in [-p, p] per axis), which needs ``image_size``.
    ``randaugment_ops > 0`` adds RandAugment (that many ops at bin ``randaugment_magnitude``; Table 15)
    to every crop, each image's ops drawn and stored with the plan. ``mix_scope="image"`` draws λ and a partner from the whole set per image; ``"batch"`` draws one λ
    (and one CutMix box) per post-training batch of ``mix_batch`` images and a partner within that
    batch, as the official code does (``torch.randperm(batch)``); post-training then replays the plan's
    batches (``EpochPlan.order``)."""

    crop_min_scale: float = 0.08
    hflip: bool = True
    mix: str = "none"
    mix_alpha: float = 1.0  # λ ~ Beta(α, α), as CutMix and MixUp draw it
    crop: str = "resized"  # or "padded"
    crop_padding: int = 4  # pixels, padded crops
    image_size: int = 0  # pixels a side, padded crops
    mix_scope: str = "image"  # or "batch"
    mix_batch: int = 0  # images per batch, batch-scope mixing
    randaugment_ops: int = 0  # 0: no RandAugment
    randaugment_magnitude: int = 9  # bin of 31

    def __post_init__(self) -> None:
        if self.mix not in MIX_KINDS:
            raise ConfigError(f"mix must be one of {', '.join(MIX_KINDS)}, got {self.mix!r}")
        if self.crop not in CROP_KINDS:
            raise ConfigError(f"crop must be one of {', '.join(CROP_KINDS)}, got {self.crop!r}")
        if self.mix_scope not in MIX_SCOPES:
            raise ConfigError(f"mix_scope must be one of {', '.join(MIX_SCOPES)}, got {self.mix_scope!r}")
        if not 0 < self.crop_min_scale <= 1:
            raise ConfigError(f"crop_min_scale must be in (0, 1], got {self.crop_min_scale}")
        if self.crop == "padded" and (self.crop_padding < 0 or self.image_size < 1):
            raise ConfigError(f"padded crops need crop_padding >= 0 and the image size, got {self.crop_padding} and {self.image_size}")
        if self.randaugment_ops < 0 or not 0 <= self.randaugment_magnitude < RandAugmentSpec.num_bins:
            raise ConfigError(
                f"RandAugment needs ops >= 0 and a magnitude in [0, 30], got {self.randaugment_ops} and {self.randaugment_magnitude}"
            )
        if self.mix != "none" and self.mix_alpha <= 0:
            raise ConfigError(f"mix_alpha must be positive, got {self.mix_alpha}")
        if self.mix != "none" and self.mix_scope == "batch" and self.mix_batch < 1:
            raise ConfigError(f"batch-scope mixing needs the batch size (mix_batch >= 1), got {self.mix_batch}")

    @property
    def padding_mode(self) -> str:
        """How a crop reads outside the image: zeros for padded crops, the border pixel otherwise."""
        return "zeros" if self.crop == "padded" else "border"

    @property
    def randaugment(self) -> RandAugmentSpec | None:
        return RandAugmentSpec(self.randaugment_ops, self.randaugment_magnitude) if self.randaugment_ops else None


@dataclass
class EpochPlan:
    """One epoch's crop parameters for all N images; ``partners`` etc. are set when mixing."""

    boxes: torch.Tensor  # [N, 4] (cx, cy, w, h) fractions
    flips: torch.Tensor  # [N] bool
    partners: torch.Tensor | None = None  # [N] index of the image mixed in
    lambdas: torch.Tensor | None = None  # [N] weight of the image's own crop (MixUp)
    regions: torch.Tensor | None = None  # [N, 4] pasted partner region (x0, y0, x1, y1) fractions (CutMix)
    order: torch.Tensor | None = None  # [N] the epoch's image order, batch after batch (batch-scope mixing)
    augment: torch.Tensor | None = None  # [N, ops] RandAugment codes (scdd.augment.randaugment)
    padding_mode: str = "border"
    randaugment: RandAugmentSpec | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"boxes": self.boxes, "flips": self.flips.to(torch.uint8)}
        for key in ("partners", "lambdas", "regions", "order", "augment"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def padded_boxes(count: int, spec: PlanSpec, gen: torch.Generator) -> torch.Tensor:
    """RandomCrop(size, padding=p) as boxes: the whole image shifted by whole pixels in [-p, p] per axis."""
    shifts = torch.randint(-spec.crop_padding, spec.crop_padding + 1, (count, 2), generator=gen)
    centres = 0.5 + shifts.float() / spec.image_size
    return torch.cat([centres, torch.ones(count, 2)], dim=1)


def _mix_groups(count: int, spec: PlanSpec, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(partners, group of each image, order)``: per image, a partner from the whole set and a group
    of its own; per batch, groups of ``mix_batch`` images in a random order, partners within the group."""
    if spec.mix_scope == "image":
        return torch.from_numpy(rng.permutation(count)).long(), torch.arange(count), None
    order = torch.from_numpy(rng.permutation(count)).long()
    partners, group = torch.empty(count, dtype=torch.long), torch.empty(count, dtype=torch.long)
    for number, members in enumerate(order.split(spec.mix_batch)):
        partners[members] = members[torch.from_numpy(rng.permutation(len(members))).long()]
        group[members] = number
    return partners, group, order


def plan_epoch(count: int, epoch: int, spec: PlanSpec, seed: int) -> EpochPlan:
    """The crop plan of one epoch, determined by ``(seed, epoch)`` alone."""
    gen = generator(seed, "crops", epoch)
    if spec.crop == "padded":
        boxes = padded_boxes(count, spec, gen)
    else:
        boxes = sample_boxes(count, CropSpec(scale=(spec.crop_min_scale, 1.0)), generator=gen)
    flips = sample_flips(count, 0.5 if spec.hflip else 0.0, generator=gen)
    plan = EpochPlan(boxes, flips, padding_mode=spec.padding_mode, randaugment=spec.randaugment)
    if spec.randaugment is not None:
        plan.augment = sample_codes(count, spec.randaugment, generator=gen)
    if spec.mix == "none":
        return plan
    rng = np.random.default_rng(derive_seed(seed, "mix", epoch))
    plan.partners, group, plan.order = _mix_groups(count, spec, rng)
    groups = int(group.max()) + 1 if count else 0
    lam = torch.from_numpy(rng.beta(spec.mix_alpha, spec.mix_alpha, size=groups)).float()[group]
    if spec.mix == "mixup":
        plan.lambdas = lam
    else:  # CutMix: a square-ish region of area 1 - λ, centred uniformly, clipped to the crop
        side = torch.sqrt(1 - lam)
        centre = torch.from_numpy(rng.random((groups, 2))).float()[group]
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


def _crops(images: torch.Tensor, plan: EpochPlan, index: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """The crops of ``images[index]`` under ``plan`` (crop, flip, then RandAugment where planned)."""
    crops = apply_crops(images[index].to(device), plan.boxes[index], plan.flips[index], size, padding_mode=plan.padding_mode)
    if plan.augment is None:
        return crops
    assert plan.randaugment is not None  # planned with the codes
    return apply_randaugment(crops, plan.augment[index], plan.randaugment)


def render_crops(images: torch.Tensor, plan: EpochPlan, index: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """The (mixed) crops of ``images[index]`` under ``plan``, on ``device``; a partner is cropped by its own box."""
    index_cpu = index.cpu()
    crops = _crops(images, plan, index_cpu, size, device)
    if plan.partners is None:
        return crops
    other = _crops(images, plan, plan.partners[index_cpu], size, device)
    if plan.lambdas is not None:
        lam = plan.lambdas[index_cpu].to(device=device, dtype=crops.dtype).view(-1, 1, 1, 1)
        return lam * crops + (1 - lam) * other
    assert plan.regions is not None  # partners without weights: CutMix
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
    A plan mixed per batch brings its own order (this process's part of it), so each batch is one of its groups.
    """
    plan, stored = source.epoch(epoch)
    if plan.order is not None:
        order = distributed.shard_order(plan.order)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield index, *replay_crops(source, plan, stored, images, index, image_size=image_size, device=device)


def replay_crops(
    source, plan: EpochPlan, stored, images: torch.Tensor, index: torch.Tensor, *, image_size: int, device: torch.device
) -> tuple[torch.Tensor, SoftTargets]:
    """The crops of images ``index`` in an epoch's ``plan`` and their targets: ``stored`` (that epoch's
    labels from ``source.epoch``) or, when it is None, the online teacher's for exactly those crops."""
    crops = render_crops(images, plan, index, image_size, device)
    return crops, stored.select(index).to(device) if stored is not None else source.label(crops)
