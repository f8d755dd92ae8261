"""The host allocator: memory a step frees stays in the process for the next step.

Each training step on the CPU allocates and frees the same large buffers (activations, their
gradients, oneDNN's convolution workspaces, tens of MB each at batch 256). glibc's malloc serves
blocks above 32 MB (and, after trimming, the top of its heap) straight from the kernel, so every
step maps them again and the kernel zeroes every page on first touch: in the default squeeze on the
CPU that was 467,000 page faults and 38% of the process's CPU time per step, all system time.
``keep_freed_memory`` tells glibc to serve every block from its heap and to keep what is freed
(``mallopt``: no ``mmap`` blocks, no trimming below 2 GiB), so the pages are faulted in once per
process. Only where memory comes from changes: every tensor, and so every result, is the same.
The peak resident size stays the peak of what is in use at once (plus what fragmentation holds).

The ``scdd`` command calls it at start. It does nothing off glibc, when ``SCDD_SYSTEM_MALLOC`` is
set, or when the environment already tunes malloc (``MALLOC_*`` variables, ``GLIBC_TUNABLES``).
"""

from __future__ import annotations

import ctypes
import os
import sys

OPT_OUT = "SCDD_SYSTEM_MALLOC"
# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # bytes free at the heap's top before it is given back (mallopt takes an int)
TOP_PAD = 64 * 2**20  # bytes added to each heap extension, so the heap grows in few steps


def tuned_elsewhere() -> bool:
    """Whether the environment sets malloc's behaviour itself (or opts out of scdd's setting)."""
    if os.environ.get(OPT_OUT):
        return True
    return any(name.startswith("MALLOC_") for name in os.environ) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory in the process (see the module); returns whether it did."""
    if not sys.platform.startswith("linux") or tuned_elsewhere():
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (present in glibc only; musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
