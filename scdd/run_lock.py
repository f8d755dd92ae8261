"""One run at a time per run folder: ``DIR/.scdd.lock``, an exclusive ``flock`` held for the run.

The lock belongs to an open file descriptor, so the kernel releases it when the process ends in any
way (exit, crash, ``kill -9``): a crashed run never leaves the folder locked, although the file stays
(scdd's own; the out-folder checks ignore it). The file holds the holder's PID, host and start time,
which a second process on the folder names in its one-line refusal. Under torchrun rank 0 holds it.

``flock`` excludes processes on one machine and, on Linux, on NFS (emulated with byte-range locks);
a file system without locks refuses the run with its OS error.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket
from pathlib import Path

from scdd.errors import ConfigError

LOCK_FILE = ".scdd.lock"


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on host {info['host']}, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):  # the holder is between taking the lock and writing
        return "pid unknown"


def acquire(out_dir: Path) -> int:
    """Create ``out_dir`` if needed and lock it for this process; returns the descriptor to pass to
    ``release``. A folder another process holds is refused in one line naming that process."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a read-only parent, a file on the way
        raise ConfigError(f"--out {out_dir}: cannot create it ({error.strerror})") from None
    try:
        fd = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError(f"--out {out_dir}: cannot create its lock file ({error.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ConfigError(
            f"--out {out_dir} is in use by another scdd run ({holder}); wait for it to end or choose another folder"
        ) from None
    except OSError as error:
        os.close(fd)
        raise ConfigError(f"--out {out_dir}: cannot lock it ({error.strerror})") from None
    since = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, record + b"\n", 0)
    return fd


def release(fd: int) -> None:
    """Give the lock back (the file stays; its record is that of the last holder)."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
