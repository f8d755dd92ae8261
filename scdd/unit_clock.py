"""Timing a loop by its progress units: ``unit_clock`` runs a stage's own code with a progress object that
timestamps each unit its loop reports and cuts the loop once a few are timed; ``StageEstimate`` and
``TimePlan`` hold the extrapolated wall times (``scdd.timeplan`` builds a run's plan from them).

A stage costs (time to its first unit: set-up and warm-up) + (total units - first) x (mean time of a
later unit), so the estimate needs no model of what a unit does, and holds for plugins' loops alike.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

UNITS = 3  # timed units after the first, per loop
PROBE_SECONDS = 6.0  # ... or fewer, once at least one is timed and this long has passed


class _Cut(Exception):
    """Raised inside a timed loop once enough of its units are timed."""


@dataclass
class _Loop:
    description: str
    total: int
    opened: float
    marks: list[tuple[float, int]] = field(default_factory=list)  # (time, units advanced so far)


class _UnitClock:
    """A ``Progress`` (and its ``Task``) that timestamps a loop's units and cuts it after a few."""

    def __init__(self, device: torch.device, units: int = UNITS, seconds: float = PROBE_SECONDS) -> None:
        self.device, self.units, self.seconds = device, units, seconds
        self.loops: list[_Loop] = []

    def task(self, description: str, total: int) -> _UnitClock:
        self.loops.append(_Loop(description, int(total), time.perf_counter()))
        return self

    def log(self, message: str) -> None:
        pass

    def advance(self, steps: int = 1, **metrics: float) -> None:
        if steps <= 0 or not self.loops:
            return
        loop = self.loops[-1]
        done = (loop.marks[-1][1] if loop.marks else 0) + steps
        _synchronize(self.device)
        now = time.perf_counter()
        loop.marks.append((now, done))
        timed = len(loop.marks) - 1
        if done < loop.total and timed >= 1 and (timed >= self.units or now - loop.marks[0][0] >= self.seconds):
            raise _Cut

    def close(self) -> None:
        pass


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class StageEstimate:
    """One stage's estimate: total seconds, and how it was reached."""

    stage: str
    seconds: float
    units: int = 0  # the loop's total units (0: no loop, timed whole)
    unit_seconds: float = 0.0
    setup_seconds: float = 0.0
    what: str = ""  # the loop's own description, e.g. "squeeze moco-v3"
    fixed_seconds: float = 0.0  # the part that does not grow with the loop's length (set-up, per repeat)
    cpu_share: float = 1.0  # the process's CPU time per wall second while it was measured (all threads)

    @property
    def cpu_seconds(self) -> float:
        """The estimate in CPU time: what it would take on as many idle cores as threads, at no load."""
        return self.seconds * self.cpu_share

    def rescaled(self, factor: float) -> StageEstimate:
        """The estimate with the loop ``factor`` times as long (a budget scaled), set-up unchanged."""
        varying = (self.seconds - self.fixed_seconds) * factor
        return dataclasses.replace(self, seconds=self.fixed_seconds + varying, units=round(self.units * factor))

    def to_json(self) -> dict[str, Any]:
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in dataclasses.asdict(self).items()}


@dataclass
class TimePlan:
    """Estimated wall time of each stage of a run on this machine."""

    device: str
    threads: int
    stages: list[StageEstimate]
    probe_seconds: float
    probe_cpu_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)

    @property
    def cpu_seconds(self) -> float:
        return sum(stage.cpu_seconds for stage in self.stages)

    def stage(self, name: str) -> StageEstimate:
        return next(stage for stage in self.stages if stage.stage == name)

    def rescaled(self, factors: dict[str, float]) -> TimePlan:
        """The plan with each named stage's loop scaled by its factor (``StageEstimate.rescaled``)."""
        stages = [stage.rescaled(factors[stage.stage]) if stage.stage in factors else stage for stage in self.stages]
        return dataclasses.replace(self, stages=stages)

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "threads": self.threads,
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
            "probe_seconds": round(self.probe_seconds, 1),
            "probe_cpu_seconds": round(self.probe_cpu_seconds, 1),
            "stages": {stage.stage: stage.to_json() for stage in self.stages},
        }


def unit_clock(stage: str, action: Callable[[_UnitClock], Any], device: torch.device, scale: float = 1.0) -> tuple[StageEstimate, Any]:
    """Run ``action(clock)``; estimate its full length from its loops' timed units (or its own time when it
    finishes), times ``scale`` (repeats of the same work)."""
    clock = _UnitClock(device)
    start, cpu = time.perf_counter(), time.process_time()
    result = None
    try:
        result = action(clock)
        _synchronize(device)
        finished = True
    except _Cut:
        finished = False
    elapsed = time.perf_counter() - start
    share = (time.process_time() - cpu) / max(elapsed, 1e-9)
    if finished or not clock.loops:
        return StageEstimate(stage, elapsed * scale, what=stage, cpu_share=share), result
    loop = clock.loops[-1]
    (first_time, first_done), (last_time, last_done) = loop.marks[0], loop.marks[-1]
    unit = (last_time - first_time) / max(1, last_done - first_done)
    setup = first_time - start
    estimate = setup + unit * (loop.total - first_done)
    return StageEstimate(stage, estimate * scale, loop.total, unit, setup, loop.description, setup * scale, share), result


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
