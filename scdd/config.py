"""The whole-pipeline configuration: one dataclass per stage, defaults from the paper.

``make_run_config`` resolves it: the paper's defaults, then a preset (``scdd.presets``), then
command-line ``--set stage.field=value`` overrides, each applied with ``apply_overrides``;
``check_components`` names an unregistered component before any work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scdd._options import build_dataclass
from scdd.data.carve import EVAL_SPLITS
from scdd.errors import ConfigError, UnknownComponentError
from scdd.presets import get_preset, preset_for_dataset, pretrainer_values
from scdd.registry import get_component, normalize_name
from scdd.report.config import ReportConfig
from scdd.stages.align import AlignConfig
from scdd.stages.coreset import CORESET_METHODS
from scdd.stages.posttrain import PosttrainConfig
from scdd.stages.recover import RecoverConfig
from scdd.stages.relabel import RelabelConfig
from scdd.stages.squeeze import SqueezeConfig, check_checkpoint

METHODS = ("sc-dd", *(f"coreset-{name}" for name in CORESET_METHODS))
_OPTION_SLOTS = (
    ("squeeze", "pretrainer", "pretrainer_options", "pretrainer"),
    ("squeeze", "architecture", "architecture_options", "architecture"),
    ("align", "aligner", "aligner_options", "aligner"),
    ("recover", "matcher", "matcher_options", "matcher"),
    ("recover", "initializer", "initializer_options", "initializer"),
    ("recover", "crop_schedule", "crop_schedule_options", "crop_schedule"),
    ("recover", "regularizer", "regularizer_options", "regularizer"),
)


@dataclass
class RunConfig:
    dataset: str = "mnist5k"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    seed: int = 0
    device: str = "auto"
    strict: bool = False  # an image file that cannot be decoded is an error (else it is skipped and counted)
    method: str = "sc-dd"  # "sc-dd" (recover synthetic images) or a real-image coreset: "coreset-random", "coreset-herding"
    # "validation": train on the training images minus a stratified carve and report accuracies on the carve
    # (scdd.data.carve), for choosing budgets; "held-out": train on all training images, report on the held-out split
    eval_split: str = "held-out"
    validation_fraction: float = 0.2
    squeeze: SqueezeConfig = field(default_factory=SqueezeConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    recover: RecoverConfig = field(default_factory=RecoverConfig)
    relabel: RelabelConfig = field(default_factory=RelabelConfig)
    posttrain: PosttrainConfig = field(default_factory=PosttrainConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self) -> None:
        if self.eval_split not in EVAL_SPLITS:
            raise ConfigError(f"eval_split must be one of {', '.join(EVAL_SPLITS)}, got {self.eval_split!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be between 0 and 1, got {self.validation_fraction}")

    def resolved(self) -> RunConfig:
        """Tie the values that must agree: relabel labels every post-training epoch with the same crops
        (and, mixing per batch, in post-training's batches)."""
        relabel = dataclasses.replace(
            self.relabel, epochs=self.posttrain.epochs, temperature=self.posttrain.temperature, mix_batch=self.posttrain.batch_size
        )
        crop_keys = ("crop_min_scale", "crop", "crop_padding", "randaugment_ops", "randaugment_magnitude")
        crops = {key: getattr(self.relabel, key) for key in crop_keys}
        posttrain = dataclasses.replace(self.posttrain, **crops)
        return dataclasses.replace(self, relabel=relabel, posttrain=posttrain)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def apply_overrides(config: Any, overrides: Mapping[str, Any], *, strict: bool = True, owner: str = "config") -> Any:
    """A copy of dataclass ``config`` with nested ``overrides`` merged in.

    Nested dataclasses merge recursively; ``*_options`` dicts merge key by key. With ``strict``,
    an unknown field is an error naming the valid ones.
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            if strict:
                raise ConfigError(f"{owner} has no setting {key!r}; settings: {', '.join(fields)}")
            continue
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = apply_overrides(current, value, strict=strict, owner=f"{owner}.{key}")
        elif isinstance(current, dict) and isinstance(value, Mapping):
            changes[key] = {**current, **value}
        else:
            changes[key] = value
    merged = {f: getattr(config, f) for f in fields}
    merged.update(changes)
    plain = {k: v for k, v in merged.items() if not dataclasses.is_dataclass(v)}
    rebuilt = build_dataclass(type(config), plain, owner=owner)
    for key, value in merged.items():
        if dataclasses.is_dataclass(value):
            setattr(rebuilt, key, value)
    return rebuilt


def make_run_config(
    overrides: Mapping[str, Any] | None = None, preset: str | None = None, *, preset_values: Mapping[str, Any] | None = None
) -> RunConfig:
    """Paper defaults, then the preset (the dataset's own when ``preset`` is None) with its values for
    the chosen pretrainer (Table 13), then ``overrides``. ``preset_values`` (settings sized to the data,
    ``scdd.sizing``) take the place of a named preset."""
    overrides = dict(overrides or {})
    dataset = overrides.get("dataset", RunConfig.dataset)
    name = None if preset_values is not None else preset or preset_for_dataset(dataset)
    config = RunConfig()
    values = get_preset(name) if name is not None else preset_values
    if values is not None:
        chosen = apply_overrides(apply_overrides(config, _component_names(values)), _component_names(overrides))
        config = apply_overrides(config, filter_component_options(values, chosen))
        if name is not None:
            config = apply_overrides(config, pretrainer_values(name, chosen.squeeze.pretrainer))
    return apply_overrides(config, overrides).resolved()


def _component_names(values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the component choices (pretrainer, architecture, aligner, matcher) of nested ``values``."""
    names: dict[str, Any] = {}
    for stage, name_key, _, _ in _OPTION_SLOTS:
        stage_values = values.get(stage)
        if isinstance(stage_values, Mapping) and name_key in stage_values:
            names.setdefault(stage, {})[name_key] = stage_values[name_key]
    return names


def filter_component_options(preset: Mapping[str, Any], chosen: RunConfig) -> dict[str, Any]:
    """The preset (or any shared budget) with each component-options dict cut to the options of the finally
    chosen component.

    ``<options_key>_by_name`` (e.g. ``pretrainer_options_by_name: {"swav": {...}}``, keyed by canonical
    component name) holds options that apply only when that component is chosen, over the shared ones.
    """
    filtered = {stage: dict(values) if isinstance(values, Mapping) else values for stage, values in preset.items()}
    for stage, name_key, options_key, kind in _OPTION_SLOTS:
        stage_values = filtered.get(stage)
        if not isinstance(stage_values, dict):
            continue
        by_name = stage_values.pop(f"{options_key}_by_name", {})
        try:
            component = get_component(kind, getattr(getattr(chosen, stage), name_key))
        except UnknownComponentError:
            continue  # left as given; check_components names the unknown component before any work
        specific = dict(next((v for name, v in by_name.items() if normalize_name(name) == component.name), {}))
        if options_key not in stage_values and not specific:
            continue
        stage_values[options_key] = {**stage_values.get(options_key, {}), **specific}
        config_class = component.config_class()
        accepted = {f.name for f in dataclasses.fields(config_class)} if config_class else set()
        stage_values[options_key] = {k: v for k, v in stage_values[options_key].items() if k in accepted}
    return filtered


def check_components(config: RunConfig, *, dataset: bool = True) -> None:
    """Fail early, before any work or output, when a configured component name is not registered or a file the
    settings name (a published checkpoint to squeeze from, a recovery or relabelling teacher) is not there."""
    if config.method not in METHODS:
        raise ConfigError(f"unknown method {config.method!r}; methods: {', '.join(METHODS)}")
    if dataset:
        get_component("dataset", config.dataset)
    get_component("pretrainer", config.squeeze.pretrainer)
    get_component("architecture", config.squeeze.architecture)
    get_component("aligner", config.align.aligner)
    get_component("matcher", config.recover.matcher)
    get_component("initializer", config.recover.initializer)
    get_component("crop_schedule", config.recover.crop_schedule)
    if config.recover.regularizer:
        get_component("regularizer", config.recover.regularizer)
    for student in config.posttrain.students:
        get_component("architecture", student)
    check_checkpoint(config.squeeze)
    config.recover.check_teachers()
    config.relabel.check_teacher()
