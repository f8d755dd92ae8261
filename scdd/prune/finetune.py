"""Training a given network on a distilled set with the relabel stage's crop-level soft labels.

Each epoch replays one relabelled epoch's crops (boxes, flips) and minimises the KL divergence to the
teacher's logits at temperature T (Eq. 10), as post-training does (``scdd.training.distilled``); an
optional penalty (network slimming's ``λ · Σ|γ|``) is added to the loss. Epochs past the soft labels'
last one wrap around.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from scdd.distilled import DistilledSet
from scdd.progress import SILENT, Progress
from scdd.prune.config import PruneConfig
from scdd.runtime import generator
from scdd.training import TrainLoop
from scdd.training.distilled import SoftLabelSource, distilled_batches, distilled_loss


def train_on_soft_labels(
    model: nn.Module,
    distilled: DistilledSet,
    labels: SoftLabelSource,
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
    per_epoch = -(-len(distilled.labels) // config.batch_size)
    loop = TrainLoop(f"prune {name}", config, model.parameters(), per_epoch, device, epochs=epochs, count="epochs")
    order = generator(seed, "prune", name, "order")
    batches = distilled_batches(
        distilled, labels, model, batch_size=config.batch_size, order=order, seed=seed, device=device, first_epoch=first_epoch
    )
    trained = loop.wrap(model)  # under torchrun: gradients averaged over processes

    def loss(batch, step: int) -> torch.Tensor:
        value = distilled_loss(trained(batch[1]), batch, None, config.temperature)
        return value if penalty is None else value + penalty()

    curve = loop.run(batches, loss, progress=progress)
    model.eval()
    return curve
