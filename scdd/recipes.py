"""Recipe files: a run's settings kept in a file (``scdd run --config FILE``).

A recipe holds any setting ``--set`` takes, nested as ``RunConfig`` is: top-level settings
(``dataset``, ``seed``, ...) and one table per stage (``[squeeze]``, ``[squeeze.pretrainer_options]``,
...). It is TOML, or JSON; a run's ``manifest.json`` is a recipe too (its resolved ``config``), so
``scdd run --config RUN/manifest.json`` runs a finished run's settings again. On the command line,
options and ``--set`` win over the file, and the file wins over presets and defaults.

``scdd presets export NAME`` writes a preset as a recipe with each value's source as a comment.
``recipe_config`` resolves ``scdd run --config``: the paper's defaults, the preset (``--preset``, else
the one the recipe names, else the dataset's own), the recipe, then the command line. A manifest is a
complete, resolved config: it is applied on the paper's defaults alone (``run_folder.manifest_config``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scdd.config import RunConfig, make_run_config
from scdd.errors import ConfigError
from scdd.presets import BUILT_IN_MARK, USER_FILE_MARK, get_preset, preset_rows
from scdd.run_folder import manifest_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the `tomli` backport (a dependency there)
    import tomli as tomllib

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def is_manifest(path: str | Path) -> bool:
    """Whether ``path`` is a run folder's ``manifest.json`` (a complete, resolved config)."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        return "scdd_manifest" in json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (json.JSONDecodeError, TypeError):
        return False


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The nested settings of a recipe file (TOML or JSON; a manifest goes through ``recipe_config``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"--config {path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    else:
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"--config {path}: not valid TOML ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path}: expected a table of settings, found {type(values).__name__}")
    return {key: value for key, value in values.items() if value is not None}


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Nested settings ``base`` with ``top`` laid over them, table by table."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# ----------------------------------------------------------------------------- writing TOML


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item, where) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(str(k))} = {_value(v, where)}" for k, v in value.items()) + "}"
    raise ConfigError(f"{where}: {type(value).__name__} values cannot be written to a recipe")


def to_toml(values: Mapping[str, Any], comments: Mapping[str, str] | None = None, header: str = "") -> str:
    """Nested settings as TOML: plain values first, then one table per nested dict. ``comments`` maps a
    dotted setting (``recover.iterations``) to a comment written after its value; a setting whose value
    is ``None`` (no TOML equivalent) becomes a comment line."""
    comments = comments or {}
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]

    def table(node: Mapping[str, Any], prefix: str) -> None:
        plain = {k: v for k, v in node.items() if not (isinstance(v, Mapping) and v)}
        nested = {k: v for k, v in node.items() if isinstance(v, Mapping) and v}
        if prefix and (plain or not nested):
            lines.extend(["", f"[{'.'.join(_key(part) for part in prefix.split('.'))}]"])
        for key, value in plain.items():
            dotted = f"{prefix}.{key}" if prefix else key
            note = f"  # {comments[dotted]}" if dotted in comments else ""
            if value is None:
                lines.append(f"# {_key(key)} is not set{note.replace('  #', ':', 1)}")
            else:
                lines.append(f"{_key(key)} = {_value(value, dotted)}{note}")
        for key, value in nested.items():
            table(value, f"{prefix}.{key}" if prefix else key)

    table(values, "")
    return "\n".join(lines).lstrip("\n") + "\n"


# ----------------------------------------------------------------------------- presets as recipes

PRESET_KEY = "preset"  # a recipe may name the preset it starts from


def recipe_config(path: str | Path, preset: str | None, overrides: Mapping[str, Any]) -> RunConfig:
    """``scdd run --config PATH``: the command line's ``overrides`` over the recipe over the preset."""
    if is_manifest(path):
        if preset is not None:
            raise ConfigError(f"--config {path} repeats that run's settings; leave out --preset")
        return manifest_config(Path(path), overrides, f"--config {path}")
    return make_run_config(*recipe_settings(path, preset, overrides))


def recipe_settings(path: str | Path, preset: str | None, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A recipe's settings with the command line's ``overrides`` laid over them, and the preset beneath them
    (``--preset`` wins over the one the recipe names)."""
    given = read_recipe(path)
    named = given.pop(PRESET_KEY, None)
    return merge(given, overrides), preset or named


def preset_recipe(name: str) -> str:
    """Preset ``name`` as a recipe: ``preset = NAME`` and every value it sets for its own pretrainer, each with
    its source as a comment; values for other pretrainers, built-in values and files the user gives are comments."""
    preset = get_preset(name)
    config = make_run_config({"dataset": preset.get("dataset", name)} if "dataset" in preset else {}, name)
    resolved = dataclasses.asdict(config)
    rows = preset_rows(name)
    pretrainer = config.squeeze.pretrainer
    values: dict[str, Any] = {PRESET_KEY: name}
    comments: dict[str, str] = {PRESET_KEY: "the preset this file writes out; the values below are its values"}
    others: list[str] = []
    for setting, value, source, note in rows:
        tagged = setting.startswith("[")
        by_name = ".pretrainer_options_by_name." in setting
        if note.startswith((BUILT_IN_MARK, USER_FILE_MARK)):
            others.append(f"{setting} = {_value(value, setting)}  ({source}; {note})")
        elif tagged or by_name:
            owner, _, rest = setting[1:].partition("] ") if tagged else (setting.split(".")[2], "", ".".join(setting.split(".")[3:]))
            target = rest if tagged else f"squeeze.pretrainer_options.{rest}"
            if owner == pretrainer:
                _put(values, target, _at(resolved, target))
                comments[target] = f"{source} (with {owner})"
            else:
                others.append(f"with --pretrainer {owner}: {target} = {_value(value, setting)}  ({source})")
        else:
            _put(values, setting, _at(resolved, setting))
            comments[setting] = source + (f": {note}" if note else "")
    header = (
        f"scdd preset {name!r} as a recipe file: scdd run --config FILE\n"
        "Command-line options and --set win over this file; the file wins over the preset it names.\n"
        "Each value's comment names its source (paper table or section, or scdd's own budget)."
    )
    text = to_toml(values, comments, header=header)
    if others:
        text += "\n# Not applied by this file:\n" + "".join(f"# {line}\n" for line in others)
    return text


def _put(values: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _at(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node
