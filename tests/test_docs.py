"""docs/plugins.md documents every hook specification, with its exact signature."""

import ast
from pathlib import Path

from scdd.registry import DISABLE_ENV, ENTRY_POINT_GROUP, KINDS, ONLY_ENV

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "plugins.md").read_text()


def _hookspecs() -> dict[str, list[str]]:
    """Hook name → argument names, read from the source of registry/hookspecs.py."""
    tree = ast.parse((ROOT / "registry" / "hookspecs.py").read_text())
    return {
        node.name: [arg.arg for arg in node.args.args]
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any(ast.unparse(d) == "hookspec" for d in node.decorator_list)
    }


def test_every_hook_has_a_section_with_its_signature():
    hooks = _hookspecs()
    assert len(hooks) == len(KINDS) + 1  # one per component kind, plus register_commands
    for name, args in hooks.items():
        heading = f"### `{name}({', '.join(args)})`"
        assert heading in DOC, f"docs/plugins.md lacks a section {heading}"
        section = DOC.split(heading, 1)[1].split("\n### ", 1)[0]
        assert "@hookimpl" in section and f"def {name}(" in section, f"{name}: the section has no example"
        for arg in args:
            assert f"`{arg}`" in section, f"{name}: argument {arg!r} is not described"


def test_entry_point_group_and_environment_variables_are_documented():
    assert f"[project.entry-points.{ENTRY_POINT_GROUP}]" in DOC
    assert f"`{ONLY_ENV}=" in DOC and f"`{DISABLE_ENV}=" in DOC
    assert "moco_v3" in DOC and "MoCo-v3" in DOC  # name normalisation
