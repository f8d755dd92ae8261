"""Shuffling BatchNorm on one device (MoCo Sec. 3.3): BatchNorm statistics computed per group of the
batch, as if each group ran on its own GPU, in one batched pass (the split BatchNorm of MoCo's
CIFAR demo). The backbone keeps its ordinary ``BatchNorm2d`` layers; only their forward is swapped
while the context is open, so saved weights and running statistics look exactly as usual."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def _split_forward(layer: nn.BatchNorm2d, groups: int, inputs: torch.Tensor) -> torch.Tensor:
    """BatchNorm with statistics per group (samples ``g, g + groups, …``); running statistics move
    towards the mean of the groups' statistics."""
    if not layer.training:
        return nn.BatchNorm2d.forward(layer, inputs)
    n, c, h, w = inputs.shape
    mean, var, batches = layer.running_mean, layer.running_var, layer.num_batches_tracked
    assert mean is not None and var is not None and batches is not None  # split_batchnorm takes tracking layers only
    running_mean = mean.repeat(groups)
    running_var = var.repeat(groups)
    momentum = 0.1 if layer.momentum is None else layer.momentum
    out = F.batch_norm(
        inputs.reshape(n // groups, c * groups, h, w),
        running_mean,
        running_var,
        layer.weight.repeat(groups),
        layer.bias.repeat(groups),
        True,
        momentum,
        layer.eps,
    )
    with torch.no_grad():
        mean.copy_(running_mean.view(groups, c).mean(0))
        var.copy_(running_var.view(groups, c).mean(0))
        batches.add_(1)
    return out.view(n, c, h, w)


@contextlib.contextmanager
def split_batchnorm(model: nn.Module, groups: int) -> Iterator[nn.Module]:
    """Within the context, every ``BatchNorm2d`` of ``model`` normalises ``groups`` groups separately."""
    layers = [m for m in model.modules() if type(m) is nn.BatchNorm2d and m.affine and m.track_running_stats]
    if groups > 1:
        for layer in layers:
            layer.forward = functools.partial(_split_forward, layer, groups)  # type: ignore[method-assign]  # per-instance, removed below
    try:
        yield model
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)


def shuffled_forward(encoder: nn.Module, images: torch.Tensor, groups: int, order: torch.Tensor) -> torch.Tensor:
    """``encoder(images)`` with split BatchNorm on the batch permuted by ``order``, un-permuted after."""
    with split_batchnorm(encoder, groups):
        outputs = encoder(images[order])
    restored = torch.empty_like(outputs)
    restored[order] = outputs
    return restored
