"""DistributedDataParallel for the training loop: gradient averaging over the torchrun ranks around a
module (``wrap_ddp``) or around a training closure's parameters (``step_module``); in a single
process both give back what they were given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from scdd.distributed import is_distributed


def wrap_ddp(module: torch.nn.Module, device: torch.device, **options: Any) -> torch.nn.Module:
    """``DistributedDataParallel(module)`` when distributed (gradients averaged over ranks, rank 0's
    weights and buffers broadcast at the start); the module itself otherwise."""
    if not is_distributed():
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, **options)


class _StepModule(torch.nn.Module):
    """Holds a training closure's parameters (the very same tensors) and runs the closure as its
    forward, so ``DistributedDataParallel`` can average their gradients."""

    def __init__(self, parameters: Sequence[torch.nn.Parameter], step: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.trained = torch.nn.ParameterList(parameters)
        self.step = step

    def forward(self, *args: Any) -> torch.Tensor:
        return self.step(*args)


def step_module(
    parameters: Sequence[torch.nn.Parameter], step: Callable[..., torch.Tensor], device: torch.device
) -> Callable[..., torch.Tensor]:
    """``step`` itself in a single process; under DDP a callable that runs ``step`` through
    ``DistributedDataParallel`` over ``parameters`` (unused ones allowed: frozen prototypes, last layers)."""
    if not is_distributed():
        return step
    return wrap_ddp(_StepModule(list(parameters), step), device, find_unused_parameters=True)
