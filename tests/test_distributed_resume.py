"""Resuming under torchrun: a 2-process CPU `scdd run` killed (SIGKILL to the launcher and its workers)
during recovery and again during post-training continues each time to artifacts equal to an
uninterrupted 2-process run's, taking over the recovery batches and post-training epochs the killed
attempts finished. The comparison is the fault-injection benchmark's (every file of the run folder,
the manifest's config and metrics, a whole report).

A restart with one process instead of two continues too: recovery's batches and relabelling's epochs
are the same units whatever the number of processes (and equal to one process's), while a training
loop's checkpoint from two processes is not used, with one warning line saying that loop restarts."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
# Tiny budgets on the embedded mnist5k: 30 training images a class, a fifth carved off for validation
# (what the teacher and students are scored on); 5 recovery batches and 8 post-training epochs, so a
# kill lands between finished units of both stages.
TINY = (
    "--quiet --pretrainer supervised --backbone resnet10-slim --students resnet10-slim --ipc 1"
    " --set dataset_options.held_out_per_class=470 --set eval_split=validation"
    " --set squeeze.pretrainer_options.epochs=1 --set squeeze.pretrainer_options.batch_size=64"
    " --set align.aligner_options.epochs=1 --set recover.iterations=30 --set recover.batch_size=2"
    " --set posttrain.epochs=8 --set report.max_classes=2"
).split()
SAME_ACROSS_PROCESSES = ("recover/distilled.safetensors", "recover/trajectory.safetensors", "relabel/soft_labels.safetensors")


def _fault_injection():
    """benchmarks/fault_injection.py, whose ``differences`` compares two finished run folders."""
    spec = importlib.util.spec_from_file_location("fault_injection", ROOT / "benchmarks" / "fault_injection.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _command(out: Path, processes: int = 2) -> list[str]:
    launcher = TORCHRUN if processes == 2 else [sys.executable]
    return [*launcher, "-m", "scdd.cli", "run", "--out", str(out), *TINY]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every run: the same float sums


def _run(out: Path, processes: int = 2) -> subprocess.CompletedProcess:
    done = subprocess.run(_command(out, processes), env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _job(pid: int) -> list[int]:
    """``pid`` and every process descended from it (Linux ``/proc``): torchrun starts each worker in
    a session of its own, so the launcher's process group does not hold them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):  # a process that ended meanwhile
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def _kill_when(out: Path, pattern: str) -> None:
    """Start the 2-process run on ``out`` and SIGKILL the whole job (launcher and workers, as a
    scheduler pre-empting it) once a file matching ``pattern`` (a stage's progress) appears."""
    process = subprocess.Popen(_command(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 900
    while process.poll() is None and time.monotonic() < deadline:
        if any(out.glob(pattern)):
            for pid in reversed(_job(process.pid)):  # workers first, so none outlives the launcher
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the run ended before {pattern} appeared:\n{stderr.decode()[-3000:]}"


def _progress(out: Path) -> dict:
    return {name: entry.get("progress", {}) for name, entry in json.loads((out / "manifest.json").read_text())["stages"].items()}


@pytest.mark.slow
def test_two_process_run_killed_in_recovery_and_posttraining_resumes_to_equal_artifacts(tmp_path):
    fault = _fault_injection()
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _run(reference)

    _kill_when(killed, "recover/.progress/recover-batches/*.safetensors")
    one_process = tmp_path / "one-process"
    shutil.copytree(killed, one_process, symlinks=True)
    _kill_when(killed, "posttrain/.progress/train-*.safetensors")
    assert killed.joinpath("posttrain", ".progress").is_dir()
    handed_over = tmp_path / "handed-over"
    shutil.copytree(killed, handed_over, symlinks=True)
    _run(killed)

    assert fault.differences(reference, killed) == []
    progress = _progress(killed)
    assert 1 <= progress["recover"].get("units_reused", 0) < 5, progress["recover"]
    assert progress["recover"]["units_reused"] + progress["recover"]["units_computed"] == 5  # both processes' units counted
    assert progress["posttrain"].get("epochs_reused", 0) >= 1, progress["posttrain"]
    assert progress["posttrain"]["epochs_reused"] + progress["posttrain"].get("epochs_trained", 0) == 8

    # one process continues the recovery two began: its batches are taken over, the result is the same
    _run(one_process, processes=1)
    assert _progress(one_process)["recover"].get("units_reused", 0) >= 1
    found = fault.differences(reference, one_process)
    assert not [line for line in found if line.split(":")[0] in SAME_ACROSS_PROCESSES], found
    assert any(line.startswith("posttrain/student-") for line in found)  # trained by one process: other numbers

    # one process does not take over a 2-process training loop: one line says it restarts
    done = _run(handed_over, processes=1)
    warnings = [line for line in done.stderr.splitlines() if "was saved with other settings (processes)" in line]
    assert len(warnings) == 1, done.stderr[-3000:]
    assert "posttrain/.progress/train-" in warnings[0] and "starts again from its first epoch" in warnings[0]
    assert _progress(handed_over)["posttrain"].get("epochs_reused", 0) == 0
