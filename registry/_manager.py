"""The plugin manager: loads every ``scdd`` entry point (built-ins included) and builds the registry.

Environment variables restrict what loads: ``SCDD_PLUGINS=a,b`` loads only those entry points,
``SCDD_DISABLE_PLUGINS=a,b`` skips those.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from dataclasses import dataclass
from typing import Any

import pluggy

import scdd.registry.hookspecs as hookspecs
from scdd.registry._registry import KINDS, Registry

ENTRY_POINT_GROUP = "scdd"
ONLY_ENV = "SCDD_PLUGINS"
DISABLE_ENV = "SCDD_DISABLE_PLUGINS"

_HOOK_FOR_KIND = {kind: f"register_{kind}s" for kind in KINDS}


@dataclass(frozen=True)
class PluginInfo:
    """A plugin as ``scdd plugins`` shows it; ``error`` is set when it failed to import."""

    name: str
    package: str | None
    version: str | None
    error: str | None = None


class PluginState:
    """The loaded plugin manager, what it loaded, and the registry built from it."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None
        self._load_entry_points()
        self.manager.check_pending()

    def _load_entry_points(self) -> None:
        only = _name_set(os.environ.get(ONLY_ENV))
        disabled = _name_set(os.environ.get(DISABLE_ENV))
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in disabled or (only and entry_point.name not in only):
                continue
            dist = entry_point.dist
            package = dist.metadata["Name"] if dist else None
            version = dist.version if dist else None
            try:
                module = entry_point.load()
            except Exception as error:  # a broken plugin is named and skipped
                message = f"{type(error).__name__}: {error}"
                warnings.warn(f"scdd plugin {entry_point.name!r} failed to load: {message}", stacklevel=2)
                self.plugins[entry_point.name] = PluginInfo(entry_point.name, package, version, message)
                continue
            if self.manager.is_registered(module) or self.manager.has_plugin(entry_point.name):
                continue
            self.manager.register(module, name=entry_point.name)
            self.plugins[entry_point.name] = PluginInfo(entry_point.name, package, version)

    def register(self, plugin: Any, name: str) -> None:
        """Register an in-process plugin object (tests, notebooks)."""
        self.manager.register(plugin, name=name)
        self.manager.check_pending()
        self.plugins[name] = PluginInfo(name, None, None)
        self._registry = None

    def unregister(self, name: str) -> None:
        self.manager.unregister(name=name)
        self.plugins.pop(name, None)
        self._registry = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            registry = Registry()
            for kind, hook_name in _HOOK_FOR_KIND.items():
                for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                    impl.function(register=registry.register_function(kind, impl.plugin_name))
            self._registry = registry
        return self._registry


def _name_set(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


_state: PluginState | None = None


def plugin_state() -> PluginState:
    """The process-wide plugin state, loaded on first use."""
    global _state
    if _state is None:
        _state = PluginState()
    return _state


def reset_plugins() -> None:
    """Forget loaded plugins, so the next use reloads entry points (and re-reads the environment)."""
    global _state
    _state = None
