"""The whole SC-DD pipeline (squeeze → align → recover → relabel → post-train → evaluate) in a run folder.

With ``method`` set to a coreset (``coreset-random``, ``coreset-herding``), real images chosen per
class replace recovery; squeeze and align still produce the teacher that relabels them.

The run folder holds one sub-folder per stage and ``manifest.json`` (``scdd.run_folder``); this
module only orders the stages and passes each one's artifacts to the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scdd.config import RunConfig, check_components, to_dict
from scdd.curves import TENSORBOARD_DIR, CurveRecorder, tensorboard_writer
from scdd.data.base import DatasetSplits, class_members
from scdd.data.loading import load_dataset, skipped_summary
from scdd.distributed import is_main, on_main
from scdd.progress import SILENT, Progress
from scdd.report import write_report
from scdd.report.clustering import choose_classes
from scdd.run_folder import STAGE_FOLDERS, RunRecord, locked_run_folder, run_recorded_stage, write_manifest
from scdd.runtime import resolve_device
from scdd.stages.align import align
from scdd.stages.common import StageResult
from scdd.stages.coreset import coreset
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel
from scdd.stages.squeeze import squeeze

STAGES = tuple(name for name in STAGE_FOLDERS if name != "coreset")  # SC-DD's stages in order


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
    data: DatasetSplits | None = None,
    notes: Mapping[str, Any] | None = None,
    tensorboard: bool = False,
) -> RunRecord:
    """Run every stage into ``out_dir``; returns the record that ``manifest.json`` holds. ``data``: the
    dataset when already loaded (``scdd.resolve``); ``notes``: manifest entries on how the settings were
    chosen (``sizing``). Each stage's loss curves go to ``<stage>/curves.csv``, and with ``tensorboard``
    also to ``tensorboard/`` (``scdd.curves``)."""
    check_components(config)
    device = resolve_device(config.device)
    data = data if data is not None else load_dataset(config)
    choose_classes(config.report.cluster_classes, data.info.class_names)  # a bad class fails before any work
    if config.method != "sc-dd":
        class_members(data, config.recover.ipc)  # a class with fewer real images than the IPC fails before any work
    out_dir = Path(out_dir)
    # an existing run folder continues when its resolved config matches (run_folder), else is refused;
    # it stays locked against other processes until the run ends
    with locked_run_folder(out_dir, {"config": to_dict(config)}, overwrite=overwrite) as previous:
        return _run_stages(config, out_dir, previous, data, device, progress, notes, tensorboard)


def _run_stages(
    config: RunConfig,
    out_dir: Path,
    previous,
    data: DatasetSplits,
    device,
    progress: Progress,
    notes: Mapping[str, Any] | None,
    tensorboard: bool,
) -> RunRecord:
    """The stages in order into the locked ``out_dir``, continuing ``previous`` (its earlier record, or None)."""
    record = RunRecord(config=config, device=str(device), data=skipped_summary(data), notes=dict(notes or {}))
    if previous is not None:
        record.created, record.stages = previous.get("created", record.created), dict(previous.get("stages", {}))
    seed = config.seed
    writer = tensorboard_writer(out_dir / TENSORBOARD_DIR, create=is_main()) if tensorboard else None
    curves = CurveRecorder(progress, writer)

    def run_stage(name: str, action) -> StageResult:
        curves.begin_stage(name)
        result = run_recorded_stage(name, out_dir, record.stages, lambda: write_manifest(out_dir, record), action)
        on_main(curves.write_stage, out_dir / name)
        return result

    common = {"device": device, "seed": seed, "progress": curves}
    squeezed = run_stage("squeeze", lambda d: squeeze(config.squeeze, data, d, **common))
    aligned = run_stage("align", lambda d: align(config.align, squeezed.artifacts["backbone"], data, d, **common))
    if config.method == "sc-dd":
        recovered = run_stage("recover", lambda d: recover(config.recover, aligned.artifacts["classifier"], d, data=data, **common))
    else:  # a real-image coreset replaces recovery; the aligned model still relabels it
        recovered = run_stage(
            "coreset",
            lambda d: coreset(
                config.method.removeprefix("coreset-"),
                data,
                config.recover.ipc,
                d,
                classifier_path=aligned.artifacts["classifier"],
                **common,
            ),
        )
    labelled = run_stage(
        "relabel",
        lambda d: relabel(config.relabel, aligned.artifacts["classifier"], recovered.artifacts["distilled"], d, **common),
    )
    trained = run_stage(
        "posttrain",
        lambda d: posttrain(config.posttrain, recovered.artifacts["distilled"], labelled.artifacts["soft_labels"], d, **common),
    )
    evaluated = run_stage("evaluate", lambda d: on_main(evaluate, trained.artifacts, data, device=device))
    record.metrics = {
        "teacher": {"top1": aligned.metrics["teacher_heldout_top1"], "top5": aligned.metrics["teacher_heldout_top5"]},
        "students": evaluated.metrics,
    }
    write_manifest(out_dir, record)
    curves.add_metrics(record.metrics)
    curves.close()
    on_main(write_report, out_dir, config=config.report)
    return record
