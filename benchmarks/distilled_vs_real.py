"""Distilled images against the same number of random real images with identical labels.

For each IPC and seed, a distilled set is recovered from the recovery teacher; then
``scdd.bench.gain_over_random_real`` relabels it and a random real subset of the same IPC and seed
with one labelling teacher, post-trains each student the same way and reports the paired gain
(the figure ``scdd bench`` leads with, and the call a plugin makes for its own images).

    python benchmarks/distilled_vs_real.py --out /tmp/dvr --teacher RUN/align/classifier.safetensors \
        --labels SUPERVISED/align/classifier.safetensors --ipc 1,10 --seeds 3 [--preset small] [--eval-split validation]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from scdd.bench import gain_over_random_real
from scdd.config import make_run_config
from scdd.data.loading import load_dataset
from scdd.run_folder import prepare_out_dir
from scdd.runtime import resolve_device
from scdd.stages.recover import recover


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, required=True, help="the aligned classifier that recovers the images")
    parser.add_argument("--labels", type=Path, help="the classifier that relabels both sets (default: --teacher)")
    parser.add_argument("--matcher", default="imbalanced-bn")
    parser.add_argument("--ipc", default="1,10", help="comma-separated IPC values")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--preset", help="a named preset (default: the dataset's own)")
    parser.add_argument("--eval-split", default="held-out", choices=["held-out", "validation"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    out = prepare_out_dir(args.out, overwrite=False)
    labels = args.labels or args.teacher
    rows = []
    for ipc in (int(value) for value in args.ipc.split(",")):
        config = make_run_config(
            {"recover": {"matcher": args.matcher, "ipc": ipc}, "device": args.device, "eval_split": args.eval_split}, args.preset
        )
        device = resolve_device(config.device)
        data = load_dataset(config)
        images = {
            seed: recover(config.recover, args.teacher, out / f"ipc{ipc}" / f"seed{seed}" / "recover", device=device, seed=seed).artifacts[
                "distilled"
            ]
            for seed in range(args.seeds)
        }
        for student, result in gain_over_random_real(images, labels, config, out / f"ipc{ipc}", device=device, data=data).items():
            rows.append((ipc, student, result))
            print(f"ipc {ipc} {student}: distilled {result.method.top1}, random real {result.random_real.top1}", flush=True)

    print(f"\n{'ipc':>4} {'student':>16} {'distilled':>14} {'random real':>14} {'gain (paired)':>14}")
    for ipc, student, result in rows:
        print(f"{ipc:>4} {student:>16} {_summary(result.method.top1):>14} {_summary(result.random_real.top1):>14} {str(result.gain):>14}")


def _summary(values) -> str:
    numbers = list(values.values())
    spread = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
    return f"{statistics.mean(numbers):.1f} ± {spread:.1f}"


if __name__ == "__main__":
    main()
