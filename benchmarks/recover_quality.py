"""How well a default recovery does on the embedded data: the share of recovered images that the
teacher itself puts in their target class, and how far L_BN falls (first step / last step).

Targets on a MoCo v3 linear-probed teacher (the mnist5k preset): ≥ 95% and ≥ 10×.

    python benchmarks/recover_quality.py --out /tmp/rq                               # squeeze + align first
    python benchmarks/recover_quality.py --out /tmp/rq --teacher RUN/align/classifier.safetensors
    python benchmarks/recover_quality.py --out /tmp/rq --teacher T --matcher bn --set recover.alpha_bn=0.1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from scdd._options import dotted_to_nested, parse_option_pairs
from scdd.artifacts import load_tensors
from scdd.config import make_run_config
from scdd.data.loading import load_dataset
from scdd.pipeline import train_teacher
from scdd.run_folder import prepare_out_dir
from scdd.runtime import resolve_device
from scdd.stages.recover import TRAJECTORY_FILE, recover


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, help="an aligned classifier; without it, squeeze and align run first")
    parser.add_argument("--pretrainer", default="moco-v3")
    parser.add_argument("--aligner", default="linear-probe")
    parser.add_argument("--matcher", default="imbalanced-bn")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    overrides = dotted_to_nested(parse_option_pairs(args.settings))
    overrides.setdefault("squeeze", {})["pretrainer"] = args.pretrainer
    overrides.setdefault("align", {})["aligner"] = args.aligner
    overrides.setdefault("recover", {})["matcher"] = args.matcher
    config = make_run_config({**overrides, "device": args.device, "seed": args.seed})
    device = resolve_device(config.device)
    out = prepare_out_dir(args.out, overwrite=False)

    teacher = args.teacher
    if teacher is None:
        data = load_dataset(config)
        _, aligned = train_teacher(config, data, out, device=device, seed=config.seed)
        teacher = aligned.artifacts["classifier"]
        print(f"teacher: {args.pretrainer} + {args.aligner}, held-out top-1 {aligned.metrics['teacher_heldout_top1']:.1f}%")

    result = recover(config.recover, teacher, out / "recover", device=device, seed=config.seed)
    trajectory, _ = load_tensors(out / "recover" / TRAJECTORY_FILE, "trajectory")
    metrics = result.metrics
    print(f"recover: {config.recover}")
    print(f"{metrics['images']} images, {result.seconds:.0f} s")
    steps = trajectory["loss_bn"].shape[1]
    marks = sorted({0, steps // 10, steps // 4, steps // 2, (3 * steps) // 4, steps - 1})
    print("step   " + "  ".join(f"{m + 1:>7d}" for m in marks))
    print("L_BN   " + "  ".join(f"{trajectory['loss_bn'][:, m].mean():7.3f}" for m in marks))
    print("L_CE   " + "  ".join(f"{trajectory['loss_ce'][:, m].mean():7.3f}" for m in marks))
    print(f"teacher puts {metrics['teacher_top1_on_distilled']:.1f}% of the recovered images in their class (target >= 95)")
    print(f"L_BN falls {metrics['loss_bn_drop']:.1f}x: {metrics['loss_bn_first']:.2f} -> {metrics['loss_bn_last']:.3f} (target >= 10)")


if __name__ == "__main__":
    main()
