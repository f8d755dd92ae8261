"""Data-free pruning (paper Sec. 3.5, Table 9) with a distilled set against a random real coreset.

Takes a finished `scdd run` folder: its aligned teacher is the model pruned (unless --model names
another classifier), its distilled set and soft labels drive the first pruning; IPC random real
training images per class, relabelled by the same teacher with the run's relabel settings, drive
the second, at the same ratio and with the same pruning settings. Both are measured on the real
held-out split; the table of each is printed.

    scdd run --out /tmp/run --quiet
    python benchmarks/prune_distilled_vs_real.py --run /tmp/run --out /tmp/prune --ratio 0.5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scdd._options import build_dataclass, parse_option_pairs
from scdd.config import make_run_config
from scdd.data.loading import load_dataset
from scdd.prune.config import PruneConfig
from scdd.prune.stage import prune
from scdd.run_folder import prepare_out_dir
from scdd.runtime import resolve_device
from scdd.stages.coreset import coreset_random
from scdd.stages.relabel import RelabelConfig, relabel

COLUMNS = ("top-1 %", "top-5 %", "parameters", "MFLOPs", "prunable channels")


def print_table(title: str, rows: dict) -> None:
    print(f"\n{title}")
    print(f"{'':<22}" + "".join(f"{column:>19}" for column in COLUMNS))
    for name, row in rows.items():
        values = (
            f"{row['top1']:.2f}",
            f"{row['top5']:.2f}",
            f"{row['parameters']:,}",
            f"{row['flops'] / 1e6:.2f}",
            str(row["prunable_channels"]),
        )
        print(f"{name:<22}" + "".join(f"{value:>19}" for value in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished `scdd run` folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="classifier to prune (default: the run's aligned teacher)")
    parser.add_argument("--ratio", type=float, default=PruneConfig.ratio)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a PruneConfig field, e.g. --set sparsity_epochs=50",
    )
    args = parser.parse_args()

    manifest = json.loads((args.run / "manifest.json").read_text())
    run_config = manifest["config"]
    data = load_dataset(make_run_config({"dataset": run_config["dataset"], "data_root": run_config["data_root"]}))
    device = resolve_device(args.device)
    out = prepare_out_dir(args.out, overwrite=False)
    teacher = args.run / "align" / "classifier.safetensors"
    model = args.model or teacher
    config = build_dataclass(PruneConfig, {**parse_option_pairs(args.settings), "ratio": args.ratio}, owner="prune")
    ipc = run_config["recover"]["ipc"]

    coreset = coreset_random(data, ipc, out / "coreset", seed=args.seed).artifacts["distilled"]
    relabel_config = RelabelConfig(**run_config["relabel"])
    coreset_labels = relabel(relabel_config, teacher, coreset, out / "coreset", device=device, seed=args.seed)
    inputs = {
        "distilled": (args.run / "recover" / "distilled.safetensors", args.run / "relabel" / "soft_labels.safetensors"),
        "random real": (coreset, coreset_labels.artifacts["soft_labels"]),
    }
    summary = {}
    for name, (images, labels) in inputs.items():
        result = prune(config, model, images, labels, data, out / name.replace(" ", "-"), device=device, seed=args.seed)
        rows = result.metrics["rows"]
        print_table(f"{name} set, IPC {ipc}, ratio {config.ratio:g}: {model}", rows)
        summary[name] = rows["pruned + fine-tuned" if config.finetune_epochs else "pruned"]["top1"]
    print("\ntop-1 after pruning: " + ", ".join(f"{name} {top1:.2f}%" for name, top1 in summary.items()))


if __name__ == "__main__":
    main()
