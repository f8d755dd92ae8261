"""The one epoch loop every training in scdd runs through: the squeeze (every pretrainer), both
aligners, post-training and prune fine-tuning.

What differs between them is passed in: the parameters that train, the batches of an epoch, the
loss of a batch, an optional step after each optimiser step (momentum encoders), and what the
per-epoch checkpoint keeps. The loop owns the rest: the optimiser and its per-step cosine schedule,
checkpoint and resume at epoch boundaries (``scdd.training.checkpoint``), the finiteness check,
progress, and DistributedDataParallel under torchrun (``wrap`` for a module, ``wrap_step`` for a
training closure; ``scdd.training.ddp``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from torch.optim.optimizer import ParamsT

from scdd import distributed
from scdd.progress import SILENT, Progress
from scdd.training.checkpoint import NoCheckpoint, epoch_checkpoint
from scdd.training.ddp import step_module, wrap_ddp
from scdd.training.optim import check_finite, cosine_schedule, make_optimizer

SYNC_EVERY = 10  # steps between host synchronisations for the progress display of step-counted loops


@runtime_checkable
class OptimizerSettings(Protocol):
    """The optimiser fields every training config carries (``betas`` is optional: Adam / AdamW only)."""

    optimizer: str
    lr: float
    weight_decay: float
    momentum: float


@runtime_checkable
class TrainingSettings(OptimizerSettings, Protocol):
    """Optimiser fields and the number of epochs (a loop given ``epochs`` needs only the former)."""

    epochs: int


class TrainLoop:
    """One training run of ``epochs`` (default ``settings.epochs``) × ``steps_per_epoch`` optimiser steps over ``parameters``.

    ``count="steps"`` shows progress per step and checks the loss every ``SYNC_EVERY`` steps;
    ``count="epochs"`` shows it per epoch. Either way each epoch's mean loss is checked (a NaN or
    infinite loss stops training with ``NonFiniteLossError`` naming the loop) and returned.
    """

    def __init__(
        self,
        name: str,
        settings: OptimizerSettings,
        parameters: ParamsT,
        steps_per_epoch: int,
        device: torch.device,
        *,
        epochs: int | None = None,
        warmup_steps: int = 0,
        schedule_steps: int = 0,
        count: str = "steps",
    ) -> None:
        self.name, self.steps_per_epoch, self.device, self.count = name, steps_per_epoch, device, count
        if epochs is None:
            assert isinstance(settings, TrainingSettings), f"{name}: give epochs, or settings that have them"
            epochs = settings.epochs
        self.epochs = epochs
        self.parameters: list[Any] = list(parameters)  # tensors, or parameter groups (dicts)
        self.optimizer = make_optimizer(
            settings.optimizer,
            self.parameters,
            lr=settings.lr,
            weight_decay=settings.weight_decay,
            momentum=settings.momentum,
            betas=getattr(settings, "betas", (0.9, 0.999)),
        )
        # the cosine spans training unless ``schedule_steps`` makes it longer (training then stops before the lr reaches 0)
        total = max(schedule_steps, self.epochs * steps_per_epoch)
        self.schedule = cosine_schedule(self.optimizer, total, warmup_steps=warmup_steps)
        self.checkpoint: Any = NoCheckpoint()

    def keep(
        self,
        key: str | tuple,
        identity: Mapping[str, Any],
        *,
        modules: Mapping[str, nn.Module] | None = None,
        generators: Mapping[str, torch.Generator] | None = None,
        tensors: Mapping[str, torch.Tensor] | None = None,
    ) -> TrainLoop:
        """Keep per-epoch progress under ``key`` in the current progress scope: the optimiser, the
        schedule, ``modules``, ``generators`` and ``tensors``, valid while ``identity`` matches."""
        self.checkpoint = epoch_checkpoint(
            key,
            identity=identity,
            modules=modules,
            optimizer=self.optimizer,
            scheduler=self.schedule,
            generators=generators,
            tensors=tensors,
        )
        return self

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` under DistributedDataParallel when launched by torchrun (gradients averaged), else itself."""
        return wrap_ddp(module, self.device)

    def wrap_step(self, step: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        """A training closure whose gradients over this loop's parameters are averaged under torchrun."""
        return step_module(self.parameters, step, self.device)

    def run(
        self,
        batches: Callable[[int], Iterable[Any]],
        loss: Callable[[Any, int], torch.Tensor],
        *,
        after_step: Callable[[int], None] | None = None,
        progress: Progress = SILENT,
    ) -> list[float]:
        """Train from the last saved epoch (or the first) to the end; returns every epoch's mean loss.

        ``batches(epoch)`` yields the epoch's batches; ``loss(batch, step)`` returns the loss of one
        (``step`` counts optimiser steps from 0 over the whole run); ``after_step(step)`` runs after
        each optimiser step."""
        start, curve, extra = self.checkpoint.restore()  # an interrupted run continues after its last finished epoch
        shown = {int(step): value for step, value in extra.get("shown", [])}  # the per-step losses reported so far
        by_step = self.count == "steps"
        task = progress.task(self.name, self.epochs * self.steps_per_epoch if by_step else self.epochs)
        self._report_again(task, start, curve, shown)
        step = start * self.steps_per_epoch
        try:
            for epoch in range(start, self.epochs):
                running = torch.zeros((), device=self.device)
                for batch in batches(epoch):
                    value = loss(batch, step)
                    self.optimizer.zero_grad(set_to_none=True)
                    value.backward()
                    self.optimizer.step()
                    self.schedule.step()
                    if after_step is not None:
                        after_step(step)
                    running += value.detach()
                    step += 1
                    if by_step:
                        if step % SYNC_EVERY == 0:
                            shown[step] = check_finite(value.item(), self.name, step)
                        task.advance(1, **({"loss": shown[step]} if step in shown else {}))
                mean = (distributed.mean_across_ranks(running) / self.steps_per_epoch).item()
                curve.append(check_finite(mean, self.name, step if by_step else epoch + 1))
                self.checkpoint.epoch_done(epoch + 1, curve, {"shown": sorted(shown.items())})
                task.advance(0 if by_step else 1, loss=curve[-1], **({"epoch": epoch + 1} if by_step else {}))
        finally:
            task.close()
        return curve

    def _report_again(self, task, epochs: int, curve: list[float], shown: dict[int, float]) -> None:
        """Report the ``epochs`` an interrupted run finished as they were reported then, so the loss
        curves a resumed run writes (``scdd.curves``) equal an uninterrupted run's."""
        for epoch in range(epochs):
            if self.count != "steps":
                task.advance(1, loss=curve[epoch])
                continue
            for step in range(epoch * self.steps_per_epoch + 1, (epoch + 1) * self.steps_per_epoch + 1):
                task.advance(1, **({"loss": shown[step]} if step in shown else {}))
            task.advance(0, loss=curve[epoch], epoch=epoch + 1)
