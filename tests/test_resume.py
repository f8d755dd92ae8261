"""Resuming after interruption: a run killed with SIGKILL mid-recovery continues to bit-identical
artifacts without recomputing finished batches; training loops continue from their last epoch."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from scdd.cli import cli
from scdd.resume.scope import PROGRESS_FOLDER
from scdd.run_folder import open_run_folder, run_recorded_stage

RECOVERY_BATCHES = 10  # 10 classes x ipc 2, two images a batch
RUN_ARGS = (
    "--dataset imagefolder --device cpu --quiet --pretrainer supervised --backbone resnet10-slim --students resnet10-slim "
    "--set squeeze.pretrainer_options.epochs=2 --set squeeze.pretrainer_options.batch_size=32 "
    "--set align.aligner_options.epochs=2 --set align.aligner_options.augment=false "
    "--set recover.ipc=2 --set recover.batch_size=2 --set recover.iterations=20 "
    "--set posttrain.epochs=2 --set report.max_classes=2"
).split()
ARTIFACTS = [
    "squeeze/backbone.safetensors",
    "align/classifier.safetensors",
    "recover/distilled.safetensors",
    "recover/trajectory.safetensors",
    "relabel/soft_labels.safetensors",
    "posttrain/student-resnet10-slim.safetensors",
]


def make_image_folder(root: Path, train: int = 8, val: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for label in range(10):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                Image.fromarray((rng.random((16, 16)) * 60 + label * 18).astype(np.uint8)).save(folder / f"{index}.png")
    return root


def _command(out: Path, data: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "scdd.cli", "run", "--out", str(out), "--data-root", str(data), *RUN_ARGS, *extra]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every run: the same float sums


def _stages(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())["stages"]


def _content(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    return load_file(str(path)), metadata


def _kill_and_rerun(root: Path) -> dict:
    """An uninterrupted run, and the same command killed mid-recovery and run again."""
    data = make_image_folder(root / "data")
    (data / "train" / "c3" / "broken.png").write_bytes(b"not a png")  # skipped and counted
    whole = subprocess.run(_command(root / "whole", data), env=_env(), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr

    interrupted = root / "interrupted"
    units = interrupted / "recover" / ".progress" / "recover-batches"
    process = subprocess.Popen(_command(interrupted, data), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(units.glob("*.safetensors"))) >= 1:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-recovery"
    finished = sorted(p.name for p in units.glob("*.safetensors"))
    stages_at_kill = _stages(interrupted)
    squeezed_mtime = (interrupted / ARTIFACTS[0]).stat().st_mtime_ns
    resumed = subprocess.run(_command(interrupted, data), env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    return {
        "root": root,
        "data": data,
        "whole": root / "whole",
        "interrupted": interrupted,
        "finished": finished,
        "stages_at_kill": stages_at_kill,
        "squeezed_mtime": squeezed_mtime,
    }


@pytest.mark.numerics
def test_run_killed_mid_recovery_resumes(tmp_path):
    """One test (one pair of runs, on one worker) checking everything the killed and rerun run shows."""
    runs = _kill_and_rerun(tmp_path)
    _check_bit_identical_artifacts(runs)
    _check_loss_curves_are_whole(runs)
    _check_finished_work_is_not_recomputed(runs)
    _check_undecodable_image_is_skipped_and_counted(runs)
    _check_other_settings_are_refused_in_one_line(runs)
    _check_resume_option_continues_with_recorded_settings(runs)


def _check_bit_identical_artifacts(runs):
    assert 1 <= len(runs["finished"]) < RECOVERY_BATCHES
    for name in ARTIFACTS:
        whole, resumed = _content(runs["whole"] / name), _content(runs["interrupted"] / name)
        assert whole[1] == resumed[1], name
        assert whole[0].keys() == resumed[0].keys(), name
        for key in whole[0]:
            assert torch.equal(whole[0][key], resumed[0][key]), f"{name}:{key}"


def _timeless_rows(path: Path) -> list[list[str]]:
    return [row.split(",")[:-1] for row in path.read_text().splitlines()]  # without the wall-clock seconds


def _check_loss_curves_are_whole(runs):
    """The rerun reports the recovery batches it reused again: its curves equal the uninterrupted run's."""
    for stage in ("squeeze", "align", "recover", "posttrain"):
        whole, resumed = runs["whole"] / stage / "curves.csv", runs["interrupted"] / stage / "curves.csv"
        assert _timeless_rows(whole) == _timeless_rows(resumed), stage
    assert len(_timeless_rows(runs["whole"] / "recover" / "curves.csv")) > RECOVERY_BATCHES * 2


def _check_finished_work_is_not_recomputed(runs):
    before, after = runs["stages_at_kill"], _stages(runs["interrupted"])
    assert before["squeeze"]["status"] == before["align"]["status"] == "done"
    assert before["recover"]["status"] == "running"
    assert after["squeeze"]["attempt"] == after["align"]["attempt"] == 1  # skipped on the rerun
    assert (runs["interrupted"] / ARTIFACTS[0]).stat().st_mtime_ns == runs["squeezed_mtime"]
    done = len(runs["finished"])
    assert after["recover"]["attempt"] == 2
    assert after["recover"]["progress"] == {"units_computed": RECOVERY_BATCHES - done, "units_reused": done}
    assert _stages(runs["whole"])["recover"]["progress"] == {"units_computed": RECOVERY_BATCHES}
    assert not (runs["interrupted"] / "recover" / ".progress").exists()  # progress goes once the stage is done


def _check_undecodable_image_is_skipped_and_counted(runs):
    manifest = json.loads((runs["interrupted"] / "manifest.json").read_text())
    assert manifest["data"]["skipped_files"] == 1 and "broken.png: cannot decode image" in manifest["data"]["skipped"][0]


def test_stage_command_continues_or_refuses(tmp_path):
    """A single-stage command on its own --out: done once, returned at once the second time, refused with other settings."""
    data = make_image_folder(tmp_path / "data", train=3, val=1)
    base = ["coreset", "--dataset", "imagefolder", "--data-root", str(data), "--out", str(tmp_path / "c"), "--quiet"]
    first = CliRunner().invoke(cli, [*base, "--ipc", "2"])
    assert first.exit_code == 0, first.output
    written = (tmp_path / "c" / "distilled.safetensors").stat().st_mtime_ns
    again = CliRunner().invoke(cli, [*base, "--ipc", "2"])
    assert again.exit_code == 0 and (tmp_path / "c" / "distilled.safetensors").stat().st_mtime_ns == written
    other = CliRunner().invoke(cli, [*base, "--ipc", "3"])
    assert other.exit_code != 0 and "recover.ipc: 2 -> 3" in other.output
    kept, mine = _progress_file(tmp_path / "c"), _progress_file(tmp_path / "c" / "mine")
    fresh = CliRunner().invoke(cli, [*base, "--ipc", "3", "--overwrite"])
    assert fresh.exit_code == 0, fresh.output
    assert json.loads((tmp_path / "c" / ".scdd-stage.json").read_text())["config"]["recover"]["ipc"] == 3
    assert not kept.exists() and mine.is_file()  # the stage's own progress goes, a user's folder's stays


def _progress_file(folder: Path) -> Path:
    path = folder / ".progress" / "unit.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"kept progress")
    return path


def test_overwrite_deletes_only_the_progress_of_the_runs_stage_folders(tmp_path):
    """--overwrite on a run folder discards the progress of scdd's stage folders, never a progress
    folder of the user's own (``mine/.progress``, ``<out>/.progress``)."""
    out = tmp_path / "run"
    ours = [_progress_file(out / stage) for stage in ("squeeze", "coreset", "posttrain")]
    theirs = [_progress_file(out / "mine"), _progress_file(out)]
    (out / "manifest.json").write_text("{}")
    assert open_run_folder(out, {"config": {}}, overwrite=True) is None
    assert not any(path.exists() for path in ours)
    assert all(path.read_bytes() == b"kept progress" for path in theirs)


def _check_other_settings_are_refused_in_one_line(runs):
    out = runs["whole"]
    manifest = (out / "manifest.json").read_bytes()
    args = ["run", "--out", str(out), "--data-root", str(runs["data"]), *RUN_ARGS]
    result = CliRunner().invoke(cli, [*args, "--set", "recover.iterations=21", "--seed", "3"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "holds a run made with different settings: recover.iterations: 20 -> 21; seed: 0 -> 3;" in lines[0]
    assert "--overwrite" in lines[0]
    assert (out / "manifest.json").read_bytes() == manifest


def _check_resume_option_continues_with_recorded_settings(runs):
    out = runs["whole"]
    result = CliRunner().invoke(cli, ["run", "--resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    stages = _stages(out)
    assert all(entry["status"] == "done" and entry["attempt"] == 1 for entry in stages.values())
    refused = CliRunner().invoke(cli, ["run", "--resume", str(out), "--set", "posttrain.epochs=3"])
    assert refused.exit_code != 0 and "posttrain.epochs: 2 -> 3" in refused.output


def test_a_stage_recorded_done_drops_progress_a_kill_left_behind(tmp_path):
    """A kill after the record says "done" but before the progress folder is removed: the next
    attempt takes the finished stage and removes the stale progress (fault injection found it)."""
    (tmp_path / "relabel").mkdir()
    (tmp_path / "relabel" / "labels.bin").write_bytes(b"x")
    stale = tmp_path / "relabel" / PROGRESS_FOLDER / "relabel-epochs"
    stale.mkdir(parents=True)
    (stale / "shard-00000.safetensors").write_bytes(b"partial")
    stages = {"relabel": {"status": "done", "attempt": 1, "artifacts": {"labels": "relabel/labels.bin"}, "metrics": {}, "seconds": 1.0}}

    def never(stage_dir):
        raise AssertionError("a finished stage must not run again")

    result = run_recorded_stage("relabel", tmp_path, stages, lambda: None, never)
    assert result.artifacts["labels"] == tmp_path / "relabel" / "labels.bin"
    assert not (tmp_path / "relabel" / PROGRESS_FOLDER).exists()
