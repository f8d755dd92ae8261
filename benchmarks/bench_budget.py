"""Estimate a bench suite's wall time on this machine from measured unit costs.

Times a short slice of each kind of work with the suite's resolved budget and scales it: one squeeze
epoch per distinct teacher (scaled to its epochs) and its align; per IPC, a slice of one recovery
(scaled to its iterations), a random coreset, and a slice of relabelling and post-training (scaled to
their epochs) plus one evaluation. Then it multiplies by the plan's counts (``scdd bench --plan``):
teachers once, recoveries, coresets, relabels and student trainings per seed. The process CPU time of
each slice is printed too: on a shared machine it is closer to what an idle core would take.

    python benchmarks/bench_budget.py --suite fair --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from scdd.bench import get_suite, plan_suite
from scdd.bench.plan import image_key, teacher_key
from scdd.data.loading import load_dataset
from scdd.stages.align import align
from scdd.stages.coreset import coreset
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel
from scdd.stages.squeeze import squeeze

SLICE_EPOCHS = 10  # relabel / post-training epochs timed, then scaled
SLICE_ITERATIONS = 20  # recovery iterations timed, then scaled


def timed(action):
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="fair")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-split", default="held-out", choices=["held-out", "validation"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    suite = get_suite(args.suite)
    plan = plan_suite(suite, {"device": "cpu", "eval_split": args.eval_split})
    data = load_dataset(plan.base)
    seeds = len(suite.seeds)
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        teachers = {}
        for cell in plan.cells:
            for config in ([cell.config] if cell.needs_teacher else []) + [cell.label_teacher]:
                teachers.setdefault(teacher_key(config), config)
        classifier = None
        for key, config in teachers.items():
            epochs = config.squeeze.pretrainer_options.get("epochs", 1)
            one = dataclasses.replace(config.squeeze, pretrainer_options={**config.squeeze.pretrainer_options, "epochs": 1})
            name = f"teacher {config.squeeze.pretrainer}/{config.squeeze.architecture} {config.squeeze.architecture_options}"
            squeezed, w, c = timed(lambda: squeeze(one, data, out / key / "s", device=device, seed=0))
            aligned, w2, c2 = timed(
                lambda: align(config.align, squeezed.artifacts["backbone"], data, out / key / "a", device=device, seed=0)
            )
            wall[name], cpu[name] = w * epochs + w2, c * epochs + c2
            classifier = classifier or aligned.artifacts["classifier"]
        for ipc in suite.ipc:
            cells = [cell for cell in plan.cells if cell.ipc == ipc]
            distill = next((cell for cell in cells if cell.row.method == "distill"), cells[0])
            folder = out / f"ipc{ipc}"
            recovered = (distill.config.recover.iterations, None)
            if distill.row.method == "distill":
                short = dataclasses.replace(distill.config.recover, iterations=SLICE_ITERATIONS)
                result, w, c = timed(lambda: recover(short, classifier, folder / "r", device=device, seed=0))
                scale = distill.config.recover.iterations / SLICE_ITERATIONS
                wall[f"ipc {ipc} recovery"], cpu[f"ipc {ipc} recovery"] = w * scale, c * scale
            subset, w, c = timed(lambda: coreset("random", data, ipc, folder / "c", seed=0))
            wall[f"ipc {ipc} coreset"], cpu[f"ipc {ipc} coreset"] = w, c
            images = subset.artifacts["distilled"]
            epochs = distill.config.posttrain.epochs
            relabel_config = dataclasses.replace(distill.config.relabel, epochs=min(epochs, SLICE_EPOCHS))
            post_config = dataclasses.replace(distill.config.posttrain, epochs=min(epochs, SLICE_EPOCHS))
            scale = epochs / min(epochs, SLICE_EPOCHS)
            labels, w, c = timed(lambda: relabel(relabel_config, classifier, images, folder / "l", device=device, seed=0))
            wall[f"ipc {ipc} relabel"], cpu[f"ipc {ipc} relabel"] = w * scale, c * scale
            trained, w, c = timed(
                lambda: posttrain(post_config, images, labels.artifacts["soft_labels"], folder / "p", device=device, seed=0)
            )
            _, w2, c2 = timed(lambda: evaluate(trained.artifacts, data, device=device))
            per_student = len(post_config.students)
            wall[f"ipc {ipc} posttrain + evaluate"] = (w * scale + w2) / per_student
            cpu[f"ipc {ipc} posttrain + evaluate"] = (c * scale + c2) / per_student
            del recovered
    for name in wall:
        print(f"  {name:<60} {wall[name]:8.1f} s wall {cpu[name]:8.1f} s CPU")

    def total(costs: dict[str, float]) -> float:
        result = sum(value for name, value in costs.items() if name.startswith("teacher "))
        for ipc in suite.ipc:
            cells = [cell for cell in plan.cells if cell.ipc == ipc]
            recoveries = {image_key(cell) for cell in cells if cell.row.method == "distill"}
            coresets = {image_key(cell) for cell in cells if cell.row.method == "coreset"}
            relabels = {(image_key(cell), cell.label_key) for cell in cells if cell.config.posttrain.labels == "soft"}
            students = sum(len(cell.config.posttrain.students) for cell in cells)
            result += seeds * (
                len(recoveries) * costs.get(f"ipc {ipc} recovery", 0.0)
                + len(coresets) * costs[f"ipc {ipc} coreset"]
                + len(relabels) * costs[f"ipc {ipc} relabel"]
                + students * costs[f"ipc {ipc} posttrain + evaluate"]
            )
        return result

    counts = plan.counts()
    print(", ".join(f"{value} {name}" for name, value in counts.items()))
    print(
        f"estimated time of suite {suite.name!r} with {args.threads} threads: {total(wall) / 60:.1f} min wall "
        f"({total(cpu) / 60:.1f} min of process CPU time)"
    )


if __name__ == "__main__":
    main()
