"""Reading published PyTorch checkpoint files without running their pickle code.

Every file is read with ``torch.load(weights_only=True)``, which only rebuilds tensors and plain
containers. A file that needs more (DINO's full checkpoints pickle an ``argparse.Namespace``; SwAV's
training checkpoints hold NumPy scalars) is refused unless the caller trusts it explicitly.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from scdd.errors import ArtifactError, os_reason

_UNSAFE_MARK = "Weights only load failed"


def _first_line(error: BaseException) -> str:
    """The error's first sentence (torch appends paragraphs of advice to some)."""
    text = str(error).strip()
    return text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(error).__name__


def _damaged(path: Path, error: BaseException) -> ArtifactError:
    """Corrupt or truncated, unless the OS would not let scdd read the file (permission, a folder, I/O)."""
    reason = os_reason(error)
    return ArtifactError(f"{path}: {reason}" if reason else f"{path}: corrupt or truncated checkpoint ({_first_line(error)})")


def _unsafe_globals(message: str) -> str:
    names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", message)))
    return ", ".join(names) if names else "objects other than tensors"


def load_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> Any:
    """The object stored in ``path`` (tensors on the CPU); a corrupt, truncated or unsafe file raises
    ``ArtifactError`` in one line."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if _UNSAFE_MARK not in message or "Unsupported global" not in message:
            raise ArtifactError(f"{path}: corrupt or truncated checkpoint ({_first_line(error)})") from None
        if not trust_pickle:
            raise ArtifactError(
                f"{path}: the file pickles Python objects ({_unsafe_globals(message)}), and unpickling can run "
                "arbitrary code; pass --trust-pickle only if you trust where the file came from"
            ) from None
    except Exception as error:  # torch raises RuntimeError, EOFError and zipfile errors for damaged files
        raise _damaged(path, error) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise _damaged(path, error) from None
