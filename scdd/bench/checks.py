"""Checks of a suite's settings against the registry, run by ``scdd.bench.plan.plan_suite`` before any work:
a misspelt component option fails with one line naming it instead of vanishing or failing mid-bench."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scdd.config import RunConfig
from scdd.errors import ConfigError
from scdd.registry import get_component, get_registry
from scdd.stages.relabel import ALIGNED_TEACHER

_OPTION_KINDS = {
    ("squeeze", "pretrainer_options"): "pretrainer",
    ("squeeze", "architecture_options"): "architecture",
    ("align", "aligner_options"): "aligner",
    ("recover", "matcher_options"): "matcher",
}


def check_budget_options(budget: Mapping[str, Any]) -> None:
    """A suite budget's shared component options are cut to each row's components, so a misspelt option would
    vanish silently: every option must be one that some registered component of its kind accepts."""
    registry = get_registry()
    for (stage, key), kind in _OPTION_KINDS.items():
        given = set((budget.get(stage) or {}).get(key) or {})
        if not given:
            continue
        accepted = set()
        for name in registry.names(kind):
            accepted |= set(registry.get(kind, name).defaults())
        unknown = sorted(given - accepted)
        if unknown:
            raise ConfigError(f"the budget's {stage}.{key} has no option {unknown[0]!r} for any registered {kind}")


def check_options(config: RunConfig) -> None:
    """Validate every component's options now (they are otherwise checked only when the stage runs)."""
    get_component("pretrainer", config.squeeze.pretrainer).make_config(config.squeeze.pretrainer_options)
    get_component("architecture", config.squeeze.architecture).make_config(config.squeeze.architecture_options)
    get_component("aligner", config.align.aligner).make_config(config.align.aligner_options)
    get_component("matcher", config.recover.matcher).make_config(config.recover.matcher_options)
    for student in config.posttrain.students:
        get_component("architecture", student).make_config(config.posttrain.options_for(student))


def check_teacher_settings(settings: Mapping[str, Any]) -> None:
    """A bench trains its teachers and names them in the suite, so settings that name teacher files are refused."""
    if (settings.get("relabel") or {}).get("teacher", ALIGNED_TEACHER) != ALIGNED_TEACHER:
        raise ConfigError("relabel.teacher has no place in a bench: one labelling teacher (the suite's 'labels') labels every row")
    if any((settings.get(stage) or {}).get("extra_teachers") for stage in ("recover", "relabel")):
        raise ConfigError(
            "recover/relabel.extra_teachers take files, which have no place in a bench: "
            "name suite teachers in a row's extra_teachers or the suite's label_ensemble"
        )
