"""Training a network on a distilled set (post-training, Eq. 10, and prune fine-tuning).

Each epoch every image is seen once, in a random order, as its crop for that epoch: replayed from
the relabel stage's crop plan with the teacher's soft labels (KL at temperature T, SRe²L's protocol),
or, with hard labels (the real-image baseline), the same kind of crop drawn from the seed's plan and
trained with cross-entropy on the class label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from scdd import distributed
from scdd.distilled import DistilledSet
from scdd.errors import ConfigError
from scdd.labels import OnlineSoftLabels, PlanSpec, SoftTargets, StoredSoftLabels, plan_epoch, render_crops, replay_batches, soft_label_loss

SoftLabelSource = StoredSoftLabels | OnlineSoftLabels
Batch = tuple[torch.Tensor, torch.Tensor, SoftTargets | None]  # image indices, crops, soft targets (None: hard labels)


def distilled_batches(
    distilled: DistilledSet,
    labels: SoftLabelSource | None,
    model: nn.Module,
    *,
    batch_size: int,
    order: torch.Generator,
    seed: int,
    device: torch.device,
    hard_plan: PlanSpec | None = None,
    first_epoch: int = 0,
) -> Callable[[int], Iterator[Batch]]:
    """``batches(epoch)`` for ``TrainLoop.run``: ``model`` in training mode, then this process's part of
    a fresh permutation in global batches of ``batch_size``. Soft labels replay label epoch
    ``(first_epoch + epoch) mod labels.epochs``; hard labels crop by ``plan_epoch(..., epoch, hard_plan, seed)``
    (default: random-resized crops from 0.08). Labels mixed per batch need batches of their own size."""
    count, size = len(distilled.labels), distilled.info.image_size
    hard_spec = hard_plan or PlanSpec(0.08, distilled.info.hflip)
    spec = getattr(labels, "spec", None)
    if spec is not None and spec.mix != "none" and spec.mix_scope == "batch" and spec.mix_batch != batch_size:
        raise ConfigError(f"soft labels are mixed per batch of {spec.mix_batch}, but training batches hold {batch_size}")
    per_rank = distributed.rank_batch_size(batch_size)  # global batch / processes

    def batches(epoch: int) -> Iterator[Batch]:
        permutation = distributed.shard_order(torch.randperm(count, generator=order))  # this process's part
        model.train()
        if labels is not None:
            replayed = (first_epoch + epoch) % labels.epochs
            yield from replay_batches(labels, distilled.images, replayed, permutation, per_rank, image_size=size, device=device)
            return
        plan = plan_epoch(count, epoch, hard_spec, seed)
        for index in permutation.split(per_rank):
            yield index, render_crops(distilled.images, plan, index, size, device), None

    return batches


def distilled_loss(
    logits: torch.Tensor, batch: Batch, classes: torch.Tensor | None, temperature: float, *, squared: bool = True
) -> torch.Tensor:
    """Eq. 10's ``KL`` (times T² with ``squared``) to the batch's soft targets, or cross-entropy on
    ``classes[index]`` without them (``classes``: every image's class, needed only for hard labels)."""
    index, _, soft = batch
    if soft is not None:
        return soft_label_loss(logits, soft, temperature, squared=squared)
    assert classes is not None, "hard labels need every image's class"
    return F.cross_entropy(logits, classes[index.to(logits.device)])
