"""The whole-pipeline configuration: one dataclass per stage, defaults from the paper.

Presets (``scdd.presets``) and command-line ``--set stage.field=value`` overrides are applied
on top with ``apply_overrides``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scdd._options import build_dataclass
from scdd.errors import ConfigError
from scdd.report.config import ReportConfig
from scdd.stages.align import AlignConfig
from scdd.stages.posttrain import PosttrainConfig
from scdd.stages.recover import RecoverConfig
from scdd.stages.relabel import RelabelConfig
from scdd.stages.squeeze import SqueezeConfig


@dataclass
class RunConfig:
    dataset: str = "mnist5k"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    seed: int = 0
    device: str = "auto"
    strict: bool = False  # an image file that cannot be decoded is an error (else it is skipped and counted)
    method: str = "sc-dd"  # "sc-dd" (recover synthetic images) or a real-image coreset: "coreset-random", "coreset-herding"
    squeeze: SqueezeConfig = field(default_factory=SqueezeConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    recover: RecoverConfig = field(default_factory=RecoverConfig)
    relabel: RelabelConfig = field(default_factory=RelabelConfig)
    posttrain: PosttrainConfig = field(default_factory=PosttrainConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def resolved(self) -> "RunConfig":
        """Tie the values that must agree: relabel labels every post-training epoch with the same crops."""
        relabel = dataclasses.replace(self.relabel, epochs=self.posttrain.epochs, temperature=self.posttrain.temperature)
        posttrain = dataclasses.replace(self.posttrain, crop_min_scale=self.relabel.crop_min_scale)
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


def dotted_to_nested(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"recover.iterations": 5}`` → ``{"recover": {"iterations": 5}}``."""
    nested: dict[str, Any] = {}
    for dotted, value in pairs.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested
