"""Crop-level soft labels (SRe²L's relabelling, used by SC-DD's post-training, Eq. 10).

For every post-training epoch each distilled image gets a crop plan: a random-resized-crop box, a
horizontal flip (where the dataset allows), and optionally a CutMix or MixUp partner. The teacher's
label for exactly that (mixed) crop is either stored with the plan (``stored`` mode, safetensors
shards) or computed while the student trains (``online`` mode). Either way the student replays the
same crops, and the same seed gives the same plans and labels.

Stored labels are kept in one of three encodings:

* ``fp32`` / ``fp16``: the teacher's full logits;
* top-K (``topk > 0``): only the K largest probabilities, softmax at the post-training temperature,
  in fp16, with their class indices. The student's target keeps those K probabilities and spreads
  the remaining mass evenly over the other classes (``SoftTargets.distribution``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from scdd.augment import CropSpec, apply_crops, sample_boxes, sample_flips
from scdd.errors import ConfigError
from scdd.runtime import derive_seed, generator

MIX_KINDS = ("none", "cutmix", "mixup")
PRECISIONS = ("fp32", "fp16")


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


# ----------------------------------------------------------------------------- targets and loss


@dataclass
class SoftTargets:
    """Teacher targets for a batch: full ``logits`` [B, C], or top-K ``probs``/``indices`` [B, K]
    (probabilities at ``temperature``; the mass outside the K classes is spread evenly over the others)."""

    logits: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    temperature: float = 1.0

    def select(self, index: torch.Tensor) -> "SoftTargets":
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return replace(self, logits=pick(self.logits), probs=pick(self.probs), indices=pick(self.indices))

    def to(self, device: torch.device) -> "SoftTargets":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return replace(self, logits=move(self.logits), probs=move(self.probs), indices=move(self.indices))

    def distribution(self, num_classes: int, temperature: float) -> torch.Tensor:
        """The dense target distribution ``[B, C]`` the student is trained towards at ``temperature``.

        Top-K targets keep the teacher's K probabilities as stored and give each other class an equal
        share of the remaining mass (FKD's label compression), so the teacher's confidence is kept.
        At a temperature other than the stored one the dense distribution is re-tempered
        (``p ∝ p^(T_stored/T)``), which is exact for the K kept classes relative to each other.
        """
        if self.logits is not None:
            return F.softmax(self.logits.float() / temperature, dim=1)
        probs = self.probs.float().clamp(min=0)
        kept = probs.sum(dim=1, keepdim=True).clamp(max=1.0)
        others = max(num_classes - probs.shape[1], 1)
        dense = ((1.0 - kept) / others).expand(-1, num_classes).clone()
        dense.scatter_(1, self.indices.long(), probs)
        if temperature != self.temperature:
            dense = dense ** (self.temperature / temperature)
        return dense / dense.sum(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)


def soft_label_loss(student_logits: torch.Tensor, targets: SoftTargets | torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(p_teacher(T) ‖ softmax(s/T))``, batch mean (Eq. 10 with SRe²L's temperature).

    ``targets`` may be plain teacher logits; top-K targets are made dense by ``SoftTargets.distribution``.
    """
    if isinstance(targets, torch.Tensor):
        targets = SoftTargets(logits=targets)
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    if targets.logits is not None:
        kl = F.kl_div(log_student, F.log_softmax(targets.logits.float() / temperature, dim=1), reduction="batchmean", log_target=True)
        return kl * temperature**2
    target = targets.distribution(student_logits.shape[1], temperature)
    kl = (torch.xlogy(target, target) - target * log_student).sum(dim=1).mean()
    return kl * temperature**2


# ----------------------------------------------------------------------------- encodings


@dataclass(frozen=True)
class LabelEncoding:
    """How stored labels are kept: full logits in fp32/fp16, or the top-K fp16 probabilities."""

    precision: str = "fp32"
    topk: int = 0  # 0: every class
    temperature: float = 1.0  # temperature of the stored top-K probabilities

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"label precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.topk < 0:
            raise ConfigError(f"label_topk must be >= 0 (0 keeps every class), got {self.topk}")
        if self.temperature <= 0:
            raise ConfigError(f"label temperature must be positive, got {self.temperature}")

    def check(self, num_classes: int) -> None:
        if self.topk > num_classes:
            raise ConfigError(f"label_topk {self.topk} exceeds the teacher's {num_classes} classes")

    @property
    def name(self) -> str:
        return f"top{self.topk}-fp16" if self.topk else self.precision

    def index_dtype(self, num_classes: int) -> torch.dtype:
        if num_classes <= 256:
            return torch.uint8
        return torch.int16 if num_classes <= 32768 else torch.int32

    def bytes_per_label(self, num_classes: int) -> int:
        """Bytes of one image's label for one epoch (the crop plan not included)."""
        if self.topk:
            index_bytes = torch.empty(0, dtype=self.index_dtype(num_classes)).element_size()
            return self.topk * (2 + index_bytes)
        return num_classes * (4 if self.precision == "fp32" else 2)

    def encode(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tensors to store for teacher ``logits`` ``[..., C]``."""
        if not self.topk:
            return {"logits": logits.float() if self.precision == "fp32" else logits.half()}
        probs = F.softmax(logits.float() / self.temperature, dim=-1)
        values, indices = probs.topk(self.topk, dim=-1)
        return {"topk_probs": values.half(), "topk_indices": indices.to(self.index_dtype(logits.shape[-1]))}

    def decode(self, tensors: dict[str, torch.Tensor]) -> SoftTargets:
        if not self.topk:
            return SoftTargets(logits=tensors["logits"].float())
        return SoftTargets(
            probs=tensors["topk_probs"].float(), indices=tensors["topk_indices"].long(), temperature=self.temperature
        )

    @property
    def label_keys(self) -> tuple[str, ...]:
        return ("topk_probs", "topk_indices") if self.topk else ("logits",)


# ----------------------------------------------------------------------------- replay


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
        crops = render_crops(images, plan, index, image_size, device)
        targets = stored.select(index).to(device) if stored is not None else source.label(crops)
        yield index, crops, targets
