"""Per-epoch training checkpoints: everything a training loop needs to continue bit for bit.

One safetensors file per loop holds the tensors (every parameter and buffer of the loop's modules,
non-persistent buffers such as a memory bank included; the optimiser's tensor state; the states of
the loop's random generators and of torch's global generators) and, as JSON metadata, the rest:
epochs done, the loss curve so far, the optimiser's param groups and scalar state, the scheduler's
state, and an identity (epochs, steps per epoch, ...) that must match for the file to be used. No
pickle is read or written. The file is replaced atomically after every epoch, so a killed run
continues from its last saved epoch with the same numbers as an uninterrupted one.

Under torchrun rank 0 writes the file and every rank reads it. Parameters and the optimiser's state
are the same on every rank (DistributedDataParallel averages the gradients); what each rank holds for
itself (buffers such as per-process BatchNorm statistics or a memory bank, the loop's tensors, its
random generators and torch's global ones) is gathered, and rank r > 0 keeps it under ``rank<r>.``
keys. The number of processes is part of the identity: a loop restarted with another number starts
again from its first epoch, with one warning; the ranks agree on whether the file is used.

Saving never takes more than ``SAVE_SHARE`` of a loop's time: when epochs are shorter than ten times
a save (a large student on a few distilled images), an epoch is saved only once ten save-durations
have passed since the last save, so at most that much work is redone after a kill.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from scdd.artifacts import atomic_path
from scdd.distributed import gather_objects, is_main, on_main, rank, world_size
from scdd.resume.scope import current_scope, identity_differences, read_failure, safe_key, warn_not_reused

_META_KEY = "scdd.progress"
_REDONE = "this training loop starts again from its first epoch"
SAVE_SHARE = 0.1  # most of a loop's time spent saving checkpoints; 0 saves after every epoch


def _own_key(key: str) -> str:
    """Where this rank's own tensor ``key`` is stored: under ``key`` on rank 0, ``rank<r>.key`` on rank r."""
    return f"rank{rank()}.{key}" if rank() else key


def _cpu(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # clones on the CPU: safetensors refuses tensors that share memory (tied weights)
    return {key: value.detach().to("cpu", copy=True).contiguous() for key, value in tensors.items()}


def _split_optimizer(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"o.{pid}.{key}"] = value
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def _join_optimizer(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("o."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, values in meta["plain"].items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


class EpochCheckpoint:
    """Saves and restores one training loop's state at epoch boundaries (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        identity: Mapping[str, Any],
        modules: Mapping[str, torch.nn.Module] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        generators: Mapping[str, torch.Generator] | None = None,
        tensors: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        self.path = Path(path)
        self.identity = json.loads(json.dumps({**identity, "processes": world_size()}))
        self.modules = dict(modules or {})
        self.optimizer, self.scheduler = optimizer, scheduler
        self.generators = dict(generators or {})
        self.tensors = dict(tensors or {})
        self.scope = current_scope()
        self._last_save_end: float | None = None
        self._last_save_seconds = 0.0

    def _live(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The modules' tensors by key: parameters (alike on every rank), and this rank's own buffers
        (persistent or not) and loop tensors."""
        shared: dict[str, torch.Tensor] = {}
        own: dict[str, torch.Tensor] = {}
        for name, module in self.modules.items():
            shared.update({f"m.{name}.{key}": value for key, value in module.named_parameters()})
            own.update({f"m.{name}.{key}": value for key, value in module.named_buffers()})
        own.update({f"t.{name}": value for name, value in self.tensors.items()})
        return shared, own

    # ------------------------------------------------------------------ saving

    def save(self, epochs_done: int, curve: list[float] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        """Write the state after ``epochs_done`` finished epochs (atomically). Under torchrun every rank
        calls it: each hands rank 0 its own tensors, and rank 0 writes."""
        shared, own = self._live()
        optimizer_meta = None
        if self.optimizer is not None:
            optimizer_tensors, optimizer_meta = _split_optimizer(self.optimizer.state_dict())
            shared.update(optimizer_tensors)
        own.update({f"g.{name}": gen.get_state() for name, gen in self.generators.items()})
        own["rng.cpu"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            own.update({f"rng.cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
        flat = _cpu({**shared, **own})
        if world_size() > 1:
            others = gather_objects(_cpu(own))[1:]
            if not is_main():
                return
            flat.update({f"rank{r}.{key}": value for r, part in enumerate(others, 1) for key, value in part.items()})
        meta = {
            "identity": self.identity,
            "epochs_done": epochs_done,
            "curve": list(curve or []),
            "optimizer": optimizer_meta,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "extra": dict(extra or {}),
        }
        with atomic_path(self.path) as tmp:
            save_file(flat, str(tmp), metadata={_META_KEY: json.dumps(meta)})

    # ------------------------------------------------------------------ restoring

    def _usable(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | str | None:
        """The saved tensors and metadata when they fit this loop (on this rank); else why not, or None
        when there is no file."""
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as handle:
                meta = json.loads((handle.metadata() or {})[_META_KEY])
            tensors = load_file(str(self.path))
        except (SafetensorError, OSError, ValueError, KeyError) as error:
            return read_failure(error)  # never trusted: the loop starts over
        if meta.get("identity") != self.identity:
            return identity_differences(meta.get("identity"), self.identity)
        shared, own = self._live()
        targets = {**shared, **{_own_key(key): value for key, value in own.items()}}
        for key, target in targets.items():
            if key not in tensors or tensors[key].shape != target.shape:
                if key in tensors:
                    return f"holds {key} of shape {tuple(tensors[key].shape)}, the loop's is {tuple(target.shape)}"
                return f"lacks {key}"
        return tensors, meta

    def restore(self) -> tuple[int, list[float], dict[str, Any]]:
        """Load the saved state into the live objects; returns (epochs done, curve, extra), (0, [], {}) when none fits.
        Under torchrun every rank calls it, and all of them continue from the file or none does."""
        found = self._usable()
        states = gather_objects(found if isinstance(found, str) else "" if found is None else None)  # None: usable
        if any(state is not None for state in states) or not isinstance(found, tuple):
            reasons = [state for state in states if state] or (["is not there for every process"] if None in states else [])
            if reasons and is_main():
                warn_not_reused(self.path, reasons[0], _REDONE)
            return 0, [], {}
        tensors, meta = found
        shared, own = self._live()
        with torch.no_grad():
            for key, target in shared.items():
                target.copy_(tensors[key])
            for key, target in own.items():
                target.copy_(tensors[_own_key(key)])
        if self.optimizer is not None and meta.get("optimizer") is not None:
            self.optimizer.load_state_dict(_join_optimizer(tensors, meta["optimizer"]))
        if self.scheduler is not None and meta.get("scheduler") is not None:
            self.scheduler.load_state_dict(meta["scheduler"])
        for name, gen in self.generators.items():
            gen.set_state(tensors[_own_key(f"g.{name}")])
        torch.set_rng_state(tensors[_own_key("rng.cpu")])
        cuda_states = [tensors[key] for i in range(torch.cuda.device_count()) if (key := _own_key(f"rng.cuda.{i}")) in tensors]
        if cuda_states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_states)
        epochs = int(meta["epochs_done"])
        if self.scope is not None and is_main():
            self.scope.count("epochs_reused", epochs)
        return epochs, list(meta.get("curve", [])), dict(meta.get("extra", {}))

    def _due(self, started: float) -> bool:
        """Whether to save now: not when the last save was so recent that saving would exceed ``SAVE_SHARE``."""
        recent = self._last_save_end is not None and (started - self._last_save_end) * SAVE_SHARE < self._last_save_seconds
        return not (SAVE_SHARE and recent)

    def epoch_done(self, epochs_done: int, curve: list[float] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        """Count the finished epoch and save the state after it (unless that would exceed ``SAVE_SHARE``;
        rank 0 decides for every rank)."""
        if self.scope is not None and is_main():
            self.scope.count("epochs_trained")
        started = time.monotonic()
        if not on_main(self._due, started):
            return
        self.save(epochs_done, curve, extra)
        self._last_save_end = time.monotonic()
        self._last_save_seconds = self._last_save_end - started


class NoCheckpoint:
    """Stands in for ``EpochCheckpoint`` when no progress is kept: restores nothing, saves nothing."""

    def restore(self) -> tuple[int, list[float], dict[str, Any]]:
        return 0, [], {}

    def epoch_done(self, epochs_done: int, curve: list[float] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        pass

    def save(self, epochs_done: int, curve: list[float] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        pass


def epoch_checkpoint(key: str | tuple, **state: Any) -> EpochCheckpoint | NoCheckpoint:
    """The checkpoint of the loop named ``key`` in the current progress scope, or a no-op outside one.

    ``state``: ``identity`` (what must match, e.g. epochs and steps per epoch), ``modules``,
    ``optimizer``, ``scheduler``, ``generators``, ``tensors`` (updated in place on restore)."""
    scope = current_scope()
    if scope is None:
        return NoCheckpoint()
    name = safe_key(*key) if isinstance(key, tuple) else safe_key(key)
    return EpochCheckpoint(scope.path(f"train-{name}.safetensors"), **state)
