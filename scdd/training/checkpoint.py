"""Per-epoch training checkpoints: everything a training loop needs to continue bit for bit.

One safetensors file per loop holds the tensors (every parameter and buffer of the loop's modules,
non-persistent buffers such as a memory bank included; the optimiser's tensor state; the states of
the loop's random generators and of torch's global generators) and, as JSON metadata, the rest:
epochs done, the loss curve so far, the optimiser's param groups and scalar state, the scheduler's
state, and an identity (epochs, steps per epoch, ...) that must match for the file to be used. No
pickle is read or written. The file is replaced atomically after every epoch, so a killed run
continues from its last saved epoch with the same numbers as an uninterrupted one.

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
from scdd.resume.scope import current_scope, identity_differences, read_failure, safe_key, warn_not_reused

_META_KEY = "scdd.progress"
_REDONE = "this training loop starts again from its first epoch"
SAVE_SHARE = 0.1  # most of a loop's time spent saving checkpoints; 0 saves after every epoch


def _module_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer (persistent or not) by name."""
    found: dict[str, torch.Tensor] = dict(module.named_parameters())
    found.update(dict(module.named_buffers()))
    return found


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
        self.identity = json.loads(json.dumps(dict(identity)))
        self.modules = dict(modules or {})
        self.optimizer, self.scheduler = optimizer, scheduler
        self.generators = dict(generators or {})
        self.tensors = dict(tensors or {})
        self.scope = current_scope()
        self._last_save_end: float | None = None
        self._last_save_seconds = 0.0

    # ------------------------------------------------------------------ saving

    def save(self, epochs_done: int, curve: list[float] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        """Write the state after ``epochs_done`` finished epochs (atomically)."""
        tensors: dict[str, torch.Tensor] = {}
        for name, module in self.modules.items():
            tensors.update({f"m.{name}.{key}": value for key, value in _module_tensors(module).items()})
        optimizer_meta = None
        if self.optimizer is not None:
            optimizer_tensors, optimizer_meta = _split_optimizer(self.optimizer.state_dict())
            tensors.update(optimizer_tensors)
        tensors.update({f"g.{name}": gen.get_state() for name, gen in self.generators.items()})
        tensors.update({f"t.{name}": value for name, value in self.tensors.items()})
        tensors["rng.cpu"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            tensors.update({f"rng.cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
        meta = {
            "identity": self.identity,
            "epochs_done": epochs_done,
            "curve": list(curve or []),
            "optimizer": optimizer_meta,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "extra": dict(extra or {}),
        }
        # clones on the CPU: safetensors refuses tensors that share memory (tied weights)
        flat = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in tensors.items()}
        with atomic_path(self.path) as tmp:
            save_file(flat, str(tmp), metadata={_META_KEY: json.dumps(meta)})

    # ------------------------------------------------------------------ restoring

    def _read(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as handle:
                meta = json.loads((handle.metadata() or {})[_META_KEY])
            return load_file(str(self.path)), meta
        except (SafetensorError, OSError, ValueError, KeyError) as error:
            warn_not_reused(self.path, read_failure(error), _REDONE)  # never trusted: the loop starts over
            return None

    def restore(self) -> tuple[int, list[float], dict[str, Any]]:
        """Load the saved state into the live objects; returns (epochs done, curve, extra), (0, [], {}) when none fits."""
        read = self._read()
        if read is None:
            return 0, [], {}
        tensors, meta = read
        if meta.get("identity") != self.identity:
            warn_not_reused(self.path, identity_differences(meta.get("identity"), self.identity), _REDONE)
            return 0, [], {}
        targets = {f"m.{name}.{key}": value for name, module in self.modules.items() for key, value in _module_tensors(module).items()}
        targets.update({f"t.{name}": value for name, value in self.tensors.items()})
        for key, target in targets.items():
            if key not in tensors or tensors[key].shape != target.shape:
                found = (
                    f"holds {key} of shape {tuple(tensors[key].shape)}, the loop's is {tuple(target.shape)}"
                    if key in tensors
                    else f"lacks {key}"
                )
                warn_not_reused(self.path, found, _REDONE)
                return 0, [], {}
        with torch.no_grad():
            for key, target in targets.items():
                target.copy_(tensors[key])
        if self.optimizer is not None and meta.get("optimizer") is not None:
            self.optimizer.load_state_dict(_join_optimizer(tensors, meta["optimizer"]))
        if self.scheduler is not None and meta.get("scheduler") is not None:
            self.scheduler.load_state_dict(meta["scheduler"])
        for name, gen in self.generators.items():
            gen.set_state(tensors[f"g.{name}"])
        torch.set_rng_state(tensors["rng.cpu"])
        cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
        if cuda_states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_states)
        epochs = int(meta["epochs_done"])
        if self.scope is not None:
            self.scope.count("epochs_reused", epochs)
        return epochs, list(meta.get("curve", [])), dict(meta.get("extra", {}))

    def epoch_done(self, epochs_done: int, curve: list[float] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        """Count the finished epoch and save the state after it (unless that would exceed ``SAVE_SHARE``)."""
        if self.scope is not None:
            self.scope.count("epochs_trained")
        started = time.monotonic()
        if SAVE_SHARE and self._last_save_end is not None and (started - self._last_save_end) * SAVE_SHARE < self._last_save_seconds:
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
