"""Data-parallel runs launched by ``torchrun``: one process per device, one job per module.

``torchrun --nproc_per_node N -m scdd.cli ...`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in
every process; the first call into this module then joins the process group (gloo for CPU tensors,
NCCL for CUDA tensors when CUDA is present: one group serves both). Without those variables, or
with ``WORLD_SIZE=1``, nothing is initialised and every helper is the identity (a single process
behaves exactly as without this module).

What the stages use:

* ``shard_units(units)``: this rank's share of a list of independent work units (round-robin, so
  a rank's share depends only on (rank, world size, list)); ``map_units(units, fn)`` computes it
  and gathers every rank's results, in the list's order, on every rank (``gather_objects``).
* ``shard_order(order)`` / ``rank_batch_size(batch)`` / ``sharded_batches(...)``: the
  ``DistributedSampler`` split of one epoch's permutation: padded to a multiple of the world size
  by repeating its head, rank r takes positions ``r, r + N, …`` and uses batches of
  ``batch / N``, so the k-th batches of all ranks together are the k-th global batch.
  (``DistributedDataParallel`` around what trains is ``scdd.training.ddp``.)
* ``on_main(fn, ...)``: run ``fn`` (a write) on rank 0 only; every rank returns its result or
  raises its error, so the other ranks wait for the write.

Exit: ``session`` leaves the group and its threads; ``exit_process`` ends the process, without
interpreter finalisation if a gloo thread outlived the group (see ``gloo_threads``).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from scdd.data.base import ImageTensorDataset, iterate_batches, to_float_pixels
from scdd.errors import ConfigError

__all__ = [
    "exit_process",
    "gather_objects",
    "gloo_threads",
    "init",
    "is_distributed",
    "is_main",
    "launched",
    "map_units",
    "mean_across_ranks",
    "on_main",
    "rank",
    "rank_batch_size",
    "rank_device",
    "rank_parts",
    "session",
    "shard_order",
    "shard_units",
    "sharded_batches",
    "teardown",
    "world_size",
]

T = TypeVar("T")
R = TypeVar("R")


def _env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def launched() -> bool:
    """Whether this process was started by torchrun (or anything setting ``WORLD_SIZE``) with more than one process."""
    return _env_world_size() > 1


def init() -> bool:
    """Join the process group torchrun describes, once; returns whether this run is distributed.

    The backend is ``gloo`` without CUDA and ``cpu:gloo,cuda:nccl`` with it (object collectives and
    CPU tensors over gloo, CUDA tensors over NCCL); with CUDA each process uses ``cuda:LOCAL_RANK``."""
    if not launched():
        return False
    if dist.is_initialized():
        return True
    # Lazy (7 s, and only a distributed run needs it): DistributedDataParallel's constructor imports
    # torch._dynamo; imported while a group exists, it keeps the gloo backend alive past
    # destroy_process_group, and a gloo worker thread left running at interpreter exit aborts the
    # process (std::terminate). Imported before the group exists, it holds nothing.
    import torch._dynamo  # noqa: F401

    use_cuda = torch.cuda.is_available() and dist.is_nccl_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="cpu:gloo,cuda:nccl" if use_cuda else "gloo")
    return True


def teardown() -> None:
    """Leave the process group (no-op when none was joined). Collecting garbage first frees
    DistributedDataParallel wrappers left in reference cycles, so the group's last owner is gone and
    its destruction joins its worker threads."""
    if launched():
        if dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()


GLOO_THREAD_NAMES = ("pt_gloo_runloop", "gloo_tcp_loop")


def gloo_threads() -> list[str]:
    """Names of this process's gloo worker and transport threads still running (Linux's
    ``/proc/self/task``; none where that does not exist)."""
    names = []
    for comm in Path("/proc/self/task").glob("*/comm"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            names.append(comm.read_text().strip())
    return [name for name in names if name in GLOO_THREAD_NAMES]


def exit_process(status: int) -> None:
    """End a torchrun process with ``status`` after ``teardown``. If a gloo thread is still running
    (a plugin kept a group or DDP wrapper alive), interpreter finalisation could race it to a
    std::terminate, so the process flushes its output and ends at once (``os._exit``), with one line."""
    leftover = gloo_threads()
    if not leftover:
        sys.exit(status)
    print(
        f"warning: gloo threads still running after leaving the process group ({', '.join(leftover)}); "
        "exiting without interpreter finalisation",
        file=sys.stderr,
    )
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


@contextlib.contextmanager
def session() -> Iterator[bool]:
    """Join the group on entry (when launched), leave it on exit, even on errors."""
    try:
        yield init()
    finally:
        teardown()


def is_distributed() -> bool:
    return launched() and init()


def world_size() -> int:
    return _env_world_size() if is_distributed() else 1


def rank() -> int:
    return int(os.environ.get("RANK", "0")) if is_distributed() else 0


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes artifacts and prints."""
    return rank() == 0


def rank_device(device: torch.device) -> torch.device:
    """``cuda`` without an index becomes ``cuda:LOCAL_RANK`` in a distributed run; anything else is kept."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def rank_parts() -> tuple[object, ...]:
    """Extra seed parts for per-rank random streams (augmentations): none in a single process, so
    its streams stay as they are; ``("rank", r)`` when distributed, so ranks draw different views."""
    return ("rank", rank()) if is_distributed() else ()


# ----------------------------------------------------------------------------- independent units


def shard_units(units: Sequence[T], *, rank_index: int | None = None, ranks: int | None = None) -> list[T]:
    """This rank's units: positions ``rank, rank + N, …`` of ``units`` (all of them in a single process).
    ``rank_index`` / ``ranks`` default to this process's."""
    return list(units[_rank_or(rank_index) :: ranks or world_size()])


def _rank_or(rank_index: int | None) -> int:
    return rank() if rank_index is None else rank_index


def map_units(units: Sequence[T], fn: Callable[[T], R]) -> list[R]:
    """``[fn(u) for u in units]``, each rank computing its ``shard_units`` share; every rank gets all
    results in ``units``' order. Results must pickle (tensors travel bit for bit)."""
    if not is_distributed():
        return [fn(unit) for unit in units]
    size, me = world_size(), rank()
    gathered = gather_objects([fn(unit) for unit in units[me::size]])
    results: list[Any] = [None] * len(units)  # every place is filled below
    for source, values in enumerate(gathered):
        results[source::size] = values
    return results


def gather_objects(value: T) -> list[T]:
    """Every rank's ``value`` (picklable; tensors travel bit for bit), in rank order, on every rank;
    ``[value]`` in a single process."""
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def on_main(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` on rank 0 only; the other ranks wait and return the same value, or
    raise the same error, so a failed write stops every rank alike."""
    if not is_distributed():
        return fn(*args, **kwargs)
    message: list[Any] = [None]
    if is_main():
        try:
            message[0] = (True, fn(*args, **kwargs))
        except Exception as error:  # handed to the other ranks, then raised here too
            message[0] = (False, error)
    dist.broadcast_object_list(message, src=0)
    ok, value = message[0]
    if not ok:
        raise value
    return value


def mean_across_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over ranks (itself in a single process)."""
    if not is_distributed():
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world_size()


# ----------------------------------------------------------------------------- data-parallel training


def rank_batch_size(batch_size: int) -> int:
    """Per-rank batch: the global batch over the world size (which must divide it)."""
    size = world_size()
    if batch_size % size:
        raise ConfigError(f"batch size {batch_size} is not divisible by {size} processes; choose a multiple of {size}")
    return batch_size // size


def shard_order(order: torch.Tensor, *, rank_index: int | None = None, ranks: int | None = None) -> torch.Tensor:
    """This rank's part of one epoch's order (``DistributedSampler``'s split): padded by repeating
    its head to a multiple of the world size, then every N-th position from the rank's own.
    ``rank_index`` / ``ranks`` default to this process's."""
    size = ranks or world_size()
    if size == 1:
        return order
    padding = (-len(order)) % size
    if padding:
        order = torch.cat([order, order[:padding]])
    return order[_rank_or(rank_index) :: size]


def sharded_batches(
    dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``scdd.data.base.iterate_batches`` with this rank's part of each global batch (batches of
    ``batch_size / N``); in a single process it is ``iterate_batches`` itself."""
    if world_size() == 1:
        yield from iterate_batches(dataset, batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)
        return
    per_rank = rank_batch_size(batch_size)
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if drop_last and n >= batch_size:
        order = order[: n - n % batch_size]
    mine = shard_order(order)
    batches = [mine[start : start + per_rank] for start in range(0, len(mine), per_rank)]
    if isinstance(dataset, ImageTensorDataset):
        for index in batches:
            yield dataset.batch(index)
        return
    for images, labels in DataLoader(dataset, batch_sampler=[index.tolist() for index in batches]):
        yield to_float_pixels(images), labels.long()
