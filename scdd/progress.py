"""How library loops report progress. The CLI supplies a rich implementation; the default is silent.

Loops call ``progress.task(description, total)`` and then ``task.advance(n, **metrics)``; metrics are
plain floats, so callers decide when to synchronise with the device (never every step).
"""

from __future__ import annotations

from typing import Protocol


class Task(Protocol):
    def advance(self, steps: int = 1, **metrics: float) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int) -> Task: ...

    def log(self, message: str) -> None: ...


class _SilentTask:
    def advance(self, steps: int = 1, **metrics: float) -> None:
        pass

    def close(self) -> None:
        pass


class SilentProgress:
    """Reports nothing."""

    def task(self, description: str, total: int) -> Task:
        return _SilentTask()

    def log(self, message: str) -> None:
        pass


SILENT = SilentProgress()
