"""Estimate a bench suite's wall time on this machine from measured unit costs.

Times one of each kind of work with the suite's resolved budget (one squeeze epoch, scaled to the
suite's epochs; one align; one recovery, relabel, post-training and evaluation per IPC), then
multiplies by the suite's plan counts (``scdd bench --plan``). Components this installation lacks
are stood in for by a proxy of the same kind (``--proxy-pretrainer``, ``bn`` → ``imbalanced-bn``,
``herding`` → ``random``) for counting and timing, so the estimate exists before every plugin does.

    python benchmarks/bench_budget.py --suite default --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from scdd.bench import get_suite, plan_suite
from scdd.bench.plan import coreset_function
from scdd.errors import ScddError
from scdd.data.loading import load_dataset
from scdd.registry import get_registry
from scdd.stages.align import align
from scdd.stages.coreset import coreset_random
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel
from scdd.stages.squeeze import squeeze


def with_proxies(suite, proxy_pretrainer: str):
    """The suite with unregistered pretrainers, matchers and selections replaced by stand-ins."""
    registry = get_registry()
    rows = []
    for row in suite.rows:
        changes = {}
        if row.pretrainer and row.pretrainer not in registry.names("pretrainer"):
            changes["pretrainer"] = proxy_pretrainer
        if row.matcher and row.matcher not in registry.names("matcher"):
            changes["matcher"] = "imbalanced-bn"
        if row.selection:
            try:
                coreset_function(row.selection)
            except ScddError:
                changes["selection"] = "random"
        if changes:
            print(f"  {row.label}: timed with {changes}")
        rows.append(dataclasses.replace(row, **changes))
    return dataclasses.replace(suite, rows=tuple(rows))


def timed(action):
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--proxy-pretrainer", default="moco-v3")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")

    suite = with_proxies(get_suite(args.suite), args.proxy_pretrainer)
    plan = plan_suite(suite, {"device": "cpu"})
    data = load_dataset(plan.base)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        for pretrainer in sorted({cell.config.squeeze.pretrainer for cell in plan.cells if cell.needs_teacher}):
            cell = next(c for c in plan.cells if c.config.squeeze.pretrainer == pretrainer)
            epochs = cell.config.squeeze.pretrainer_options.get("epochs", 1)
            one_epoch = dataclasses.replace(
                cell.config.squeeze, pretrainer_options={**cell.config.squeeze.pretrainer_options, "epochs": 1}
            )
            squeezed, elapsed = timed(lambda: squeeze(one_epoch, data, out / pretrainer / "s", device=device, seed=0))
            seconds[f"squeeze {pretrainer} ({epochs} epochs)"] = elapsed * epochs
            aligned, elapsed = timed(
                lambda: align(cell.config.align, squeezed.artifacts["backbone"], data, out / pretrainer / "a", device=device, seed=0)
            )
            seconds[f"align {pretrainer}"] = elapsed
        teacher = aligned.artifacts["classifier"]
        for ipc in suite.ipc:
            cell = next(c for c in plan.cells if c.ipc == ipc and c.row.method == "distill")
            folder = out / f"ipc{ipc}"
            recovered, seconds[f"recover ipc {ipc}"] = timed(
                lambda: recover(cell.config.recover, teacher, folder / "r", device=device, seed=0)
            )
            _, seconds[f"coreset ipc {ipc}"] = timed(lambda: coreset_random(data, ipc, folder / "c", seed=0))
            labels, seconds[f"relabel ipc {ipc}"] = timed(
                lambda: relabel(cell.config.relabel, teacher, recovered.artifacts["distilled"], folder / "l", device=device, seed=0)
            )
            student = dataclasses.replace(cell.config.posttrain, students=cell.config.posttrain.students[:1])
            trained, seconds[f"posttrain ipc {ipc}"] = timed(
                lambda: posttrain(student, recovered.artifacts["distilled"], labels.artifacts["soft_labels"], folder / "p", device=device, seed=0)
            )
            _, seconds[f"evaluate ipc {ipc}"] = timed(lambda: evaluate(trained.artifacts, data, device=device))
    for name, value in seconds.items():
        print(f"  {name:<40} {value:8.1f} s")

    seeds = len(suite.seeds)
    # Shared work is counted by the suite's own components, not the proxies standing in for them.
    original = {row.label: row.pretrainer for row in get_suite(args.suite).rows}
    teachers = {
        (original[c.row.label], c.config.squeeze.architecture): c.config.squeeze.pretrainer for c in plan.cells if c.needs_teacher
    }
    total = sum(
        seconds[next(n for n in seconds if n.startswith(f"squeeze {p} "))] + seconds[f"align {p}"] for p in teachers.values()
    )
    recoveries = {(original[c.row.label], c.ipc, repr(c.config.recover)) for c in plan.cells if c.row.method == "distill"}
    total += sum(seconds[f"recover ipc {ipc}"] for _, ipc, _ in recoveries) * seeds
    for cell in plan.cells:
        per_seed = seconds[f"relabel ipc {cell.ipc}"] * (cell.config.posttrain.labels == "soft")
        per_seed += (seconds[f"posttrain ipc {cell.ipc}"] + seconds[f"evaluate ipc {cell.ipc}"]) * len(cell.config.posttrain.students)
        if cell.row.method == "coreset":
            per_seed += seconds[f"coreset ipc {cell.ipc}"]
        total += per_seed * seeds
    print(f"teachers {len(teachers)}, recoveries {len(recoveries) * seeds}, cells {len(plan.cells)} × {seeds} seeds")
    print(f"estimated wall time of suite {suite.name!r}: {total:.0f} s ({total / 60:.1f} min) with {args.threads} threads")


if __name__ == "__main__":
    main()
