"""Typed errors raised by the scdd library.

The CLI turns each of these into a one-line message and a non-zero exit; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os

__all__ = [
    "ScddError",
    "ConfigError",
    "DataError",
    "ArtifactError",
    "UnknownComponentError",
    "DuplicateComponentError",
    "DiskFullError",
    "ProgressNotReused",
    "os_reason",
]


class ScddError(Exception):
    """Base class for every error that is the user's to fix."""


class ConfigError(ScddError):
    """A configuration value is out of range or inconsistent."""


class DataError(ScddError):
    """A dataset is missing, empty or malformed."""


class ArtifactError(ScddError):
    """An artifact file is missing, corrupt, or of the wrong kind."""


class UnknownComponentError(ScddError):
    """A component name that no loaded plugin registered."""

    def __init__(self, kind: str, name: str, available: list[str], suggestion: str | None):
        self.kind, self.name, self.available, self.suggestion = kind, name, available, suggestion
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        listing = ", ".join(available) if available else "none"
        super().__init__(f"unknown {kind} {name!r}.{hint} Registered {kind}s: {listing}")


class DuplicateComponentError(ScddError):
    """Two plugins registered the same component name for one kind."""


class DiskFullError(ScddError):
    """The disk filled up while an artifact was being written; the partial file was removed."""


class ProgressNotReused(UserWarning):
    """Kept progress that cannot be used (unreadable, made with other settings, of other shapes): the
    work it held is done again. The CLI prints it as one ``warning:`` line naming the file and why."""


def os_reason(error: BaseException) -> str | None:
    """Why the operating system would not let scdd read a file (permission, a folder, an I/O error),
    in words; None when the failure lies in the file's content (corrupt, truncated, another format)."""
    if isinstance(error, PermissionError):
        return "permission denied (scdd cannot read it; check its owner and mode)"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(error, OSError) and error.errno:
        return f"cannot be read ({os.strerror(error.errno)})"
    return None
