"""Every registered pretrainer on the embedded data: linear-probe held-out top-1 of its backbone next to
a randomly initialised backbone's, with wall time.

Each pretrainer squeezes with the dataset's preset budget (the budget `scdd run` uses), then the align
stage (linear probe on the frozen backbone, preset settings) scores the backbone on the real held-out
split. The random baseline is the same architecture, freshly initialised, probed the same way.

    python benchmarks/pretrainers.py
    python benchmarks/pretrainers.py --pretrainers swav,dino --out /tmp/pretrainers
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scdd.config import make_run_config
from scdd.data.loading import load_dataset
from scdd.models.build import build_backbone
from scdd.models.saved import ModelRecord, save_model
from scdd.registry import get_component, get_registry
from scdd.run_folder import prepare_out_dir
from scdd.runtime import derive_seed, resolve_device, seed_everything
from scdd.stages.align import align
from scdd.stages.squeeze import squeeze


def random_backbone(config, data, folder: Path) -> Path:
    """A freshly initialised backbone artifact, seeded as the squeeze stage seeds its initialisation."""
    seed_everything(derive_seed(config.seed, "squeeze", "init"))
    backbone = build_backbone(config.squeeze.architecture, data.info, config.squeeze.architecture_options)
    record = ModelRecord(
        kind="backbone",
        architecture=get_component("architecture", config.squeeze.architecture).name,
        architecture_options=dict(config.squeeze.architecture_options),
        dataset=data.info,
        extra={"pretrainer": "random-init"},
    )
    return save_model(folder / "backbone.safetensors", backbone.eval(), record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrainers", help="comma-separated names (default: every registered pretrainer)")
    parser.add_argument("--out", type=Path, help="folder for the artifacts (default: a temporary folder)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-random", action="store_true", help="skip the random-init baseline (e.g. when split over processes)")
    args = parser.parse_args()

    names = args.pretrainers.split(",") if args.pretrainers else get_registry().names("pretrainer")
    base = make_run_config({"device": args.device, "seed": args.seed})
    device = resolve_device(base.device)
    data = load_dataset(base)
    out = prepare_out_dir(args.out, overwrite=False) if args.out else Path(tempfile.mkdtemp(prefix="scdd-pretrainers-"))
    print(
        f"dataset {data.info.name}: {len(data.train)} train / {len(data.val)} held out; "
        f"backbone {base.squeeze.architecture}; device {device}; artifacts in {out}",
        flush=True,
    )

    started = time.perf_counter()
    random_top1 = float("nan")
    if not args.no_random:
        baseline = align(base.align, random_backbone(base, data, out / "random"), data, out / "random", device=device, seed=base.seed)
        random_top1 = baseline.metrics["teacher_heldout_top1"]
        print(f"random init: probe top-1 {random_top1:.1f}% (probe {baseline.seconds:.0f} s)", flush=True)

    rows = []
    for name in names:
        config = make_run_config({"device": args.device, "seed": args.seed, "squeeze": {"pretrainer": name}})
        canonical = get_component("pretrainer", name).name
        squeezed = squeeze(config.squeeze, data, out / canonical, device=device, seed=config.seed)
        aligned = align(config.align, squeezed.artifacts["backbone"], data, out / canonical, device=device, seed=config.seed)
        losses = squeezed.metrics["loss_per_epoch"]
        top1 = aligned.metrics["teacher_heldout_top1"]
        rows.append((canonical, len(losses), losses[0], losses[-1], squeezed.seconds, aligned.seconds, top1))
        print(
            f"{canonical}: probe top-1 {top1:.1f}%  squeeze {squeezed.seconds:.0f} s  loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True
        )

    print(
        f"\n{'pretrainer':<12} {'epochs':>6} {'loss first→last':>18} {'squeeze s':>10} {'probe s':>8} "
        f"{'probe top-1':>12} {'random init':>12} {'gain':>7}"
    )
    for name, epochs, first, last, squeeze_s, probe_s, top1 in rows:
        print(
            f"{name:<12} {epochs:>6} {f'{first:.3f}→{last:.3f}':>18} {squeeze_s:>10.0f} {probe_s:>8.0f} "
            f"{top1:>11.1f}% {random_top1:>11.1f}% {top1 - random_top1:>+6.1f}"
        )
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
