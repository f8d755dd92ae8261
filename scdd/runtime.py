"""Device choice, the memory format models run in, and seeding."""

from __future__ import annotations

import hashlib
import random
from typing import TypeVar

import numpy as np
import torch

from scdd._options import check_memory_format
from scdd.distributed import rank_device
from scdd.errors import ConfigError

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; anything else must be a valid, present device.
    Under torchrun, ``cuda`` without an index is each process's ``cuda:LOCAL_RANK``."""
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        return rank_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} asked for, but CUDA is not available here")
    return rank_device(device)


def memory_format(device: torch.device, choice: str = "auto") -> torch.memory_format:
    """The layout a model's 4-D weights (and so its activations) take on ``device``.

    ``auto`` is the contiguous NCHW layout on every device. ``channels-last`` is faster on the CPU, where
    oneDNN runs convolutions and BatchNorm on NHWC tensors directly but reorders NCHW ones on every call
    (1.16-1.36x less CPU time for the whole default run), but it is not the default: its students scored
    lower at every one of 3 paired seeds (README "Performance"). The layout changes only the order of
    floating-point sums."""
    if check_memory_format(choice) == "auto":
        choice = "contiguous"
    return torch.channels_last if choice == "channels-last" else torch.contiguous_format


def place(module: ModuleT, device: torch.device, choice: str = "auto") -> ModuleT:
    """``module`` moved (in place) to ``device`` in ``memory_format(device, choice)``; NCHW inputs need no change,
    since a convolution with channels-last weights returns channels-last activations."""
    module.to(device)
    module.to(memory_format=memory_format(device, choice))
    return module


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 63-bit seed for a named sub-task, e.g. ``derive_seed(0, "recover", batch)``."""
    text = ":".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def generator(seed: int, *parts: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded with ``derive_seed(seed, *parts)``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, *parts))
    return gen


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (model initialisation draws from torch's global generator)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
