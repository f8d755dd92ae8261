"""torchrun with two CPU processes (gloo): recovery and relabelling equal one process bit for bit,
the data-parallel stages train, and only rank 0 writes artifacts (rank 1 only its own progress).
Resuming under torchrun: test_distributed_resume.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from scdd import distributed
from scdd.config import make_run_config
from scdd.data.base import DatasetInfo
from scdd.models import batchnorm
from scdd.models.build import build_backbone
from scdd.models.saved import load_model
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel
from scdd.training.ddp import wrap_ddp

ENTRY = Path(__file__).with_name("torchrun_entry.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
# Tiny budgets: 20 images (4 recovery batches, 2 per process), 3 relabel batches x 2 epochs.
SETTINGS = {
    "squeeze.pretrainer_options.epochs": 1,
    "squeeze.pretrainer_options.batch_size": 128,
    "align.aligner_options.epochs": 10,
    "recover.iterations": 8,
    "recover.batch_size": 5,
    "relabel.batch_size": 8,
    "posttrain.epochs": 2,
}


def test_shards_of_an_epoch_make_up_each_global_batch():
    order = torch.randperm(23, generator=torch.Generator().manual_seed(0))
    global_batch = 6
    for ranks in (2, 3):
        per_rank = global_batch // ranks
        parts = [distributed.shard_order(order, rank_index=r, ranks=ranks) for r in range(ranks)]
        assert len({len(part) for part in parts}) == 1  # equal steps on every rank
        padded = torch.cat([order, order[: (-len(order)) % ranks]])
        for k, start in enumerate(range(0, len(padded), global_batch)):
            together = torch.cat([part[k * per_rank : (k + 1) * per_rank] for part in parts])
            assert sorted(together.tolist()) == sorted(padded[start : start + global_batch].tolist())
    units = list(range(7))
    shares = [distributed.shard_units(units, rank_index=r, ranks=3) for r in range(3)]
    assert sorted(sum(shares, [])) == units and shares[0] == [0, 3, 6]


def test_single_process_helpers_are_the_identity(tmp_path):
    assert not distributed.is_distributed() and distributed.world_size() == 1 and distributed.is_main()
    order = torch.arange(5)
    assert distributed.shard_order(order) is order
    assert distributed.map_units([1, 2, 3], lambda x: x * 10) == [10, 20, 30]
    model = torch.nn.Linear(2, 2)
    assert wrap_ddp(model, torch.device("cpu")) is model
    assert distributed.on_main(lambda a, b: a + b, 1, b=2) == 3
    assert distributed.rank_parts() == ()


def test_sync_batchnorm_round_trip_keeps_layers_and_statistics():
    """The CUDA-only SyncBatchNorm conversion of the squeeze, exercised directly: converting and
    reverting gives the registered layer types back with the same parameters and running statistics."""
    info = DatasetInfo("toy", 10, 1, 16, (0.5,), (0.5,), tuple(str(i) for i in range(10)))
    backbone = build_backbone("resnet10-slim", info, {})
    for layer in backbone.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-1, 1)
    before = {key: value.clone() for key, value in backbone.state_dict().items()}
    plain_types = [type(m) for m in backbone.modules()]
    synced = batchnorm._swap_batchnorm(backbone, batchnorm._to_sync)
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    reverted = batchnorm.revert_sync_batchnorm(synced)
    assert [type(m) for m in reverted.modules()] == plain_types
    after = reverted.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def _recompute_on_one_process(config, run: Path, out: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process (OMP_NUM_THREADS=1)
    try:
        classifier = run / "align" / "classifier.safetensors"
        cpu = torch.device("cpu")
        recover(config.recover, classifier, out / "recover", device=cpu, seed=config.seed)
        relabel(config.relabel, classifier, out / "recover" / "distilled.safetensors", out / "relabel", device=cpu, seed=config.seed)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.numerics
def test_two_processes_equal_one_and_only_rank_zero_writes(tmp_path):
    run, logs = tmp_path / "run", tmp_path / "logs"
    logs.mkdir()
    options = "--device cpu --quiet --pretrainer supervised --backbone resnet10-slim --students resnet10-slim --ipc 2 --seed 3"
    arguments = ["run", "--out", str(run), *options.split(), *[f"--set={key}={value}" for key, value in SETTINGS.items()]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*TORCHRUN, str(ENTRY), str(logs), str(run), *arguments], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("teacher (aligned)") == 1  # printed by rank 0 only

    # (c) only rank 0 wrote artifacts; rank 1 wrote nothing but the recovery batches it computed (its progress)
    rank0 = (logs / "rank0.log").read_text().splitlines()
    rank1 = (logs / "rank1.log").read_text().splitlines()
    writes = [line for line in rank1 if not line.startswith("os.mkdir")]  # mkdir -p passes folders rank 0 made
    assert writes and all("/recover/.progress/recover-batches/.batch-c" in line for line in writes), rank1
    written = "\n".join(rank0)
    for name in ("manifest.json", "distilled.safetensors", "soft_labels.safetensors", "student-resnet10-slim", "report.html"):
        assert name in written

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["processes"] == 2
    assert all(stage["status"] == "done" for stage in manifest["stages"].values())
    assert manifest["stages"]["recover"]["progress"] == {"units_computed": 4}  # both processes' batches
    assert manifest["stages"]["posttrain"]["progress"] == {"epochs_trained": 2}  # counted once, by rank 0

    # (a) recovered images and soft labels: bit-identical to one process with the same config and seed
    config = make_run_config(manifest["config"])
    assert config.seed == 3 and config.recover.batch_size == 5
    reference = tmp_path / "one"
    _recompute_on_one_process(config, run, reference)
    for artifact in ("recover/distilled.safetensors", "recover/trajectory.safetensors", "relabel/soft_labels.safetensors"):
        two, one = load_file(run / artifact), load_file(reference / artifact)
        assert two.keys() == one.keys()
        for key in one:
            assert torch.equal(two[key], one[key]), f"{artifact}: {key} differs"
    assert load_file(run / "recover/distilled.safetensors")["images"].shape[0] == 20

    # (b) the data-parallel linear probe learned (10 classes: chance is 10%), the DDP student is a valid model
    assert manifest["stages"]["align"]["metrics"]["teacher_heldout_top1"] > 40
    student, record = load_model(run / "posttrain" / "student-resnet10-slim.safetensors", "classifier")
    assert record.architecture == "resnet10-slim"
    assert all(torch.isfinite(p).all() for p in student.parameters())
    assert manifest["metrics"]["students"]["resnet10-slim"]["top1"] >= 0
