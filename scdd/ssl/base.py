"""What every pretrainer shares: the optimiser settings (paper Table 14, "Pretrain" column),
the result type, and the epoch loop around a method's own ``step(images) -> loss``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from scdd import distributed
from scdd.data.base import DatasetInfo, DatasetSplits, steps_per_epoch
from scdd.errors import ConfigError
from scdd.models.classifier import Normalize
from scdd.progress import SILENT, Progress
from scdd.training.checkpoint import NoCheckpoint, epoch_checkpoint
from scdd.runtime import generator
from scdd.training import check_finite, cosine_schedule, make_optimizer

SYNC_EVERY = 10  # steps between host synchronisations for progress display


@dataclass
class PretrainConfig:
    """Optimisation budget of a squeeze. Defaults: Table 14 (SGD, lr 0.06, wd 5e-4, momentum 0.9,
    batch 512, cosine, 200 epochs)."""

    epochs: int = 200
    batch_size: int = 512
    optimizer: str = "sgd"
    lr: float = 0.06
    weight_decay: float = 5e-4
    momentum: float = 0.9
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("pretraining needs epochs >= 1 and batch_size >= 2")


@dataclass
class PretrainResult:
    """A squeezed backbone (BN running statistics included) and its objective's loss per epoch."""

    backbone: nn.Module
    loss_per_epoch: list[float] = field(default_factory=list)


def pixel_encoder(backbone: nn.Module, info: DatasetInfo) -> nn.Sequential:
    """``backbone(normalize(pixels))``: the input the aligned classifier gives the backbone later,
    so the BatchNorm running statistics a squeeze leaves are those that recovery matches.
    The normalisation constants live on the backbone's device."""
    device = next(backbone.parameters()).device
    return nn.Sequential(Normalize(info.mean, info.std).to(device), backbone)


def train_epochs(
    *,
    name: str,
    config: PretrainConfig,
    data: DatasetSplits,
    parameters: Iterable[nn.Parameter],
    step: Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor],
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
    after_step: Callable[[int, int], None] | None = None,
    state: Mapping[str, Any] | None = None,
) -> list[float]:
    """Run ``config.epochs`` epochs of ``loss = step(images, labels, global_step, total_steps)``.

    ``after_step(global_step, total_steps)`` runs after each optimiser step (momentum updates).
    Under torchrun each process steps on its part of every global batch (``batch_size / processes``
    images) and DistributedDataParallel averages the gradients of ``parameters``; queues, centres and
    BatchNorm layers outside the backbone are per process.
    ``state`` names everything else the method carries across steps (``modules``: every network,
    momentum encoders and losses with memory banks included; ``generators``; ``tensors``); with it,
    an interrupted squeeze continues after its last finished epoch (``scdd.resume``).
    Returns the mean loss of each epoch.
    """
    per_epoch = steps_per_epoch(data.train, config.batch_size, drop_last=True)
    total = config.epochs * per_epoch
    parameters = list(parameters)
    run_step = distributed.step_module(parameters, step, device)  # under torchrun: DDP over the trained parameters
    optimizer = make_optimizer(
        config.optimizer, parameters, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum
    )
    schedule = cosine_schedule(optimizer, total, warmup_steps=config.warmup_epochs * per_epoch)
    order = generator(seed, name, "order")
    checkpoint = NoCheckpoint()
    if state is not None:
        checkpoint = epoch_checkpoint(
            ("squeeze", name), identity={"epochs": config.epochs, "per_epoch": per_epoch}, optimizer=optimizer,
            scheduler=schedule, modules=state.get("modules"), tensors=state.get("tensors"),
            generators={"order": order, **state.get("generators", {})},
        )
    start, curve, _ = checkpoint.restore()
    task = progress.task(f"squeeze {name}", total)
    task.advance(start * per_epoch)
    global_step = start * per_epoch
    try:
        for epoch in range(start, config.epochs):
            running = torch.zeros((), device=device)
            for images, labels in distributed.sharded_batches(
                data.train, config.batch_size, shuffle=True, generator=order, drop_last=True
            ):
                images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                loss = run_step(images, labels, global_step, total)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                if after_step is not None:
                    after_step(global_step, total)
                running += loss.detach()
                global_step += 1
                metrics = {}
                if global_step % SYNC_EVERY == 0:
                    metrics["loss"] = check_finite(loss.item(), f"squeeze {name}", global_step)
                task.advance(1, **metrics)
            epoch_loss = check_finite((distributed.mean_across_ranks(running) / per_epoch).item(), f"squeeze {name}", global_step)
            curve.append(epoch_loss)
            checkpoint.epoch_done(epoch + 1, curve)
            task.advance(0, loss=epoch_loss, epoch=epoch + 1)
    finally:
        task.close()
    return curve
