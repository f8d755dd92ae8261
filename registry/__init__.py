"""scdd's plugin system: hook specifications, the plugin manager and the component registry."""

from scdd.registry._manager import (
    DISABLE_ENV,
    ENTRY_POINT_GROUP,
    ONLY_ENV,
    PluginInfo,
    PluginState,
    plugin_state,
    reset_plugins,
)
from scdd.registry._registry import KINDS, Component, Registry, normalize_name
from scdd.registry.hookspecs import hookimpl, hookspec


def get_registry() -> Registry:
    """The registry of every component the loaded plugins registered."""
    return plugin_state().registry


def get_component(kind: str, name: str) -> Component:
    """Look up one component; unknown names raise ``UnknownComponentError`` with a suggestion."""
    return get_registry().get(kind, name)


__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "ONLY_ENV",
    "Component",
    "PluginInfo",
    "PluginState",
    "Registry",
    "get_component",
    "get_registry",
    "hookimpl",
    "hookspec",
    "normalize_name",
    "plugin_state",
    "reset_plugins",
]
