"""BatchNorm layers swapped in place for other kinds and back, with the same parameters and running
statistics: ``SyncBatchNorm`` across torchrun ranks for the squeeze (as MoCo v3, SwAV and DINO
pretrain), reverted before a backbone is saved so it is the registered architecture again."""

from __future__ import annotations

from collections.abc import Callable

import torch

from scdd.distributed import is_distributed

_SYNCABLE = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def _swap_batchnorm(module: torch.nn.Module, make: Callable[[torch.nn.Module], torch.nn.Module | None]) -> torch.nn.Module:
    """Replace every sub-module for which ``make`` returns a layer (same parameters and statistics)."""
    replacement = make(module)
    if replacement is not None:
        replacement.load_state_dict(module.state_dict())
        replacement.train(module.training)
        tensors = [*module.parameters(), *module.buffers()]
        return replacement.to(tensors[0].device) if tensors else replacement
    for name, child in module.named_children():
        swapped = _swap_batchnorm(child, make)
        if swapped is not child:
            setattr(module, name, swapped)
    return module


def _to_sync(layer: torch.nn.Module) -> torch.nn.Module | None:
    if type(layer) not in _SYNCABLE or not isinstance(layer, _SYNCABLE):  # subclasses (e.g. timm's BatchNormAct2d) keep per-rank statistics
        return None
    sync = torch.nn.SyncBatchNorm(layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats)
    sync.plain_class = type(layer)  # type: ignore[assignment]  # Module.__setattr__ stores any value; torch types it Tensor | Module
    return sync


def _to_plain(layer: torch.nn.Module) -> torch.nn.Module | None:
    if not isinstance(layer, torch.nn.SyncBatchNorm):
        return None
    plain_class = getattr(layer, "plain_class", torch.nn.BatchNorm2d)
    return plain_class(layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats)


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
