"""Where a running stage keeps its progress, and how its loops find it.

A stage run through ``scdd run`` or a stage command runs inside ``progress_scope(stage_dir)``; its
loops ask ``current_scope()`` for it and, when there is none (a plain library call), keep no
progress at all. Progress lives in ``<stage_dir>/.progress/``: per-epoch training checkpoints
(``scdd.training.checkpoint``) and finished work units (``scdd.resume.units``), each file written
atomically, so a run killed at any instant leaves only whole files behind. The scope counts what it
computed and what it took over from an earlier attempt; the manifest records both.

Under torchrun every process keeps progress in the same folder, in the units of one process: rank 0
writes a training loop's checkpoint (with every rank's random states) and every rank reads it; each
rank writes the recovery batches it computed, keyed by batch, so a restart with another number of
processes still takes them over; rank 0 writes relabelled epochs. A process counts what it did
itself, and the stage's record sums the counts of all processes.
"""

from __future__ import annotations

import contextlib
import contextvars
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scdd.distributed import gather_objects, is_main
from scdd.errors import ProgressNotReused, os_reason

PROGRESS_FOLDER = ".progress"

_SCOPE: contextvars.ContextVar[ProgressScope | None] = contextvars.ContextVar("scdd_progress_scope", default=None)


@dataclass
class ProgressScope:
    """One stage's progress folder and the counts of units and epochs computed or reused in this attempt."""

    stage_dir: Path
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.stage_dir / PROGRESS_FOLDER

    def path(self, name: str) -> Path:
        return self.folder / name

    def count(self, what: str, n: int = 1) -> None:
        """Add ``n`` to a counter, e.g. ``units_computed`` or ``epochs_reused``."""
        self.counts[what] = self.counts.get(what, 0) + n

    def summary(self, every_rank: bool = False) -> dict[str, Any]:
        """The counts of this attempt; with ``every_rank``, summed over the torchrun processes (a
        collective: every rank must call it)."""
        totals: dict[str, int] = {}
        for counts in gather_objects(self.counts) if every_rank else [self.counts]:
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
        return {key: value for key, value in sorted(totals.items()) if key != "attempt"}

    def discard(self) -> None:
        """Remove the progress folder (the stage's artifacts are complete, or the user asked to start
        over); rank 0 does it under torchrun."""
        if is_main():
            shutil.rmtree(self.folder, ignore_errors=True)


def current_scope() -> ProgressScope | None:
    """The progress scope of the stage being run, or None when progress is not kept."""
    return _SCOPE.get()


@contextlib.contextmanager
def progress_scope(stage_dir: str | Path) -> Iterator[ProgressScope]:
    """Keep progress for the stage writing into ``stage_dir`` while the block runs (in every process
    under torchrun)."""
    scope = ProgressScope(Path(stage_dir))
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def safe_key(*parts: object) -> str:
    """A file-name-safe key from parts such as ``("posttrain", "resnet18", 0)``."""
    text = "-".join(str(part) for part in parts)
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def warn_not_reused(path: Path, reason: str, redone: str) -> None:
    """Say in one line that the progress file ``path`` is not used, why, and what is done again."""
    warnings.warn(ProgressNotReused(f"{path} {reason}; {redone}"), stacklevel=3)


def read_failure(error: BaseException) -> str:
    """Why a progress file could not be read, in a few words."""
    if os_reason(error):
        return str(os_reason(error))
    if isinstance(error, KeyError):
        return "holds no scdd progress record"
    return f"is unreadable ({' '.join(str(error).split()) or type(error).__name__})"


def identity_differences(saved: Any, wanted: dict[str, Any]) -> str:
    """The identity keys whose saved values differ from this attempt's, for a warning."""
    if not isinstance(saved, dict):
        return "was saved without its settings"
    keys = sorted(key for key in saved.keys() | wanted.keys() if saved.get(key) != wanted.get(key))
    return f"was saved with other settings ({', '.join(keys)})"
