"""Distilled images against the same number of random real images, at equal post-training steps.

For each IPC, a student is post-trained (a) on the distilled set with the aligned model's
crop-level soft labels and (b) on IPC random real training images per class with hard labels,
with the same post-training config (epochs, batch size, crops), hence the same number of steps.
Both are evaluated top-1 on the real held-out split, over several seeds.

    python benchmarks/distilled_vs_real.py --out /tmp/dvr                   # squeeze + align first
    python benchmarks/distilled_vs_real.py --out /tmp/dvr --teacher RUN/align/classifier.safetensors
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from scdd.data.loading import load_dataset
from scdd.config import make_run_config
from scdd.run_folder import prepare_out_dir
from scdd.pipeline import train_teacher
from scdd.runtime import resolve_device
from scdd.stages.coreset import coreset_random
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel


def student_top1(result) -> float:
    (metrics,) = result.metrics.values()
    return metrics["top1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, help="an aligned classifier; without it, squeeze and align run first")
    parser.add_argument("--pretrainer", default="moco-v3")
    parser.add_argument("--matcher", default="imbalanced-bn")
    parser.add_argument("--ipc", default="1,10", help="comma-separated IPC values")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    config = make_run_config(
        {"squeeze": {"pretrainer": args.pretrainer}, "recover": {"matcher": args.matcher}, "device": args.device}
    )
    device = resolve_device(config.device)
    data = load_dataset(config)
    out = prepare_out_dir(args.out, overwrite=False)

    teacher = args.teacher
    if teacher is None:
        _, aligned = train_teacher(config, data, out, device=device, seed=config.seed)
        teacher = aligned.artifacts["classifier"]
        print(f"teacher: {args.pretrainer} squeeze, held-out top-1 {aligned.metrics['teacher_heldout_top1']:.1f}%")

    rows = []
    for ipc in (int(value) for value in args.ipc.split(",")):
        ipc_config = make_run_config(
            {"squeeze": {"pretrainer": args.pretrainer}, "recover": {"matcher": args.matcher, "ipc": ipc}}
        )
        steps = ipc_config.posttrain.epochs * -(-ipc * data.info.num_classes // ipc_config.posttrain.batch_size)
        hard = make_run_config({"posttrain": {"labels": "hard"}, "recover": {"ipc": ipc}}).posttrain
        distilled, real = [], []
        for seed in range(args.seeds):
            folder = out / f"ipc{ipc}" / f"seed{seed}"
            recovered = recover(ipc_config.recover, teacher, folder / "distilled", device=device, seed=seed)
            distilled_set = recovered.artifacts["distilled"]
            labels = relabel(ipc_config.relabel, teacher, distilled_set, folder / "distilled", device=device, seed=seed)
            soft = labels.artifacts["soft_labels"]
            student = posttrain(ipc_config.posttrain, distilled_set, soft, folder / "distilled", device=device, seed=seed)
            distilled.append(student_top1(evaluate(student.artifacts, data, device=device)))
            subset = coreset_random(data, ipc, folder / "real", seed=seed)
            student = posttrain(hard, subset.artifacts["distilled"], None, folder / "real", device=device, seed=seed)
            real.append(student_top1(evaluate(student.artifacts, data, device=device)))
            print(f"ipc {ipc} seed {seed}: distilled {distilled[-1]:.1f}%  random real {real[-1]:.1f}%", flush=True)
        rows.append((ipc, steps, distilled, real))

    print(f"\n{'ipc':>4} {'steps':>6} {'distilled (soft labels)':>26} {'random real (hard labels)':>28}")
    for ipc, steps, distilled, real in rows:
        print(f"{ipc:>4} {steps:>6} {_summary(distilled):>26} {_summary(real):>28}")


def _summary(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}%"


if __name__ == "__main__":
    main()
