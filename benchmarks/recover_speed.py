"""Seconds per recovery iteration against the floor: a bare forward + backward of the same model.

The model is a ResNet-18 (CIFAR-style stem) at 32x32 with 100 classes, batch 100, on the CPU by
default (``--device cuda`` with ``--autocast`` / ``--channels-last`` checks the GPU path).
The floor is what any input-gradient method must pay per step: eval-mode forward of the frozen
model on the batch, cross-entropy, backward to the input pixels. A recovery iteration is the real
engine (``BatchRecovery.run``): random view (crop + flip + jitter), forward with the matcher's BN
statistics, L_CE + α·L_BN, backward, Adam step, cosine schedule, clipping, trajectory logging.

Both are measured in one process, after warm-up, interleaved repetition by repetition (the
machine is shared, so timings drift); the medians and their ratio are printed. Target: ≤ 1.05.

    python benchmarks/recover_speed.py                      # 5 repetitions of 2 iterations each
    python benchmarks/recover_speed.py --repeats 9 --threads 2 --matcher bn
    python benchmarks/recover_speed.py --device cuda --autocast --channels-last --iterations 50
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
import torch.nn.functional as F

from scdd.data.base import DatasetInfo
from scdd.models.build import build_classifier
from scdd.progress import SILENT
from scdd.recovery.config import RecoverConfig
from scdd.recovery.engine import BatchRecovery, recovery_batches
from scdd.recovery.monitor import LossMonitor
from scdd.registry import get_component

INFO = DatasetInfo(
    name="cifar-like",
    num_classes=100,
    channels=3,
    image_size=32,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    class_names=tuple(str(i) for i in range(100)),
)


def teacher(architecture: str, channels_last: bool, device: torch.device) -> torch.nn.Module:
    """A ResNet classifier with BN running statistics from a few batches of noise, frozen, eval mode."""
    torch.manual_seed(0)
    model = build_classifier(architecture, INFO).to(device)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(100, 3, 32, 32, device=device))
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


class Clock:
    """Wall-clock and process-CPU seconds of a block, per iteration (CUDA work finished at both ends)."""

    def __init__(self, iterations: int, device: torch.device) -> None:
        self.iterations, self.device = iterations, device

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> "Clock":
        self._sync()
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.wall = (time.perf_counter() - self.wall) / self.iterations
        self.cpu = (time.process_time() - self.cpu) / self.iterations


def floor_seconds(model, batch: torch.Tensor, targets: torch.Tensor, iterations: int, memory_format, autocast: bool) -> Clock:
    """Seconds per bare forward + backward (to the input) of ``model`` on ``batch``, under the same autocast."""
    pixels = batch.clone().requires_grad_(True)
    with Clock(iterations, batch.device) as clock:
        for _ in range(iterations):
            with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model.head(model.backbone(pixels.contiguous(memory_format=memory_format)))
            loss = F.cross_entropy(logits.float(), targets)
            loss.backward()
            pixels.grad = None
    return clock


def recovery_seconds(engine: BatchRecovery, members, iterations: int) -> Clock:
    """Seconds per iteration of the real recovery loop on one batch of ``len(members)`` images."""
    monitor = LossMonitor(SILENT.task("recover", iterations), ("ce", "bn"), engine.device, every=25, stage="recover")
    with Clock(iterations, engine.device) as clock:
        engine.run(members, monitor)
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="resnet18")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=2, help="iterations per timed repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 avoids thread thrashing on a shared machine)")
    parser.add_argument("--matcher", default="imbalanced-bn")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--autocast", action="store_true", help="bfloat16 autocast of the forward passes (both sides)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = RecoverConfig(
        matcher=args.matcher, iterations=args.iterations, batch_size=args.batch,
        channels_last=args.channels_last, autocast=args.autocast,
    )
    model = teacher(args.architecture, args.channels_last, device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    members = recovery_batches(INFO.num_classes, -(-args.batch // INFO.num_classes), args.batch)[0]
    targets = torch.tensor([label for label, _ in members], device=device)
    batch = torch.randn(len(members), 3, 32, 32, device=device)
    matcher = get_component("matcher", config.matcher).build(config.matcher_options)
    engine = BatchRecovery(model, matcher, INFO, config, device, seed=0)

    matcher.attach(model)
    recovery_seconds(engine, members, 1)  # warm-up
    matcher.detach()
    floor_seconds(model, batch, targets, 1, memory_format, args.autocast)

    floors, recoveries = [], []
    for repeat in range(args.repeats):
        floors.append(floor_seconds(model, batch, targets, args.iterations, memory_format, args.autocast))
        matcher.attach(model)
        recoveries.append(recovery_seconds(engine, members, args.iterations))
        matcher.detach()
        print(
            f"repeat {repeat + 1}/{args.repeats}: floor {floors[-1].wall:.3f} s/iter ({floors[-1].cpu:.3f} CPU), "
            f"recovery {recoveries[-1].wall:.3f} s/iter ({recoveries[-1].cpu:.3f} CPU)",
            flush=True,
        )

    print(f"model {args.architecture}, batch {len(members)} at 32x32, device {device}, CPU threads {args.threads}, "
          f"matcher {config.matcher}{', channels-last' if args.channels_last else ''}{', bf16 autocast' if args.autocast else ''}, {args.repeats} interleaved repeats of {args.iterations} iterations")
    for label, key in (("wall-clock", "wall"), ("process CPU", "cpu")):
        floor = statistics.median(getattr(clock, key) for clock in floors)
        recovery = statistics.median(getattr(clock, key) for clock in recoveries)
        ratios = [getattr(r, key) / getattr(f, key) for f, r in zip(floors, recoveries)]
        print(f"{label:>11}: floor (forward + backward) {floor:.3f} s/iter, recovery {recovery:.3f} s/iter, "
              f"ratio {recovery / floor:.3f} (median per-repeat ratio {statistics.median(ratios):.3f}; target <= 1.05)")
    print(f"settings: {dataclasses.asdict(config)}")


if __name__ == "__main__":
    main()
