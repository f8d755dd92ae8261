"""The whole SC-DD pipeline (squeeze → align → recover → relabel → post-train → evaluate) in a run folder.

With ``method`` set to a coreset (``coreset-random``, ``coreset-herding``), real images chosen per
class replace recovery; squeeze and align still produce the teacher that relabels them.

The run folder holds one sub-folder per stage and ``manifest.json``: the resolved config, package
versions, seed, device, per-stage status, timings and metrics. The manifest is rewritten
atomically after every stage, so it always describes what is on disk.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any


from scdd.artifacts import write_json
from scdd.config import RunConfig, apply_overrides, to_dict
from scdd.data.base import DatasetSplits
from scdd.distributed import on_main, world_size
from scdd.errors import ConfigError, DataError, UnknownComponentError
from scdd.presets import get_preset, preset_for_dataset, pretrainer_values
from scdd.progress import SILENT, Progress
from scdd.registry import get_component, normalize_name
from scdd.report import write_report
from scdd.report.clustering import choose_classes
from scdd.resume.runs import open_run_folder, run_recorded_stage
from scdd.runtime import resolve_device
from scdd.stages.align import align
from scdd.stages.common import StageResult
from scdd.stages.coreset import CORESET_METHODS, class_members, coreset
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel
from scdd.stages.squeeze import squeeze

MANIFEST_FILE = "manifest.json"
STAGES = ("squeeze", "align", "recover", "relabel", "posttrain", "evaluate")
METHODS = ("sc-dd", *(f"coreset-{name}" for name in CORESET_METHODS))
_OPTION_SLOTS = (
    ("squeeze", "pretrainer", "pretrainer_options", "pretrainer"),
    ("squeeze", "architecture", "architecture_options", "architecture"),
    ("align", "aligner", "aligner_options", "aligner"),
    ("recover", "matcher", "matcher_options", "matcher"),
)
_PACKAGES = ("scdd", "torch", "torchvision", "timm", "lightly", "pluggy", "safetensors", "numpy")


def make_run_config(overrides: Mapping[str, Any] | None = None, preset: str | None = None) -> RunConfig:
    """Paper defaults, then the preset (the dataset's own when ``preset`` is None) with its values for
    the chosen pretrainer (Table 13), then ``overrides``."""
    overrides = dict(overrides or {})
    dataset = overrides.get("dataset", RunConfig.dataset)
    name = preset or preset_for_dataset(dataset)
    config = RunConfig()
    if name is not None:
        values = get_preset(name)
        chosen = apply_overrides(apply_overrides(config, _component_names(values)), _component_names(overrides))
        config = apply_overrides(config, _filter_options(values, chosen))
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


def _filter_options(preset: Mapping[str, Any], chosen: RunConfig) -> dict[str, Any]:
    """The preset with each component-options dict cut to the options of the finally chosen component.

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


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@dataclass
class RunRecord:
    """The manifest's content while a run is under way."""

    config: RunConfig
    device: str
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # what loading the dataset noted: skipped files

    def to_json(self) -> dict[str, Any]:
        return {
            "scdd_manifest": 1,
            "created": self.created,
            "command": self.command,
            "device": self.device,
            "processes": world_size(),
            "seed": self.config.seed,
            "versions": package_versions(),
            "config": to_dict(self.config),
            "stages": self.stages,
            "metrics": self.metrics,
            "data": self.data,
        }


def prepare_out_dir(out_dir: Path, overwrite: bool) -> Path:
    """Refuse to write into a folder that already holds a run or other files, unless told to overwrite
    (checked and created by rank 0 only under torchrun; every rank gets its answer)."""
    return on_main(_prepare_out_dir, out_dir, overwrite)


def _write_manifest(out_dir: Path, record: RunRecord) -> None:
    on_main(write_json, out_dir / MANIFEST_FILE, record.to_json())  # rank 0 writes, the others wait


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} exists and is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        what = "a run" if (out_dir / MANIFEST_FILE).exists() else "other files"
        raise ConfigError(f"--out {out_dir} already holds {what}; choose another folder or pass --overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def check_components(config: RunConfig, *, dataset: bool = True) -> None:
    """Fail early, before any work or output, when a configured component name is not registered."""
    if config.method not in METHODS:
        raise ConfigError(f"unknown method {config.method!r}; methods: {', '.join(METHODS)}")
    if dataset:
        get_component("dataset", config.dataset)
    get_component("pretrainer", config.squeeze.pretrainer)
    get_component("architecture", config.squeeze.architecture)
    get_component("aligner", config.align.aligner)
    get_component("matcher", config.recover.matcher)
    for student in config.posttrain.students:
        get_component("architecture", student)


def load_dataset(config: RunConfig) -> DatasetSplits:
    """Build the configured dataset; a ``data_root`` that does not exist is an error naming it."""
    component = get_component("dataset", config.dataset)
    if config.data_root is not None and not Path(config.data_root).is_dir():
        raise DataError(f"--data-root {config.data_root} does not exist or is not a folder")
    options = dict(config.dataset_options)
    config_class = component.config_class()
    if config.strict and config_class is not None and "strict" in {f.name for f in dataclasses.fields(config_class)}:
        options["strict"] = True  # datasets of image files; array datasets have nothing to decode
    return component.build(options, data_root=config.data_root)


def skipped_summary(data: DatasetSplits) -> dict[str, Any]:
    """The manifest's note of image files left out because they could not be decoded."""
    return {"skipped_files": len(data.skipped), "skipped": list(data.skipped[:20])} if data.skipped else {}


def train_teacher(
    config: RunConfig, data: DatasetSplits, out_dir: Path, *, device, seed: int, progress: Progress = SILENT
) -> tuple[StageResult, StageResult]:
    """Squeeze into ``out_dir/squeeze`` and align into ``out_dir/align`` (the teacher recovery and relabelling
    use), outside a run folder; returns both stages' results."""
    common = {"device": device, "seed": seed, "progress": progress}
    squeezed = squeeze(config.squeeze, data, Path(out_dir) / "squeeze", **common)
    aligned = align(config.align, squeezed.artifacts["backbone"], data, Path(out_dir) / "align", **common)
    return squeezed, aligned


def run_pipeline(
    config: RunConfig,
    out_dir: Path,
    *,
    progress: Progress = SILENT,
    overwrite: bool = False,
) -> RunRecord:
    """Run every stage into ``out_dir``; returns the record that ``manifest.json`` holds."""
    check_components(config)
    device = resolve_device(config.device)
    data = load_dataset(config)
    choose_classes(config.report.cluster_classes, data.info.class_names)  # a bad class fails before any work
    if config.method != "sc-dd":
        class_members(data, config.recover.ipc)  # a class with fewer real images than the IPC fails before any work
    out_dir = Path(out_dir)
    # an existing run folder continues when its resolved config matches (scdd.resume), else is refused
    previous = on_main(open_run_folder, out_dir, {"config": to_dict(config)}, overwrite=overwrite)  # rank 0 decides
    record = RunRecord(config=config, device=str(device), data=skipped_summary(data))
    if previous is not None:
        record.created, record.stages = previous.get("created", record.created), dict(previous.get("stages", {}))
    seed = config.seed

    def run_stage(name: str, action) -> StageResult:
        return run_recorded_stage(name, out_dir, record.stages, lambda: _write_manifest(out_dir, record), action)

    common = {"device": device, "seed": seed, "progress": progress}
    squeezed = run_stage("squeeze", lambda d: squeeze(config.squeeze, data, d, **common))
    aligned = run_stage("align", lambda d: align(config.align, squeezed.artifacts["backbone"], data, d, **common))
    if config.method == "sc-dd":
        recovered = run_stage("recover", lambda d: recover(config.recover, aligned.artifacts["classifier"], d, **common))
    else:  # a real-image coreset replaces recovery; the aligned model still relabels it
        recovered = run_stage(
            "coreset",
            lambda d: coreset(
                config.method.removeprefix("coreset-"), data, config.recover.ipc, d,
                classifier_path=aligned.artifacts["classifier"], **common,
            ),
        )
    labelled = run_stage(
        "relabel",
        lambda d: relabel(config.relabel, aligned.artifacts["classifier"], recovered.artifacts["distilled"], d, **common),
    )
    trained = run_stage(
        "posttrain",
        lambda d: posttrain(
            config.posttrain, recovered.artifacts["distilled"], labelled.artifacts["soft_labels"], d, **common
        ),
    )
    evaluated = run_stage("evaluate", lambda d: on_main(evaluate, trained.artifacts, data, device=device))
    record.metrics = {
        "teacher": {"top1": aligned.metrics["teacher_heldout_top1"], "top5": aligned.metrics["teacher_heldout_top5"]},
        "students": evaluated.metrics,
    }
    _write_manifest(out_dir, record)
    on_main(write_report, out_dir, config=config.report)
    return record
