"""Where a running stage keeps its progress, and how its loops find it.

A stage run through ``scdd run`` or a stage command runs inside ``progress_scope(stage_dir)``; its
loops ask ``current_scope()`` for it and, when there is none (a plain library call), keep no
progress at all. Progress lives in ``<stage_dir>/.progress/``: per-epoch training checkpoints
(``scdd.training.checkpoint``) and finished work units (``scdd.resume.units``), each file written
atomically, so a run killed at any instant leaves only whole files behind. The scope counts what it
computed and what it took over from an earlier attempt; the manifest records both.
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

from scdd.distributed import world_size
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

    def summary(self) -> dict[str, Any]:
        return {key: value for key, value in sorted(self.counts.items()) if key != "attempt"}

    def discard(self) -> None:
        """Remove the progress folder (the stage's artifacts are complete, or the user asked to start over)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def current_scope() -> ProgressScope | None:
    """The progress scope of the stage being run, or None when progress is not kept."""
    return _SCOPE.get()


@contextlib.contextmanager
def progress_scope(stage_dir: str | Path) -> Iterator[ProgressScope]:
    """Keep progress for the stage writing into ``stage_dir`` while the block runs.

    Under torchrun (several processes) no progress is kept: resuming is for single-process runs."""
    scope = ProgressScope(Path(stage_dir))
    if world_size() > 1:
        yield scope
        return
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
