"""Model size figures for the pruning report: parameters and FLOPs of one forward pass."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from scdd.data.base import DatasetInfo


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, info: DatasetInfo, *, device: torch.device | None = None) -> int:
    """FLOPs of one ``info``-sized image through ``model`` (eval mode), as torch's
    ``FlopCounterMode`` counts them: two per multiply-add of convolutions and matrix products."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    image = torch.zeros(1, info.channels, info.image_size, info.image_size, device=device)
    with FlopCounterMode(display=False) as counter:
        model(image)
    model.train(was_training)
    return int(counter.get_total_flops())
