"""Soft-label storage against student accuracy: fp32, fp16, top-K (K = 1, 3, 5) and online labels.

Part 1 takes a finished run's teacher and distilled set, relabels it once per encoding (same seed,
so the same crops), post-trains the same student on each and prints top-1 next to the label bytes
per image per epoch (the encoding's own count and the measured size of the stored shards, crop
parameters included). Online labels (teacher run during post-training, nothing stored) are the
last row; every row is mean ± std over ``--seeds`` student seeds.

Part 2 measures storage for a 1000-class teacher from the real byte sizes of stored shards:
a random-weight 1000-class classifier labels ``--images`` random 32 px images for ``--big-epochs``
epochs in fp32, fp16 and top-10 (sizes do not depend on the teacher's weights).

    nice -n 10 python benchmarks/label_storage.py --run /tmp/pt-run --out /tmp/labels --epochs 100 --seeds 2
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import torch

from scdd.artifacts import load_tensors, save_tensors
from scdd.config import make_run_config
from scdd.data.base import DatasetInfo
from scdd.data.loading import load_dataset
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model
from scdd.run_folder import prepare_out_dir
from scdd.runtime import resolve_device
from scdd.stages.common import info_dict
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.relabel import relabel

ENCODINGS = {
    "fp32": {"precision": "fp32"},
    "fp16": {"precision": "fp16"},
    "top-1": {"label_topk": 1},
    "top-3": {"label_topk": 3},
    "top-5": {"label_topk": 5},
    "online": {"mode": "online"},
}


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def small_dataset_table(args, device) -> None:
    teacher = args.run / "align" / "classifier.safetensors"
    distilled = next(
        p for p in (args.run / "recover" / "distilled.safetensors", args.run / "coreset" / "distilled.safetensors") if p.is_file()
    )
    dataset = load_tensors(teacher, "classifier")[1]["dataset"]["name"]
    overrides = {"dataset": dataset, "posttrain": {"students": [args.student], "runs": args.seeds}}
    if args.epochs:
        overrides["posttrain"]["epochs"] = args.epochs
    config = make_run_config(overrides)
    data = load_dataset(config)
    print(f"student {args.student}, {config.posttrain.epochs} epochs, T {config.posttrain.temperature}, {args.seeds} seed(s)", flush=True)
    rows = []
    for name, options in ENCODINGS.items():
        relabel_config = dataclasses.replace(config.relabel, **options)
        folder = args.out / name
        labels = relabel(relabel_config, teacher, distilled, folder / "labels", device=device, seed=config.seed)
        soft = labels.artifacts["soft_labels"]
        trained = posttrain(config.posttrain, distilled, soft, folder / "students", device=device, seed=config.seed)
        (summary,) = evaluate(trained.artifacts, data, device=device).metrics.values()
        top1 = summary.get("top1_runs", [summary["top1"]])
        metrics = labels.metrics
        rows.append(
            (
                name,
                metrics["label_bytes_per_image_per_epoch"],
                metrics.get("crop_bytes_per_image_per_epoch", 0),
                metrics.get("stored_bytes_per_image_per_epoch", 0.0),
                cell(top1),
            )
        )
        print(f"  {name}: top-1 {cell(top1)}", flush=True)
    print(f"\nLabel storage vs student top-1 ({dataset}, {config.posttrain.epochs} epochs)")
    print("| labels | label B/img/epoch | + crop params B | on disk B/img/epoch | student top-1 (%) |\n|---|---:|---:|---:|---:|")
    for name, label_bytes, crop_bytes, disk, top1 in rows:
        print(f"| {name} | {label_bytes} | {crop_bytes} | {disk:.1f} | {top1} |")


def thousand_class_sizes(args, device) -> None:
    folder = args.out / "imagenet-sized"
    classes, size = 1000, 32
    info = DatasetInfo("synthetic-1000", classes, 3, size, (0.5,) * 3, (0.25,) * 3, tuple(map(str, range(classes))))
    torch.manual_seed(0)
    teacher = save_model(
        folder / "teacher.safetensors", build_classifier("resnet10-slim", info), ModelRecord("classifier", "resnet10-slim", {}, info, {})
    )
    images = torch.rand(args.images, 3, size, size, generator=torch.Generator().manual_seed(0))
    distilled = save_tensors(
        folder / "distilled.safetensors",
        {"images": images, "labels": torch.arange(args.images) % classes},
        {"kind": "distilled", "dataset": info_dict(info), "ipc": max(1, args.images // classes), "source": "random"},
    )
    config = make_run_config({"dataset": "mnist5k"}).relabel
    sizes = {}
    for name, options in {"fp32": {}, "fp16": {"precision": "fp16"}, "top-10": {"label_topk": 10}}.items():
        relabel_config = dataclasses.replace(config, epochs=args.big_epochs, **options)
        result = relabel(relabel_config, teacher, distilled, folder / name, device=device, seed=0)
        files = sorted((folder / name).glob("soft_labels*.safetensors"))
        sizes[name] = (sum(f.stat().st_size for f in files), result.metrics["label_bytes_per_image_per_epoch"])
    cells = args.images * args.big_epochs
    print(f"\n1000-class teacher: {args.images} images x {args.big_epochs} epochs, measured shard sizes")
    print("| labels | label B/img/epoch | shard bytes | on disk B/img/epoch | fp32 / this |\n|---|---:|---:|---:|---:|")
    for name, (total, label_bytes) in sizes.items():
        print(f"| {name} | {label_bytes} | {total} | {total / cells:.1f} | {sizes['fp32'][0] / total:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished `scdd run` folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--student", default="resnet10-slim")
    parser.add_argument("--epochs", type=int, help="post-training epochs (default: the run's preset)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--images", type=int, default=1000, help="images for the 1000-class storage measurement")
    parser.add_argument("--big-epochs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (1 is fastest on a busy shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    prepare_out_dir(args.out, overwrite=False)
    thousand_class_sizes(args, device)
    small_dataset_table(args, device)


if __name__ == "__main__":
    main()
