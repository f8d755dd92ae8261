"""Presets: named sets of configuration values, kept as data.

A dataset with a preset of its own name (or named by the preset's ``dataset`` value) gets it by
default. Option dicts of components (``pretrainer_options`` and the like) are filtered to the
options the chosen component accepts, so one preset budget serves every pretrainer. The paper's
presets (``scdd.paper_presets``) carry the table each value comes from.
"""

from __future__ import annotations

from typing import Any

from scdd.errors import ConfigError
from scdd.paper_presets import BY_PRETRAINER, PAPER_ONLY, PAPER_PRESETS, Sourced

PRESETS: dict[str, dict[str, Any]] = {
    # The embedded default: budgets sized so `scdd run` finishes in a few minutes on 2 CPU cores.
    "mnist5k": {
        "squeeze": {
            "architecture": "resnet10-slim",
            "pretrainer_options": {
                "epochs": 8,
                "batch_size": 256,
                "lr": 0.1,
                "temperature": 0.2,
                "hidden_dim": 512,
                "output_dim": 128,
                "crop_min_scale": 0.3,
            },
            # Per-pretrainer budgets of about MoCo v3's wall time on 28 px digits: MoCo v2 runs one
            # view through the gradient path per step (more epochs) with a queue of half the training
            # set; multi-crop methods use 4 small views of 12 px and short warm-ups. A run of a few
            # hundred steps needs momentum encoders that move within it (0.999 / 0.996 are for 10⁵ steps).
            "pretrainer_options_by_name": {
                "moco-v2": {"epochs": 14, "queue_size": 2048, "encoder_momentum": 0.99},
                "swav": {
                    "temperature": 0.1,
                    "prototypes": 100,
                    "local_views": 4,
                    "local_crop_scale": (0.1, 0.3),
                },
                "dino": {
                    "output_dim": 1024,
                    "bottleneck_dim": 128,
                    "local_views": 4,
                    "local_crop_scale": (0.1, 0.3),
                    "warmup_epochs": 1,
                    "warmup_teacher_temperature_epochs": 3,
                    "base_momentum": 0.95,
                },
            },
        },
        "align": {"aligner_options": {"epochs": 40, "augment": False, "lr": 0.1, "batch_size": 256}},
        "recover": {"ipc": 10, "iterations": 300, "batch_size": 100, "lr": 0.25, "alpha_bn": 0.3, "crop_min_scale": 0.5},
        "relabel": {"crop_min_scale": 0.25},
        # T = 2: full fp32 labels train students as well as T = 4 (82.9% vs 83.0%, IPC 10), and top-3 labels
        # stay within a point of them (82.4%; 78.9% at T = 4, where the 7 dropped classes hold more mass)
        "posttrain": {"students": ["resnet10-slim"], "epochs": 200, "batch_size": 50, "lr": 0.005, "temperature": 2.0},
    },
}


SOURCED_PRESETS: dict[str, dict[str, Any]] = dict(PAPER_PRESETS)
SCDD_SOURCE = "scdd (CPU-sized budget, not from the paper)"


def _plain(values: Any) -> Any:
    """Nested preset data without sources (and without the paper-only and per-pretrainer parts)."""
    if isinstance(values, Sourced):
        return values.value
    if isinstance(values, dict):
        return {key: _plain(value) for key, value in values.items() if key not in (PAPER_ONLY, BY_PRETRAINER)}
    return values


PRESETS.update({name: _plain(values) for name, values in SOURCED_PRESETS.items()})


def _check(name: str) -> str:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    return name


def get_preset(name: str) -> dict[str, Any]:
    return PRESETS[_check(name)]


def preset_for_dataset(dataset: str) -> str | None:
    """The preset a dataset gets by default: one of its own name, or one whose ``dataset`` it is."""
    from scdd.registry import normalize_name

    key = normalize_name(dataset)
    for name, values in PRESETS.items():
        if normalize_name(name) == key or normalize_name(str(values.get("dataset", ""))) == key:
            return name
    return None


def pretrainer_values(name: str, pretrainer: str) -> dict[str, Any]:
    """A preset's values that hold only with this squeeze objective (Table 13), plain."""
    from scdd.registry import normalize_name

    table = SOURCED_PRESETS.get(_check(name), {}).get(BY_PRETRAINER, {})
    for key, values in table.items():
        if normalize_name(key) == normalize_name(pretrainer):
            return _plain(values)
    return {}


def preset_rows(name: str) -> list[tuple[str, Any, str, str]]:
    """``(setting, value, source, note)`` for every value of a preset, for ``scdd presets show``.

    Values scdd has no setting for are marked "no scdd setting" in the note; per-pretrainer
    values are listed as ``[pretrainer] setting``."""
    data = SOURCED_PRESETS.get(_check(name), PRESETS[name])
    rows: list[tuple[str, Any, str, str]] = []

    def walk(values: Any, prefix: str, tag: str = "") -> None:
        for key, value in values.items():
            if key == PAPER_ONLY:
                for setting, item in value.items():
                    rows.append((tag + setting, item.value, item.source, "no scdd setting" + (f": {item.note}" if item.note else "")))
            elif key == BY_PRETRAINER:
                for pretrainer, nested in value.items():
                    walk(nested, "", f"[{pretrainer}] ")
            elif isinstance(value, dict):
                walk(value, f"{prefix}{key}.", tag)
            elif isinstance(value, Sourced):
                rows.append((tag + prefix + key, value.value, value.source, value.note))
            else:
                rows.append((tag + prefix + key, value, SCDD_SOURCE, ""))

    walk(data, "")
    return rows
