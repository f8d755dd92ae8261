"""Cross-architecture post-training (the form of the paper's Table 8) on an existing run's distilled set.

Takes the aligned teacher (``RUN/align/classifier.safetensors``) and the distilled set
(``RUN/recover/distilled.safetensors``, or ``RUN/coreset/...``) of a finished ``scdd run``, relabels it
once (stored fp32 crop-level soft labels), post-trains every student on the same labels and prints
#params, top-1 and top-5 on the whole real held-out split at the final epoch (mean ± std over seeds).

    nice -n 10 scdd run --out /tmp/pt-run --quiet
    nice -n 10 python benchmarks/cross_arch.py --run /tmp/pt-run --out /tmp/xarch --epochs 40

The run's own preset fixes the post-training recipe (mnist5k: AdamW lr 0.005, batch 50, T 4, cosine);
``--epochs`` shortens the budget for CPU machines and is printed with the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from scdd.artifacts import load_tensors
from scdd.config import make_run_config
from scdd.data.loading import load_dataset
from scdd.run_folder import prepare_out_dir
from scdd.runtime import resolve_device
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.relabel import relabel

DEFAULT_STUDENTS = "resnet10-slim,resnet18,regnet-x-200mf,mobilenet-v3-large,shufflenet-v2-x0.5,squeezenet1.0,vit-tiny,vgg11-bn"


def distilled_file(run: Path) -> Path:
    for stage in ("recover", "coreset"):
        if (run / stage / "distilled.safetensors").is_file():
            return run / stage / "distilled.safetensors"
    raise SystemExit(f"{run}: no recover/ or coreset/ distilled.safetensors")


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished `scdd run` folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--students", default=DEFAULT_STUDENTS)
    parser.add_argument("--epochs", type=int, help="post-training epochs (default: the run's)")
    parser.add_argument("--seeds", type=int, default=1, help="post-training runs per student")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on a busy shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    teacher = args.run / "align" / "classifier.safetensors"
    distilled = distilled_file(args.run)
    dataset = load_tensors(teacher, "classifier")[1]["dataset"]["name"]
    overrides = {"dataset": dataset, "device": args.device, "posttrain": {"students": args.students.split(","), "runs": args.seeds}}
    if args.epochs:
        overrides["posttrain"]["epochs"] = args.epochs
    config = make_run_config(overrides)
    device = resolve_device(config.device)
    data = load_dataset(config)
    out = prepare_out_dir(args.out, overwrite=False)
    recipe = config.posttrain
    print(
        f"teacher {teacher}, distilled {distilled}; post-training {recipe.epochs} epochs, batch {recipe.batch_size}, "
        f"{recipe.optimizer} lr {recipe.lr}, T {recipe.temperature}, {args.seeds} seed(s), device {device}",
        flush=True,
    )
    labels = relabel(config.relabel, teacher, distilled, out / "relabel", device=device, seed=config.seed)
    rows = []
    for student in recipe.students:
        started = time.perf_counter()
        one = dataclasses.replace(recipe, students=(student,))
        trained = posttrain(one, distilled, labels.artifacts["soft_labels"], out / "posttrain", device=device, seed=config.seed)
        per_run = evaluate(trained.artifacts, data, device=device).metrics
        ((name, summary),) = per_run.items()
        top1 = summary.get("top1_runs", [summary["top1"]])
        top5 = summary.get("top5_runs", [summary["top5"]])
        rows.append((name, summary["params"], cell(top1), cell(top5), time.perf_counter() - started))
        print(f"  {name}: top-1 {cell(top1)}  ({rows[-1][4]:.0f} s)", flush=True)
    print(
        f"\nTop-1 / top-5 on the real held-out split ({dataset}, IPC {load_tensors(distilled)[1].get('ipc')}, "
        f"{recipe.epochs} post-training epochs)"
    )
    print("| model | #params | top-1 (%) | top-5 (%) | seconds |\n|---|---:|---:|---:|---:|")
    for name, params, top1, top5, seconds in rows:
        print(f"| {name} | {params / 1e6:.2f}M | {top1} | {top5} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
