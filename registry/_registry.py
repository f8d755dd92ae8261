"""Component registry: metadata about every registered component, keyed by kind and name.

Each kind's callable contract is written in ``registry.hookspecs``. Names are
normalised so ``moco_v3``, ``moco-v3`` and ``MoCo-v3`` are one name.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from scdd._options import build_dataclass
from scdd.errors import ConfigError, DuplicateComponentError, UnknownComponentError

KINDS = ("pretrainer", "aligner", "matcher", "architecture", "dataset", "initializer", "crop_schedule", "regularizer")


def normalize_name(name: str) -> str:
    """Canonical form of a component name: lower case, words joined by '-'."""
    return re.sub(r"[\s_\-]+", "-", str(name).strip().lower()).strip("-")


def _resolve(target: Callable | type | str) -> Any:
    """Import ``"package.module:attribute"`` lazily; pass callables through."""
    if not isinstance(target, str):
        return target
    module_name, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Component:
    """One registered component. ``factory`` and ``config`` may be ``"module:attr"`` strings so that
    listing components never imports torch."""

    kind: str
    name: str
    factory: Callable[..., Any] | str
    config: type | str | None
    aliases: tuple[str, ...]
    description: str
    plugin: str

    def config_class(self) -> type | None:
        return _resolve(self.config) if self.config is not None else None

    def defaults(self) -> dict[str, Any]:
        """The default options: the paper's values where the paper gives one."""
        cls = self.config_class()
        return dataclasses.asdict(cls()) if cls is not None else {}

    def make_config(self, options: Mapping[str, Any] | None = None) -> Any:
        """Validate user options against the config dataclass and build it."""
        cls = self.config_class()
        options = dict(options or {})
        if cls is None:
            return options
        return build_dataclass(cls, options, owner=f"{self.kind} {self.name!r}")

    def build(self, options: Mapping[str, Any] | Any | None = None, **context: Any) -> Any:
        """Instantiate: ``factory(config, **context)``; options may already be a config instance."""
        cls = self.config_class()
        config = options if cls is not None and isinstance(options, cls) else self.make_config(options)
        return _resolve(self.factory)(config, **context)


class Registry:
    """Components by kind. Duplicate names are an error naming both plugins."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self._aliases: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}

    def add(self, component: Component) -> None:
        if component.kind not in self._components:
            raise ConfigError(f"plugin {component.plugin!r} registered unknown kind {component.kind!r}")
        names = self._aliases[component.kind]
        for key in (component.name, *component.aliases):
            if key in names:
                other = self._components[component.kind][names[key]]
                raise DuplicateComponentError(
                    f"{component.kind} {key!r} is registered by both plugin {other.plugin!r} and plugin {component.plugin!r}"
                )
        self._components[component.kind][component.name] = component
        for key in (component.name, *component.aliases):
            names[key] = component.name

    def register_function(self, kind: str, plugin: str) -> Callable[..., None]:
        """The ``register`` callable handed to a plugin's hook implementation."""

        def register(
            name: str,
            factory: Callable[..., Any] | str,
            *,
            config: type | str | None = None,
            aliases: tuple[str, ...] | list[str] = (),
            description: str = "",
        ) -> None:
            self.add(
                Component(
                    kind=kind,
                    name=normalize_name(name),
                    factory=factory,
                    config=config,
                    aliases=tuple(normalize_name(a) for a in aliases),
                    description=description,
                    plugin=plugin,
                )
            )

        return register

    def get(self, kind: str, name: str) -> Component:
        """The component called ``name``; unknown names list what exists and the closest match."""
        key = normalize_name(name)
        canonical = self._aliases.get(kind, {}).get(key)
        if canonical is None:
            available = self.names(kind)
            close = difflib.get_close_matches(key, list(self._aliases.get(kind, {})), n=1, cutoff=0.5)
            suggestion = self._aliases[kind][close[0]] if close else None
            raise UnknownComponentError(kind, name, available, suggestion)
        return self._components[kind][canonical]

    def names(self, kind: str) -> list[str]:
        return sorted(self._components.get(kind, {}))

    def __iter__(self) -> Iterator[Component]:
        for kind in KINDS:
            for name in self.names(kind):
                yield self._components[kind][name]
