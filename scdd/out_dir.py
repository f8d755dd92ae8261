"""``--out`` folders: whether one holds files, scdd's own leftovers in it, and the locked folders of
commands whose outputs are never continued (``scdd bench``, ``scdd import-checkpoint``, ``scdd prune``).

A process killed while writing leaves the temporary file (or staged folder) of its atomic write
(``scdd.artifacts.atomic_path``: ``.<name>.<8 random characters>.tmp``). Such leftovers are scdd's
own: they never make a folder count as holding files, and the next scdd process that locks the
folder removes them. Nothing else is ever deleted without ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from scdd.distributed import is_main, on_main
from scdd.errors import ConfigError
from scdd.run_lock import LOCK_FILE, acquire, release

MANIFEST_FILE = "manifest.json"
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # tempfile's 8 characters between atomic_path's prefix and suffix


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is the temporary of an atomic write (scdd's own leftover when its writer was killed)."""
    return _TEMPORARY.fullmatch(path.name) is not None


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the leftover temporaries of killed writers anywhere in ``folder`` (call it under the folder's lock)."""
    found = sorted(path for path in Path(folder).rglob(".*.tmp") if is_temporary(path))
    for path in found:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return found


def holds_files(out_dir: Path) -> bool:
    """Whether ``out_dir`` exists and holds anything but its lock file and scdd's temporaries (a path
    that is not a folder is refused)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} exists and is not a folder")
    return out_dir.exists() and any(path.name != LOCK_FILE and not is_temporary(path) for path in out_dir.iterdir())


def already_holds(out_dir: Path) -> ConfigError:
    what = "a run" if (out_dir / MANIFEST_FILE).exists() else "other files"
    return ConfigError(f"--out {out_dir} already holds {what}; choose another folder or pass --overwrite")


def prepare_out_dir(out_dir: str | Path, overwrite: bool) -> Path:
    """Create a folder for outputs that are never continued; refuse one that already holds files unless
    told to overwrite (checked and created by rank 0 only under torchrun; every rank gets its answer)."""
    return on_main(_prepare_out_dir, Path(out_dir), overwrite)


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> Path:
    if holds_files(out_dir) and not overwrite:
        raise already_holds(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _lock_new(out_dir: Path, overwrite: bool) -> tuple[int, bool]:
    created = not out_dir.exists()
    _prepare_out_dir(out_dir, overwrite)  # a folder holding other files is refused before a lock file is made
    fd = acquire(out_dir)
    remove_temporaries(out_dir)
    return fd, created


@contextlib.contextmanager
def locked_out_dir(out_dir: str | Path, overwrite: bool) -> Iterator[Path]:
    """``prepare_out_dir`` under the folder's lock, held (by rank 0 under torchrun) until the block
    ends: a second scdd process on the folder is refused in one line and changes nothing in it. A
    folder this call created is removed again when the block fails before writing anything."""
    out_dir = Path(out_dir)
    fd: int | None
    fd, created = on_main(_lock_new, out_dir, overwrite)
    try:
        yield out_dir
    except BaseException:
        if is_main() and created and [path.name for path in out_dir.iterdir()] == [LOCK_FILE]:
            release(fd)
            fd = None
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        if is_main() and fd is not None:
            release(fd)
