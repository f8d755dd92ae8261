"""Images per second of recovery, relabelling and post-training at the shapes users run, each against
its floor, and recovery against the official-style loop, in one process.

Shapes: CIFAR (ResNet-18 with the small stem, 32 px, 100 classes, batch 100) and ImageNet (ResNet-18
and ResNet-50, 224 px, 1000 classes, batches 50 and 100). Random-init models whose BN running
statistics come from a few batches of noise: speed does not depend on trained weights.

Per stage, scdd's own code path against its floor, in scdd's default layout (contiguous,
``scdd.runtime.memory_format``; ``--memory-format channels-last`` to time the other):
  recovery     ``BatchRecovery.run`` (view, forward with the matcher, L_CE + α·L_BN, backward, Adam,
               schedule, clipping)  vs  a bare forward + backward to the input of the same model and batch;
  relabel      crops rendered from the epoch's plan + the teacher's forward  vs  a forward on a batch in memory;
  post-train   ``TrainLoop`` over replayed crops and soft targets (Eq. 10, AdamW)  vs  a training step
               (forward, the same loss, backward, AdamW) on tensors already in memory.
The official-style loop (``official_recovery.py``) runs as published: NCHW, hooks, ``loss.item()`` each step.

Repeats are interleaved (floor, scdd, reference, floor, ...) and medians reported, because a shared
machine drifts; ``ratio_to_floor`` is the median of per-repeat ratios of seconds per image (1.0 = at
the floor). Peak memory per stage: the CUDA allocator's peak, else the process's peak RSS during the stage.

    python benchmarks/speed.py --quick                     # 2 CPU cores: all shapes in minutes (small ImageNet batches)
    python benchmarks/speed.py --shapes cifar --repeats 5 --json speed.json
    python benchmarks/speed.py --device cuda --json speed-gpu.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from official_recovery import OfficialRecovery

from scdd._options import MEMORY_FORMATS
from scdd.data.base import DatasetInfo
from scdd.labels import PlanSpec, SoftTargets, plan_epoch, render_crops, replay_batches, soft_label_loss
from scdd.models.build import build_classifier
from scdd.progress import SILENT
from scdd.recovery.config import RecoverConfig
from scdd.recovery.engine import BatchRecovery, Components, recovery_batches
from scdd.recovery.initializers import InitContext
from scdd.recovery.monitor import LossMonitor
from scdd.runtime import memory_format, place
from scdd.stages.posttrain import PosttrainConfig
from scdd.training import TrainLoop
from scdd.training.optim import make_optimizer


@dataclass(frozen=True)
class Shape:
    architecture: str
    image_size: int
    classes: int
    batch: int


SHAPES = {
    "cifar": Shape("resnet18", 32, 100, 100),
    "imagenet-r18-b50": Shape("resnet18", 224, 1000, 50),
    "imagenet-r18-b100": Shape("resnet18", 224, 1000, 100),
    "imagenet-r50-b50": Shape("resnet50", 224, 1000, 50),
    "imagenet-r50-b100": Shape("resnet50", 224, 1000, 100),
}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def info_of(shape: Shape) -> DatasetInfo:
    return DatasetInfo("speed", shape.classes, 3, shape.image_size, MEAN, STD, tuple(map(str, range(shape.classes))))


def teacher(shape: Shape, device: torch.device, layout: str) -> torch.nn.Module:
    """A frozen eval-mode classifier whose BN running statistics come from three batches of noise."""
    torch.manual_seed(0)
    model = place(build_classifier(shape.architecture, info_of(shape)), device, layout).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(min(shape.batch, 16), 3, shape.image_size, shape.image_size, device=device))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()


def seconds(device: torch.device, work: Callable[[], object]) -> tuple[float, float]:
    """Wall and process-CPU seconds of ``work()`` (the device's queue drained at both ends)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


def peak_mib(device: torch.device) -> float:
    """The peak memory since the last call: the CUDA allocator's, else the process's resident set (on Linux
    its high-water mark is reset through /proc/self/clear_refs; elsewhere the peak since the start)."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        torch.cuda.reset_peak_memory_stats(device)
        return peak
    try:
        status = Path("/proc/self/status").read_text()
        peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
        return peak
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def compare(device: torch.device, images: int, repeats: int, paths: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Each path once to warm up, then ``repeats`` interleaved timed runs; images/s and ratios to the floor,
    and the stage's peak memory (its busiest path's)."""
    peak_mib(device)  # the peak from here on
    for work in paths.values():
        work()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, work in paths.items():
            times[name].append(seconds(device, work))
    result: dict[str, float] = {}
    for name, runs in times.items():
        result[f"{name}_images_per_s"] = images / statistics.median(wall for wall, _ in runs)
        if name != "floor":
            result[f"{name}_ratio_to_floor"] = statistics.median(a[0] / f[0] for a, f in zip(runs, times["floor"], strict=False))
            result[f"{name}_cpu_ratio_to_floor"] = statistics.median(a[1] / f[1] for a, f in zip(runs, times["floor"], strict=False))
    result["peak_mib"] = peak_mib(device)
    return result


def recovery(shape: Shape, model: torch.nn.Module, device: torch.device, layout: str, iterations: int, repeats: int) -> dict[str, float]:
    info = info_of(shape)
    config = RecoverConfig(iterations=iterations, batch_size=shape.batch, memory_format=layout)
    members = recovery_batches(info.num_classes, -(-shape.batch // info.num_classes), shape.batch)[0]
    targets = torch.tensor([label for label, _ in members], device=device)
    parts = Components.build(config)
    parts.prepare(model, InitContext(info, config.ipc, 0, device, model))
    matcher = parts.matcher
    engine = BatchRecovery(model, parts, info, config, device, seed=0)
    pixels = torch.randn(shape.batch, 3, shape.image_size, shape.image_size, device=device, requires_grad=True)
    official_model = teacher(shape, device, "contiguous")  # as published: NCHW
    official = OfficialRecovery(official_model, size=shape.image_size, mean=MEAN, std=STD, jitter=shape.image_size // 7)

    def floor() -> None:
        for _ in range(iterations):
            loss = torch.nn.functional.cross_entropy(engine.logits(pixels), targets)
            (grad,) = torch.autograd.grad(loss, pixels)

    def scdd() -> None:
        matcher.attach(model)
        try:
            engine.run(members, LossMonitor(SILENT.task("recover", iterations), ("ce", "bn"), device, every=25, stage="recover"))
        finally:
            matcher.detach()

    result = compare(
        device, shape.batch * iterations, repeats, {"floor": floor, "scdd": scdd, "official": lambda: official.run(targets, iterations)}
    )
    result["speedup_vs_official"] = result["scdd_images_per_s"] / result["official_images_per_s"]
    return result


class InMemoryLabels:
    """One epoch's crop plan and teacher logits, served as the relabel stage's stored labels are."""

    def __init__(self, count: int, spec: PlanSpec, logits: torch.Tensor) -> None:
        self.epochs, self.plan, self.logits = 1, plan_epoch(count, 0, spec, seed=0), logits

    def epoch(self, epoch: int) -> tuple[object, SoftTargets]:
        return self.plan, SoftTargets(logits=self.logits)


def relabel_and_posttrain(
    shape: Shape, model: torch.nn.Module, device: torch.device, layout: str, steps: int, repeats: int
) -> dict[str, dict]:
    size, count = shape.image_size, shape.batch * steps
    distilled = torch.rand(count, 3, size, size)  # the distilled set, on the host as the stages load it
    spec = PlanSpec(crop_min_scale=0.08, hflip=True)
    plan = plan_epoch(count, 0, spec, seed=0)
    batches = torch.arange(count).split(shape.batch)
    in_memory = distilled[: shape.batch].to(device)

    @torch.no_grad()
    def relabel() -> torch.Tensor:
        return torch.cat([model(render_crops(distilled, plan, index, size, device)).float().cpu() for index in batches])

    @torch.no_grad()
    def relabel_floor() -> None:
        for _ in batches:
            model(in_memory)

    labelled = compare(device, count, repeats, {"floor": relabel_floor, "scdd": relabel})
    config = PosttrainConfig(students=(shape.architecture,), epochs=1, batch_size=shape.batch, temperature=4.0, memory_format=layout)
    student = place(build_classifier(shape.architecture, info_of(shape)), device, layout).train()
    labels = InMemoryLabels(count, spec, relabel().to(device))
    loop = TrainLoop("posttrain", config, student.parameters(), steps, device, epochs=10**9, count="epochs")
    order = torch.arange(count)
    epoch_batches = lambda epoch: replay_batches(labels, distilled, 0, order, shape.batch, image_size=size, device=device)  # noqa: E731
    optimizer = make_optimizer("adamw", student.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    fixed = labels.logits[: shape.batch]

    def posttrain() -> None:
        for batch in epoch_batches(0):
            value = soft_label_loss(student(batch[1]), batch[2], config.temperature)
            loop.optimizer.zero_grad(set_to_none=True)
            value.backward()
            loop.optimizer.step()
            loop.schedule.step()

    def posttrain_floor() -> None:
        for _ in batches:
            loss = soft_label_loss(student(in_memory), fixed, config.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    trained = compare(device, count, repeats, {"floor": posttrain_floor, "scdd": posttrain})
    return {"relabel": labelled, "posttrain": trained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, from {', '.join(SHAPES)}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iterations", type=int, default=5, help="recovery iterations / relabel and post-train batches per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="1 iteration, 1 repeat, ImageNet batches capped at 8 (2 CPU cores)")
    parser.add_argument("--memory-format", default="auto", choices=MEMORY_FORMATS, help="scdd's layout (auto: contiguous)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    iterations, repeats = (1, 1) if args.quick else (args.iterations, args.repeats)
    results: dict[str, dict] = {}
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        if args.quick and shape.image_size > 64:
            shape = Shape(shape.architecture, shape.image_size, shape.classes, min(shape.batch, 8))
        model = teacher(shape, device, args.memory_format)
        results[name] = {
            "shape": vars(shape),
            "recovery": recovery(shape, model, device, args.memory_format, iterations, repeats),
            **relabel_and_posttrain(shape, model, device, args.memory_format, iterations, repeats),
        }
        for stage in ("recovery", "relabel", "posttrain"):
            row = results[name][stage]
            extra = f", {row['speedup_vs_official']:.2f}x the official loop" if stage == "recovery" else ""
            print(
                f"{name:>18} {stage:>9}: {row['scdd_images_per_s']:9.1f} img/s, floor {row['floor_images_per_s']:9.1f} img/s, "
                f"ratio to floor {row['scdd_ratio_to_floor']:.2f} (CPU time {row['scdd_cpu_ratio_to_floor']:.2f}){extra}, "
                f"peak {row['peak_mib']:.0f} MiB",
                flush=True,
            )
    report = {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "memory_format": str(memory_format(device, args.memory_format)),
        "torch": torch.__version__,
        "iterations": iterations,
        "repeats": repeats,
        "quick": args.quick,
        "results": results,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
