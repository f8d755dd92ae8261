"""The scdd hook specifications: the only way components reach the registry.

Every ``register_*`` hook receives ``register(name, factory, *, config=None,
aliases=(), description="")``. Built-in components use exactly these hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("scdd")
hookimpl = pluggy.HookimplMarker("scdd")

Register = Callable[..., None]


@hookspec
def register_pretrainers(register: Register) -> None:
    """Register squeeze objectives; factory(config) returns an object with ``pretrain(backbone, data, *, device, seed, progress)``."""


@hookspec
def register_aligners(register: Register) -> None:
    """Register alignment strategies; factory(config) returns an object with ``align(classifier, data, *, device, seed, progress)``."""


@hookspec
def register_matchers(register: Register) -> None:
    """Register statistic matchers; factory(config) returns an object with ``attach(model)``, ``loss()`` and ``detach()``."""


@hookspec
def register_architectures(register: Register) -> None:
    """Register backbones; factory(config, *, in_chans, image_size) returns a module mapping images to pooled features."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets; factory(config, *, data_root) returns ``scdd.data.DatasetSplits``."""


@hookspec
def register_initializers(register: Register) -> None:
    """Register recovery's starting images; factory(config) returns an object with ``reads_data``, ``prepare(context)`` and ``start(members)`` (``scdd.recovery.initializers``)."""


@hookspec
def register_crop_schedules(register: Register) -> None:
    """Register recovery crop-scale schedules; factory(config) returns an object with ``scale(step, total, base)`` (``scdd.recovery.schedules``)."""


@hookspec
def register_regularizers(register: Register) -> None:
    """Register extra recovery terms; factory(config) returns an object with ``begin(latent)``, ``loss(step)`` and ``after_step(latent)`` (``scdd.recovery.regularizers``)."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands to the ``scdd`` command group."""
