"""What keeping resumable progress costs: post-training and recovery with and without a progress scope.

Post-training trains a fresh student on distilled images (hard labels, so only the student loop is
timed) once without progress and once inside ``progress_scope`` (a safetensors checkpoint of
student, AdamW state, schedule and generators after each epoch, at most ``SAVE_SHARE`` of the time);
recovery runs the real engine, which in a scope writes one file per finished batch. Runs alternate
after a warm-up, in alternating order (the machine is shared, so timings drift); the medians and the overhead in percent are printed.

    python benchmarks/resume_overhead.py                       # resnet18 student, 40 images at 28 px, 8 epochs
    python benchmarks/resume_overhead.py --student resnet10-slim --epochs 20 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from scdd.data.base import DatasetInfo
from scdd.distilled import DistilledSet
from scdd.models.build import build_classifier
from scdd.recovery.config import RecoverConfig
from scdd.recovery.engine import synthesize
from scdd.resume.scope import progress_scope
from scdd.stages.posttrain import PosttrainConfig, train_student
from scdd.training import EpochCheckpoint, make_optimizer

INFO = DatasetInfo("mnist-like", 10, 1, 28, (0.1307,), (0.3081,), tuple(str(i) for i in range(10)), False)


def timed(action, folder: Path | None) -> float:
    start = time.perf_counter()
    if folder is None:
        action()
    else:
        with progress_scope(folder):
            action()
    return time.perf_counter() - start


def checkpoint_cost(student: str) -> tuple[float, int]:
    """Median seconds of one epoch checkpoint of ``student`` with a stepped AdamW, and its size in bytes."""
    model = build_classifier(student, INFO)
    optimizer = make_optimizer("adamw", model.parameters(), lr=1e-3)
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    optimizer.step()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = EpochCheckpoint(Path(folder) / "t.safetensors", identity={}, modules={"m": model}, optimizer=optimizer)
        seconds = []
        for _ in range(5):
            start = time.perf_counter()
            checkpoint.save(1)
            seconds.append(time.perf_counter() - start)
        return statistics.median(seconds), checkpoint.path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="resnet18")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--recover-batches", type=int, default=5)
    parser.add_argument("--recover-iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")

    images = torch.rand(args.images, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    distilled = DistilledSet(images, torch.arange(args.images) % 10, INFO, args.images // 10, "benchmark")
    post = PosttrainConfig(students=(args.student,), epochs=args.epochs, labels="hard")
    teacher = build_classifier("resnet10-slim", INFO).eval()
    recover = RecoverConfig(ipc=args.recover_batches, batch_size=10, iterations=args.recover_iterations)
    loops = {
        f"posttrain {args.student}, {args.images} images, {args.epochs} epochs": lambda: train_student(
            args.student, distilled, None, post, device=device, seed=0
        ),
        f"recover resnet10-slim, {args.recover_batches} batches x {args.recover_iterations} iterations": lambda: synthesize(
            teacher, INFO, recover, device=device, seed=0
        ),
    }
    save_seconds, size = checkpoint_cost(args.student)
    print(f"one {args.student} + AdamW checkpoint: {size / 2**20:.1f} MiB, saved in {save_seconds:.3f} s (median of 5)", flush=True)
    for name, action in loops.items():
        action()  # warm-up: first-call costs (allocator, kernels) land in neither median
        plain, kept = [], []
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                order = [(plain, None), (kept, Path(folder) / "progress")]
                for times, target in order if repeat % 2 == 0 else order[::-1]:  # alternate which goes first
                    times.append(timed(action, target))
        base, scoped = statistics.median(plain), statistics.median(kept)
        print(
            f"{name}: without progress {base:.2f} s, with progress {scoped:.2f} s, overhead {100 * (scoped / base - 1):+.1f}%", flush=True
        )


if __name__ == "__main__":
    main()
