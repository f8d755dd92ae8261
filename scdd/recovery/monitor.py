"""Loss reporting from a hot loop without stalling the device.

Every ``every`` steps the current loss values are copied to the host asynchronously (pinned
memory and a CUDA event); they are shown, and checked for NaN/inf, once the copy has landed,
at a later report or at ``flush()``. On the CPU the copy is immediate. No step ever waits on the device.
"""

from __future__ import annotations

import torch

from scdd.progress import Task
from scdd.training.optim import check_finite


class LossMonitor:
    def __init__(self, task: Task, names: tuple[str, ...], device: torch.device, *, every: int, stage: str) -> None:
        self.task, self.names, self.device, self.every, self.stage = task, names, device, every, stage
        self._pending: list[tuple[int, torch.Tensor, torch.cuda.Event | None]] = []

    def step(self, step: int, *values: torch.Tensor, last: bool = False) -> None:
        """Advance the progress task by one step; snapshot ``values`` every ``every`` steps and at the ``last``."""
        if (step + 1) % self.every and not last:
            self.task.advance(1)
            return
        snapshot = torch.stack([value.detach().float() for value in values])
        if self.device.type == "cuda":
            host = torch.empty(snapshot.shape, pin_memory=True)
            host.copy_(snapshot, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._pending.append((step, host, event))
        else:
            self._pending.append((step, snapshot, None))
        self.task.advance(1, **self._landed())

    def _landed(self, wait: bool = False) -> dict[str, float]:
        """Metrics of the newest snapshot whose copy has finished (all of them are checked)."""
        metrics: dict[str, float] = {}
        while self._pending:
            step, host, event = self._pending[0]
            if event is not None and not wait and not event.query():
                break
            if event is not None:
                event.synchronize()
            self._pending.pop(0)
            metrics = {
                name: check_finite(float(value), self.stage, step + 1) for name, value in zip(self.names, host.tolist(), strict=False)
            }
        return metrics

    def flush(self) -> dict[str, float]:
        """Wait for outstanding snapshots, check them, and return the newest."""
        return self._landed(wait=True)
