"""``scdd bench``: named suites of pipelines run under one protocol, summarised in one table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scdd.bench.plan import Plan, plan_suite
from scdd.bench.results import RESULTS_CSV, RESULTS_JSON, reading, summary_rows
from scdd.bench.suites import SUITES, Suite, SuiteRow, get_suite, load_suite_file, suite_from_dict
from scdd.progress import SILENT, Progress
from scdd.bench.runner import run_plan
from scdd.data.loading import load_dataset
from scdd.run_folder import prepare_out_dir
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
    """Check every row of ``suite``, then run it into ``out_dir``; returns the ``results.json`` document."""
    plan = plan_suite(suite, overrides, preset)
    device = resolve_device(plan.base.device)
    data = load_dataset(plan.base)
    out = prepare_out_dir(Path(out_dir), overwrite)
    return run_plan(plan, out, device=device, progress=progress, data=data)


__all__ = [
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
