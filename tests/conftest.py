from __future__ import annotations

import os

import pytest
import torch
from toy_models import TestArchitectures

from scdd.config import make_run_config
from scdd.data.base import DatasetSplits, ImageTensorDataset
from scdd.data.mnist5k import Mnist5kConfig, load_mnist5k
from scdd.pipeline import run_pipeline
from scdd.registry import plugin_state, reset_plugins

# One thread per pytest-xdist worker: two workers with two threads each on two cores spin-wait in OpenMP
# and run small models many times slower (a 30-step recovery took 61 s instead of 3 s on a shared machine).
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)

# Budgets small enough for CI, large enough that every stage does real work.
TINY = {
    "squeeze": {"pretrainer_options": {"epochs": 1, "batch_size": 128}},
    "align": {"aligner_options": {"epochs": 5, "optimizer": "adamw", "lr": 0.01, "weight_decay": 0.0}},
    "recover": {"ipc": 1, "iterations": 40},
    "posttrain": {"epochs": 5},
}


@pytest.fixture
def register_plugin():
    """Register in-process plugin objects for one test; unregistered (and the registry rebuilt) afterwards."""
    names = []

    def register(plugin, name):
        plugin_state().register(plugin, name)
        names.append(name)

    yield register
    for name in names:
        plugin_state().unregister(name)


@pytest.fixture
def test_architectures(register_plugin):
    """The toy architectures of toy_models.py, registered for one test."""
    register_plugin(TestArchitectures(), "test-architectures")


@pytest.fixture(autouse=True)
def _fresh_plugin_environment(monkeypatch):
    yield
    reset_plugins()


@pytest.fixture(scope="session")
def mnist():
    return load_mnist5k(Mnist5kConfig())


@pytest.fixture(scope="session")
def mnist_subset(mnist):
    """``mnist_subset(train, val, seed)``: fixed random subsets of both embedded splits (they are ordered by class)."""

    def pick(train: int, val: int, seed: int) -> DatasetSplits:
        gen = torch.Generator().manual_seed(seed)
        pick_train = torch.randperm(len(mnist.train), generator=gen)[:train]
        pick_val = torch.randperm(len(mnist.val), generator=gen)[:val]
        return DatasetSplits(
            mnist.info,
            ImageTensorDataset(mnist.train.images[pick_train], mnist.train.labels[pick_train]),
            ImageTensorDataset(mnist.val.images[pick_val], mnist.val.labels[pick_val]),
        )

    return pick


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One real end-to-end pipeline run with tiny budgets, shared by the tests that inspect its artifacts."""
    out = tmp_path_factory.mktemp("run") / "run"
    config = make_run_config({**TINY, "device": "cpu"})
    record = run_pipeline(config, out)
    return out, record
