"""benchmarks/speed.py at a tiny shape: every stage runs against its floor (and recovery against the
official-style loop) through scdd's current APIs, and reports its speed and its own peak memory."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def speed(monkeypatch_module):
    monkeypatch_module.syspath_prepend(str(BENCHMARKS))  # speed.py imports official_recovery.py beside it
    spec = importlib.util.spec_from_file_location("speed", BENCHMARKS / "speed.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_stage_is_timed_against_its_floor_with_its_peak_memory(speed):
    cpu = torch.device("cpu")
    shape = speed.Shape("resnet18", 16, 10, 4)
    model = speed.teacher(shape, cpu, "auto")
    stages = {"recovery": speed.recovery(shape, model, cpu, "auto", 1, 1), **speed.relabel_and_posttrain(shape, model, cpu, "auto", 1, 1)}
    assert set(stages) == {"recovery", "relabel", "posttrain"}
    for row in stages.values():
        assert row["floor_images_per_s"] > 0 and row["scdd_images_per_s"] > 0
        assert row["scdd_ratio_to_floor"] > 0 and row["scdd_cpu_ratio_to_floor"] > 0
        assert row["peak_mib"] > 50  # a process holding torch and a ResNet-18 holds more than that
    assert stages["recovery"]["speedup_vs_official"] > 0
