"""Data-free pruning with a distilled set (paper Sec. 3.5): network slimming, channel surgery,
size measurement. ``scdd prune`` (registered by the ``prune`` plugin) runs ``prune``.

Importing this package does not import torch; the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PruneConfig": "scdd.prune.config",
    "prune": "scdd.prune.stage",
    "pruned_file": "scdd.prune.stage",
    "ChannelGroup": "scdd.prune.graph",
    "Consumer": "scdd.prune.graph",
    "find_channel_groups": "scdd.prune.graph",
    "prune_group": "scdd.prune.surgery",
    "apply_channel_widths": "scdd.prune.surgery",
    "channel_widths": "scdd.prune.surgery",
    "select_channels": "scdd.prune.slimming",
    "sparsity_penalty": "scdd.prune.slimming",
    "count_flops": "scdd.prune.measure",
    "count_parameters": "scdd.prune.measure",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scdd.prune' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
