"""The time plan: unit timing of real loops, extrapolation, the shortening suggestion, and no effect on the run."""

import time

import pytest
import tomllib
import torch
from click.testing import CliRunner
from test_idx_datasets import _family_files

from scdd.cli import cli
from scdd.config import make_run_config
from scdd.timeplan import estimate_run, shortening
from scdd.unit_clock import StageEstimate, TimePlan, unit_clock

CPU = torch.device("cpu")


def _sleepy_stage(setup: float, unit: float, total: int):
    def stage(progress):
        time.sleep(setup)
        task = progress.task("sleepy", total)
        for _ in range(total):
            time.sleep(unit)
            task.advance(1, loss=1.0)
        task.close()
        return "finished"

    return stage


def test_a_cut_loop_is_extrapolated_from_its_timed_units():
    started = time.perf_counter()
    estimate, result = unit_clock("stage", _sleepy_stage(0.05, 0.02, 500), CPU)
    assert time.perf_counter() - started < 1.0 and result is None  # cut after a few units, not 10 s of them
    assert estimate.units == 500 and 0.02 <= estimate.unit_seconds < 0.08  # a sleep takes at least its time
    assert 0.05 <= estimate.setup_seconds < 0.05 + 0.1  # the set-up and the first unit
    assert estimate.seconds == pytest.approx(estimate.setup_seconds + 499 * estimate.unit_seconds)
    whole, result = unit_clock("stage", _sleepy_stage(0.0, 0.01, 2), CPU, scale=3)  # too short to cut: timed whole
    assert result == "finished" and whole.units == 0 and 3 * 0.02 <= whole.seconds < 3 * 0.1


def test_every_stage_is_estimated_and_the_run_draws_the_same_numbers(mnist_subset):
    data = mnist_subset(300, 100, 0)
    overrides = {
        "device": "cpu",
        "squeeze": {"pretrainer_options": {"epochs": 3, "batch_size": 64}},
        "recover": {"ipc": 2, "iterations": 30, "initializer": "real"},  # a recovery that reads training images
        "posttrain": {"epochs": 40, "students": ["resnet10-slim", "resnet10-slim"], "runs": 2},
    }
    config = make_run_config(overrides)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    plan = estimate_run(config, data, CPU)
    assert torch.equal(torch.rand(3), expected)  # the process's generators are as they were
    assert [s.stage for s in plan.stages] == ["squeeze", "align", "recover", "relabel", "posttrain", "evaluate"]
    assert plan.stage("squeeze").units == 3 * (300 // 64)  # the loop's own step count
    assert plan.stage("recover").units == 30  # one batch of 20 images, 30 iterations
    posttrain = plan.stage("posttrain")  # TrainLoop counts post-training by epochs: the clock cuts it after a few
    assert posttrain.units == 2 * 40 and posttrain.what == "posttrain resnet10-slim; posttrain resnet10-slim"
    assert 0 < posttrain.fixed_seconds < posttrain.seconds  # set-up, x 2 runs: the part a budget does not scale
    half = plan.rescaled({"posttrain": 0.5}).stage("posttrain")
    assert half.units == 40 and half.seconds == pytest.approx(posttrain.fixed_seconds + (posttrain.seconds - posttrain.fixed_seconds) / 2)
    assert all(s.seconds > 0 for s in plan.stages) and plan.seconds == pytest.approx(sum(s.seconds for s in plan.stages))
    assert 0 < plan.cpu_seconds and 0 < plan.probe_cpu_seconds  # the process's CPU time, beside the wall time
    assert set(plan.to_json()["stages"]) == {s.stage for s in plan.stages}


def test_shortening_cuts_the_longest_stage_to_fit_an_hour():
    config = make_run_config({"squeeze": {"pretrainer_options": {"epochs": 100}}})
    plan = TimePlan("cpu", 2, [StageEstimate("squeeze", 7000.0), StageEstimate("recover", 600.0), StageEstimate("posttrain", 200.0)], 1.0)
    assert shortening(plan, config) == "--set squeeze.pretrainer_options.epochs=40"  # (3600 - 800) / 7000 of 100 epochs
    quick = TimePlan("cpu", 2, [StageEstimate("squeeze", 70.0)], 1.0)
    assert shortening(quick, config) is None


def test_plan_prints_the_estimate_and_a_recipe_and_runs_nothing(tmp_path):
    _family_files(tmp_path / "data", train=40, test=10, seed=5)
    args = [
        "run",
        "--plan",
        "--dataset",
        "fashion-mnist",
        "--data-root",
        str(tmp_path / "data"),
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "run"),
        "--ipc",
        "1",
        "--set",
        "squeeze.pretrainer_options.epochs=2",
        "--set",
        "recover.iterations=20",
    ]  # posttrain.epochs left to sizing: measured and fitted to the time
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    comments = [line for line in result.output.splitlines() if line.startswith("# ")]
    assert comments[0].startswith("# scdd run: fashion-mnist, 40 training images of 1x28x28 in 10 classes")
    assert "# settings sized to the data and the device (cpu; no preset applies):" in comments
    sized = [line.split()[1] for line in comments[2:] if line.startswith("#   ") and " = " in line]
    assert "posttrain.epochs" in sized and "recover.iterations" not in sized  # the command line's is not sizing's
    header = next(i for i, line in enumerate(comments) if line.startswith("# estimated wall time on this machine (cpu"))
    stages = [line.split()[1] for line in comments[header + 1 :] if line.startswith("#   ")]
    assert stages == ["squeeze", "align", "recover", "relabel", "posttrain", "evaluate", "total"]
    recipe = tomllib.loads(result.output)  # the rest is the resolved settings as a recipe file
    assert recipe["recover"]["iterations"] == 20 and 20 <= recipe["posttrain"]["epochs"] <= 200 and not (tmp_path / "run").exists()
