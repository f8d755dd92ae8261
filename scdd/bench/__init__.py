"""``scdd bench``: named suites of pipelines run under one protocol, summarised in one table.

Every row's students are compared with students trained on random real images with identical labels
(the same relabelling teacher and recipe), paired by seed: ``paired_gain`` computes that figure and
``gain_over_random_real`` measures it for any method's distilled sets (``scdd.bench.compare``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scdd.bench.compare import gain_over_random_real
from scdd.bench.comparisons import reading
from scdd.bench.gain import LabelMismatchError, Measured, PairedGain, label_identity, paired_gain
from scdd.bench.named_suites import SUITES, get_suite
from scdd.bench.plan import Plan, load_cell, plan_suite
from scdd.bench.results import RESULTS_CSV, RESULTS_JSON, summary_rows
from scdd.bench.reuse import is_bench_folder
from scdd.bench.runner import run_plan
from scdd.bench.suites import Suite, SuiteRow, load_suite_file, suite_from_dict
from scdd.data.loading import load_dataset
from scdd.out_dir import locked_out_dir
from scdd.progress import SILENT, Progress
from scdd.runtime import resolve_device


def run_suite(
    suite: Suite,
    out_dir: str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    preset: str | None = None,
    progress: Progress = SILENT,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Check every row of ``suite``, then run it into ``out_dir``; returns the ``results.json`` document.
    A folder that holds an earlier bench is continued: its finished teachers and cells are reused where
    their records match (``scdd.bench.reuse``); ``overwrite`` runs everything again."""
    plan = plan_suite(suite, overrides, preset)
    device = resolve_device(plan.base.device)
    data = load_dataset(plan.base)
    earlier = is_bench_folder(Path(out_dir))
    with locked_out_dir(out_dir, overwrite or earlier) as out:  # one scdd process at a time in the folder
        return run_plan(plan, out, device=device, progress=progress, data=data, reuse=not overwrite)


def rerun_cell(
    manifest: str | Path, out_dir: str | Path, *, device: str | None = None, progress: Progress = SILENT, overwrite: bool = False
) -> dict[str, Any]:
    """Run one bench cell again, from its ``manifest.json``, into ``out_dir`` (its teachers included)."""
    plan, _ = load_cell(manifest)
    with locked_out_dir(out_dir, overwrite) as out:
        chosen = resolve_device(device or plan.base.device)
        return run_plan(plan, out, device=chosen, progress=progress, data=load_dataset(plan.base), reuse=False)


__all__ = [
    "LabelMismatchError",
    "Measured",
    "PairedGain",
    "gain_over_random_real",
    "label_identity",
    "paired_gain",
    "rerun_cell",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "SUITES",
    "Plan",
    "Suite",
    "SuiteRow",
    "get_suite",
    "load_suite_file",
    "plan_suite",
    "reading",
    "run_suite",
    "suite_from_dict",
    "summary_rows",
]
