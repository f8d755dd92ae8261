"""Channel surgery: shrink a conv → BN group and every layer that reads it to the kept channels.

A pruned model is described by its channel widths (``{bn_name: width}``); applying the same widths
to a freshly built model of the same architecture gives one whose state dict the pruned weights load
into, which is how a pruned artifact is rebuilt (``scdd.models.saved.load_model``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from scdd.errors import ArtifactError
from scdd.models.channel_groups import ChannelGroup, find_channel_groups
from scdd.models.classifier import submodule


def _take(tensor: torch.Tensor, index: torch.Tensor, dim: int) -> torch.Tensor:
    return tensor.detach().index_select(dim, index.to(tensor.device)).clone()


def _take_parameter(parameter: torch.Tensor, index: torch.Tensor, dim: int) -> nn.Parameter:
    return nn.Parameter(_take(parameter, index, dim), requires_grad=parameter.requires_grad)


def prune_group(model: nn.Module, group: ChannelGroup, keep: torch.Tensor) -> None:
    """Keep only channels ``keep`` (ascending indices) of ``group``, in place."""
    keep = torch.as_tensor(keep, dtype=torch.long).sort().values
    conv, bn = submodule(model, group.conv, nn.Conv2d), submodule(model, group.bn, nn.BatchNorm2d)
    channels = conv.out_channels
    if len(keep) == 0 or keep.min() < 0 or keep.max() >= channels:
        raise ValueError(f"{group.bn}: cannot keep channels {keep.tolist()} of {channels}")
    conv.weight = _take_parameter(conv.weight, keep, 0)
    if conv.bias is not None:
        conv.bias = _take_parameter(conv.bias, keep, 0)
    conv.out_channels = len(keep)
    bn.weight = _take_parameter(bn.weight, keep, 0)
    bn.bias = _take_parameter(bn.bias, keep, 0)
    if bn.running_mean is not None and bn.running_var is not None:  # kept together
        bn.running_mean = _take(bn.running_mean, keep, 0)
        bn.running_var = _take(bn.running_var, keep, 0)
    bn.num_features = len(keep)
    for consumer in group.consumers:
        if consumer.kind == "conv":
            layer = submodule(model, consumer.name, nn.Conv2d)
            layer.weight = _take_parameter(layer.weight, keep, 1)
            layer.in_channels = len(keep)
        else:
            linear = submodule(model, consumer.name, nn.Linear)
            span, remainder = divmod(linear.in_features, channels)
            if remainder:
                raise ValueError(f"{consumer.name}: {linear.in_features} features do not split into {channels} channels")
            columns = (keep.view(-1, 1) * span + torch.arange(span).view(1, -1)).flatten()
            linear.weight = _take_parameter(linear.weight, columns, 1)
            linear.in_features = len(columns)
    _sync_feature_count(model)


def _sync_feature_count(model: nn.Module) -> None:
    """A classifier's backbone advertises ``num_features``; keep it equal to what its head reads."""
    backbone, head = getattr(model, "backbone", None), getattr(model, "head", None)
    if isinstance(head, nn.Linear) and backbone is not None and isinstance(getattr(backbone, "num_features", None), int):
        backbone.num_features = head.in_features


def channel_widths(model: nn.Module, groups: list[ChannelGroup]) -> dict[str, int]:
    """``{bn_name: channels}`` of each group: the description a pruned artifact stores."""
    return {group.bn: submodule(model, group.bn, nn.BatchNorm2d).num_features for group in groups}


def apply_channel_widths(model: nn.Module, widths: Mapping[str, int]) -> nn.Module:
    """Shrink a freshly built model to recorded widths (keeping the first channels of each group;
    the pruned weights are loaded afterwards). Unknown or unprunable names raise ``ArtifactError``."""
    groups = {group.bn: group for group in find_channel_groups(model)}
    for name, width in widths.items():
        group = groups.get(name)
        if group is None:
            raise ArtifactError(f"recorded channel width for {name!r}, which is not a prunable BN layer of this model")
        channels = submodule(model, group.conv, nn.Conv2d).out_channels
        if not 1 <= int(width) <= channels:
            raise ArtifactError(f"recorded width {width} for {name!r} is outside 1..{channels}")
        if int(width) < channels:
            prune_group(model, group, torch.arange(int(width)))
    return model
