import importlib.metadata
from pathlib import Path

import pytest
import tomllib

from scdd.errors import DuplicateComponentError, UnknownComponentError
from scdd.registry import (
    get_component,
    get_registry,
    hookimpl,
    normalize_name,
    plugin_state,
    reset_plugins,
)
from scdd.registry._registry import Component, Registry

ROOT = Path(__file__).resolve().parents[1]


def test_names_are_normalised():
    assert normalize_name("moco_v3") == normalize_name("MoCo-v3") == normalize_name("moco-v3") == "moco-v3"
    assert get_component("pretrainer", "MoCo_V3").name == "moco-v3"
    assert get_component("matcher", "imbalanced_bn").name == "imbalanced-bn"


def test_unknown_name_lists_components_and_suggests_closest():
    with pytest.raises(UnknownComponentError) as error:
        get_component("pretrainer", "moco_v4")
    message = str(error.value)
    assert "Did you mean 'moco-v3'?" in message
    listed = message.split("Registered pretrainers: ")[1].split(", ")
    assert "moco-v3" in listed and "supervised" in listed


def test_duplicate_names_name_both_plugins():
    registry = Registry()
    registry.register_function("matcher", "first-plugin")("dup", "x:y")
    with pytest.raises(DuplicateComponentError, match="first-plugin.*second-plugin"):
        registry.register_function("matcher", "second-plugin")("DUP", "x:y")


def test_builtins_come_from_entry_points():
    state = plugin_state()
    assert {"pretrainers", "architectures", "datasets", "aligners", "matchers", "prune"} <= set(state.plugins)
    assert all(info.package == "scdd" for info in state.plugins.values() if info.name in {"pretrainers", "architectures"})
    assert get_component("pretrainer", "moco-v3").plugin == "pretrainers"


def test_in_process_plugin_registers_and_unregisters(register_plugin):
    class FakeMatcherPlugin:
        @hookimpl
        def register_matchers(self, register):
            register("zero-match", "scdd.matchers.bn:build", description="test")

    register_plugin(FakeMatcherPlugin(), "fake-matchers")
    component = get_component("matcher", "zero_match")
    assert isinstance(component, Component) and component.plugin == "fake-matchers"
    plugin_state().unregister("fake-matchers")
    assert "zero-match" not in get_registry().names("matcher")


def test_component_options_are_validated():
    component = get_component("matcher", "imbalanced-bn")
    assert component.defaults()["first_bn_multiplier"] == 10.0
    assert component.make_config({"first_bn_multiplier": "5"}).first_bn_multiplier == 5.0
    with pytest.raises(Exception, match="has no option 'first_multiplier'"):
        component.make_config({"first_multiplier": 5})


def test_broken_plugin_is_named_and_skipped(monkeypatch):
    real = importlib.metadata.entry_points

    def with_broken(group):
        found = list(real(group=group))
        broken = importlib.metadata.EntryPoint("broken", "scdd_no_such_module_xyz", "scdd")
        return [*found, broken]

    monkeypatch.setattr(importlib.metadata, "entry_points", with_broken)
    reset_plugins()
    with pytest.warns(UserWarning, match="'broken' failed to load"):
        state = plugin_state()
    assert state.plugins["broken"].error and "ModuleNotFoundError" in state.plugins["broken"].error
    assert get_component("pretrainer", "moco-v3")  # the others keep working


def test_plugins_can_be_restricted_by_environment(monkeypatch):
    monkeypatch.setenv("SCDD_DISABLE_PLUGINS", "pretrainers")
    reset_plugins()
    assert "moco-v3" not in get_registry().names("pretrainer")
    assert get_registry().names("matcher") == ["bn", "class-aware-bn", "imbalanced-bn"]


def test_package_list_covers_every_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(config["tool"]["setuptools"]["packages"])
    mapping = config["tool"]["setuptools"]["package-dir"]
    expected = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            if package == "scdd.plugins" and relative.parts[:1] == ("examples",):
                continue  # example plugin packages are distributions of their own
            expected.add(".".join([package, *relative.parts]))
    assert expected <= packages, f"pyproject packages miss {sorted(expected - packages)}"
