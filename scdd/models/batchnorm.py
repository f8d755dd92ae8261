"""BatchNorm layers swapped in place for other kinds and back, with the same parameters and running
statistics: ``SyncBatchNorm`` across torchrun ranks for the squeeze (as MoCo v3, SwAV and DINO
pretrain), and lightly's ``SplitBatchNorm`` for MoCo v2's shuffled BatchNorm on one device (each
group of the batch normalised as if on its own GPU, MoCo Sec. 3.3); both are reverted before a
backbone is saved, so it is the registered architecture again."""

from __future__ import annotations

from collections.abc import Callable

import torch
from lightly.models.batchnorm import SplitBatchNorm

from scdd.distributed import is_distributed

_SYNCABLE = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def _swap_batchnorm(module: torch.nn.Module, make: Callable[[torch.nn.Module], torch.nn.Module | None]) -> torch.nn.Module:
    """Replace every sub-module for which ``make`` returns a layer (holding the old one's state)."""
    replacement = make(module)
    if replacement is not None:
        replacement.train(module.training)
        tensors = [*module.parameters(), *module.buffers()]
        return replacement.to(tensors[0].device) if tensors else replacement
    for name, child in module.named_children():
        swapped = _swap_batchnorm(child, make)
        if swapped is not child:
            setattr(module, name, swapped)
    return module


def _with_state(new: torch.nn.Module, old: torch.nn.Module, **changed: torch.Tensor) -> torch.nn.Module:
    """``new`` holding ``old``'s parameters and statistics, with the ``changed`` entries replaced."""
    new.load_state_dict({**old.state_dict(), **changed})
    return new


def _to_sync(layer: torch.nn.Module) -> torch.nn.Module | None:
    if type(layer) not in _SYNCABLE:  # subclasses (e.g. timm's BatchNormAct2d) keep per-rank statistics
        return None
    sync = torch.nn.SyncBatchNorm(layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats)
    sync.plain_class = type(layer)
    return _with_state(sync, layer)


def _to_plain(layer: torch.nn.Module) -> torch.nn.Module | None:
    if not isinstance(layer, torch.nn.SyncBatchNorm):
        return None
    plain_class = getattr(layer, "plain_class", torch.nn.BatchNorm2d)
    return _with_state(plain_class(layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats), layer)


def convert_sync_batchnorm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """BatchNorm layers synchronised across ranks (statistics over the global batch, as MoCo v3,
    SwAV and DINO pretrain), on CUDA in a distributed run; unchanged otherwise (SyncBatchNorm has
    no CPU kernel, so CPU ranks normalise their own part of the batch)."""
    if not is_distributed() or device.type != "cuda":
        return module
    return _swap_batchnorm(module, _to_sync)


def revert_sync_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """The plain ``BatchNorm`` layers again in place of ``SyncBatchNorm`` (same parameters and
    statistics), so a saved model is the registered architecture."""
    return _swap_batchnorm(module, _to_plain)


class _SplitBatchNorm(SplitBatchNorm):
    """lightly's ``SplitBatchNorm`` for input in any memory format: its grouped ``view`` needs NCHW-contiguous
    input, so a channels-last batch (the CPU default, ``scdd.runtime.memory_format``) is reordered first."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return super().forward(input.contiguous())


def split_batchnorm(module: torch.nn.Module, groups: int) -> torch.nn.Module:
    """Every plain, affine ``BatchNorm2d`` of ``module`` (in place) as lightly's ``SplitBatchNorm``: in
    training, samples ``g, g + groups, …`` are normalised together, each group with running statistics
    of its own. With one group, nothing changes."""

    def to_split(layer: torch.nn.Module) -> torch.nn.Module | None:
        if type(layer) is not torch.nn.BatchNorm2d or not (layer.affine and layer.track_running_stats):
            return None
        split = _SplitBatchNorm(layer.num_features, groups, eps=layer.eps, momentum=layer.momentum)
        running = {key: getattr(layer, key).repeat(groups) for key in ("running_mean", "running_var")}
        return _with_state(split, layer, **running)

    return _swap_batchnorm(module, to_split) if groups > 1 else module


def merge_split_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Plain ``BatchNorm2d`` layers again in place of ``SplitBatchNorm`` (in place), each with the mean of
    its groups' running statistics."""

    def to_plain(layer: torch.nn.Module) -> torch.nn.Module | None:
        if not isinstance(layer, SplitBatchNorm):
            return None
        plain = torch.nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum)
        running = {key: getattr(layer, key).view(layer.num_splits, -1).mean(0) for key in ("running_mean", "running_var")}
        return _with_state(plain, layer, **running)

    return _swap_batchnorm(module, to_plain)
