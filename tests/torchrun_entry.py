"""Entry point that tests/test_distributed.py starts under torchrun: it records, per rank, every
file-system write into a watched folder (Python audit events: opens for writing, mkdir, rename),
then runs the scdd CLI with the remaining arguments; when the CLI returns (after leaving the process
group), it lists the process's threads in LOG_DIR/threads-rankR.txt, one name a line.

Usage: ``torchrun ... tests/torchrun_entry.py LOG_DIR WATCHED_DIR scdd-arguments...``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scdd.cli.main import main as scdd_main

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _writes(event: str, args: tuple) -> object | None:
    """The path an audit event writes to, or None."""
    if event == "open":
        path, mode, flags = args
        if isinstance(path, int) or path is None:
            return None
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (flags is not None and flags & _WRITE_FLAGS)
        return path if writing else None
    if event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir"):
        return args[0]
    return None


def main() -> None:
    log_dir, watched = Path(sys.argv[1]), os.path.realpath(sys.argv[2])
    log = open(log_dir / f"rank{os.environ['RANK']}.log", "w")  # noqa: SIM115 (open until exit)
    busy = []

    def hook(event: str, args: tuple) -> None:
        if busy:
            return
        busy.append(1)
        try:
            path = _writes(event, args)
            if path is not None and os.path.realpath(os.fsdecode(path)).startswith(watched):
                log.write(f"{event}\t{os.fsdecode(path)}\n")
                log.flush()
        finally:
            busy.pop()

    sys.addaudithook(hook)
    try:
        scdd_main(sys.argv[3:])
    finally:
        threads = [comm.read_text().strip() for comm in Path("/proc/self/task").glob("*/comm")]
        (log_dir / f"threads-rank{os.environ['RANK']}.txt").write_text("\n".join(threads) + "\n")


if __name__ == "__main__":
    main()
