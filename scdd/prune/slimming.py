"""Network slimming (Liu et al., ICCV 2017), the pruning method of the paper's Sec. 3.5 / Table 9.

Training adds ``λ · Σ|γ|`` over the BN scale factors γ of the prunable channels (Liu et al.'s
Eq. 1 with g(s) = |s|), which drives unimportant channels' scales towards zero; then the channels
with the smallest |γ| across all layers (one global ranking) are removed.
"""

from __future__ import annotations

import torch
from torch import nn

from scdd.errors import ConfigError
from scdd.models.channel_groups import ChannelGroup
from scdd.models.classifier import submodule


def scale_factors(model: nn.Module, groups: list[ChannelGroup]) -> list[torch.Tensor]:
    """The BN scale factors γ of each prunable group."""
    return [submodule(model, group.bn, nn.BatchNorm2d).weight for group in groups]


def sparsity_penalty(model: nn.Module, groups: list[ChannelGroup]) -> torch.Tensor:
    """``Σ|γ|`` over the prunable channels of ``groups`` (at least one; multiplied by λ by the caller)."""
    first, *rest = [gamma.abs().sum() for gamma in scale_factors(model, groups)]
    total = first
    for term in rest:  # summed in order, as sum() does
        total = total + term
    return total


def select_channels(model: nn.Module, groups: list[ChannelGroup], ratio: float, *, min_channels: int = 1) -> dict[str, torch.Tensor]:
    """Channels to keep per group: the ``ratio`` share of all prunable channels with the smallest
    |γ| is removed (global threshold), except that each layer keeps its ``min_channels`` largest."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"prune ratio must be in [0, 1), got {ratio}")
    if min_channels < 1:
        raise ConfigError(f"min_channels must be at least 1, got {min_channels}")
    magnitudes = [gamma.detach().abs().float().cpu() for gamma in scale_factors(model, groups)]
    protected = []
    for values in magnitudes:
        mask = torch.zeros_like(values, dtype=torch.bool)
        mask[values.topk(min(min_channels, len(values))).indices] = True
        protected.append(mask)
    scores = torch.cat([torch.where(mask, torch.inf, values) for values, mask in zip(magnitudes, protected, strict=False)])
    budget = min(round(ratio * len(scores)), int((~torch.cat(protected)).sum()))
    removed = torch.zeros(len(scores), dtype=torch.bool)
    removed[scores.argsort(stable=True)[:budget]] = True
    keep, start = {}, 0
    for group, values in zip(groups, magnitudes, strict=False):
        layer_removed = removed[start : start + len(values)]
        keep[group.bn] = torch.nonzero(~layer_removed).flatten()
        start += len(values)
    return keep
