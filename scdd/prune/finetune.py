"""Training a given network on a distilled set with the relabel stage's crop-level soft labels.

Each epoch replays one relabelled epoch's crops (boxes, flips) and minimises the KL divergence to the
teacher's logits at temperature T (Eq. 10), as post-training does; an optional penalty (network
slimming's ``λ · Σ|γ|``) is added to the loss. Epochs past the soft labels' last one wrap around.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from scdd.distilled import DistilledSet
from scdd.progress import SILENT, Progress
from scdd.prune.config import PruneConfig
from scdd.runtime import generator
from scdd.labels import OnlineSoftLabels, StoredSoftLabels, replay_batches, soft_label_loss
from scdd.training import check_finite, cosine_schedule, make_optimizer


def train_on_soft_labels(
    model: nn.Module,
    distilled: DistilledSet,
    labels: StoredSoftLabels | OnlineSoftLabels,
    config: PruneConfig,
    *,
    epochs: int,
    first_epoch: int,
    name: str,
    device: torch.device,
    seed: int,
    penalty: Callable[[], torch.Tensor] | None = None,
    progress: Progress = SILENT,
) -> list[float]:
    """Train ``model`` in place for ``epochs`` epochs starting at soft-label epoch ``first_epoch``;
    returns the mean loss (penalty included) of each epoch."""
    if epochs == 0:
        return []
    optimizer = make_optimizer(
        config.optimizer, model.parameters(), lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum
    )
    count = len(distilled.labels)
    per_epoch = -(-count // config.batch_size)
    schedule = cosine_schedule(optimizer, epochs * per_epoch)
    order = generator(seed, "prune", name, "order")
    size = distilled.info.image_size
    curve: list[float] = []
    task = progress.task(f"prune: {name}", epochs)
    try:
        for epoch in range(epochs):
            replay = (first_epoch + epoch) % labels.epochs
            permutation = torch.randperm(count, generator=order)
            running = torch.zeros((), device=device)
            model.train()
            batches = replay_batches(labels, distilled.images, replay, permutation, config.batch_size, image_size=size, device=device)
            for _, crops, targets in batches:
                loss = soft_label_loss(model(crops), targets, config.temperature)
                if penalty is not None:
                    loss = loss + penalty()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                running += loss.detach()
            epoch_loss = check_finite((running / per_epoch).item(), f"prune {name}", epoch + 1)
            curve.append(epoch_loss)
            task.advance(1, loss=epoch_loss)
    finally:
        task.close()
    model.eval()
    return curve
