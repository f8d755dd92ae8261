"""Soft-label shards that survive an interruption.

Relabelling keeps each finished epoch as a unit (``relabel-epochs/epoch-<e>``) until the shard
holding it is written; then the shard's hidden staging file stays in place, a small
``shard-<k>`` unit records its epochs and label agreement, and the epoch units are removed, so
progress never holds more than one shard's epochs beside the shards. A later attempt adopts every
recorded shard whose staging file is still there and continues with the next epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from scdd.labels.store import ShardWriter, shard_name
from scdd.resume.units import NoUnits, UnitStore


def epoch_unit(epoch: int) -> str:
    return f"epoch-{epoch:05d}"


class ResumableShardWriter(ShardWriter):
    """``ShardWriter`` that adopts the shards an interrupted attempt finished (see the module docstring)."""

    def __init__(
        self, folder: Path, metadata: dict[str, Any], total_epochs: int, epochs_per_shard: int, store: UnitStore | NoUnits
    ) -> None:
        super().__init__(folder, metadata, total_epochs, epochs_per_shard)
        self.store = store
        self.agree_done = 0  # label agreement counted over the adopted shards' epochs
        self._agree: dict[int, int] = {}
        self._adopt()

    @property
    def epochs_done(self) -> int:
        return self._next_epoch

    def _adopt(self) -> None:
        while len(self._written) < self.shards:
            index = len(self._written)
            final = self.folder / shard_name(index)
            staging = self.folder / f".{final.name}.partial"
            saved = self.store.load(f"shard-{index:05d}", count=False)
            if saved is None or not staging.is_file():
                return
            start, stop = self._next_epoch, int(saved[1]["epoch_stop"])
            self._written.append((staging, final))
            self._next_epoch = stop
            self.agree_done += int(saved[1]["agree"])
            if isinstance(self.store, UnitStore) and self.store.scope is not None:
                self.store.scope.count("units_reused", stop - start)

    def add_epoch(self, epoch: int, tensors: dict[str, torch.Tensor], agree: int) -> None:
        """Add one epoch's plan and labels with its count of crops the teacher puts in the image's class."""
        self._agree[epoch] = agree
        self.add(tensors)

    def _flush(self) -> None:
        epochs = range(self._next_epoch - len(self._pending), self._next_epoch)
        super()._flush()
        agree = sum(self._agree.pop(epoch, 0) for epoch in epochs)
        self.store.save(f"shard-{len(self._written) - 1:05d}", {}, {"epoch_stop": self._next_epoch, "agree": agree}, count=False)
        for epoch in epochs:
            self.store.remove(epoch_unit(epoch))

    def abort(self) -> None:
        if isinstance(self.store, UnitStore):
            return  # progress is kept: finished shards stay for the next attempt
        super().abort()
