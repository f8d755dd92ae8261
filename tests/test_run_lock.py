"""A run folder is locked while a run writes into it: a second scdd process on it stops in one line
naming the holder's PID and host, without touching anything, and the lock of a killed run does not
stay stuck (the kernel drops it with the process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hard_inputs import _classifier, _distilled, _image_folder

from scdd.cli import cli
from scdd.cli.main import _ready
from scdd.run_lock import LOCK_FILE, acquire, release

RUN = (
    "--dataset imagefolder --device cpu --quiet --pretrainer supervised --backbone resnet10-slim"
    " --students resnet10-slim --ipc 1 --set squeeze.pretrainer_options.epochs=2 --set align.aligner_options.epochs=1"
    " --set recover.iterations=2 --set posttrain.epochs=1 --set report.max_classes=2"
)
HOLD = "import sys, time; from pathlib import Path; from scdd.run_lock import acquire; acquire(Path(sys.argv[1])); print('held', flush=True); time.sleep(600)"


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refusal(out: Path, pid: int) -> str:
    return f"Error: --out {out} is in use by another scdd run (pid {pid} on host {socket.gethostname()}, since "


def test_a_held_folder_is_refused_and_a_killed_holders_lock_does_not_stick(tmp_path):
    data, out = _image_folder(tmp_path / "data", train=4, val=1), tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _snapshot(out)
        for command in (f"run --out {out} --data-root {data} {RUN}", f"run --out {out} --data-root {data} {RUN} --overwrite"):
            result = CliRunner().invoke(cli, command.split())
            lines = [line for line in result.output.splitlines() if line.strip()]
            assert result.exit_code == 1 and len(lines) == 1, result.output
            assert lines[0].startswith(_refusal(out, holder.pid)), lines[0]
            assert _snapshot(out) == before  # nothing written, nothing discarded
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait()
    assert (out / LOCK_FILE).is_file()  # the file stays, the lock went with the process
    fd = acquire(out)
    try:
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        release(fd)


def test_a_folder_holding_other_files_is_refused_without_a_lock_file(tmp_path):
    data, out = _image_folder(tmp_path / "data", train=4, val=1), tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, f"run --out {out} --data-root {data} {RUN}".split())
    assert result.exit_code == 1 and "already holds other files" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def _wait_running(process: subprocess.Popen, out: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        manifest = out / "manifest.json"
        if manifest.is_file() and '"running"' in manifest.read_text():
            return
        time.sleep(0.02)
    raise AssertionError("the first run never started a stage")


@pytest.mark.slow
def test_second_scdd_run_on_a_running_folder_stops_in_one_line(tmp_path):
    data, out = _image_folder(tmp_path / "data", train=4, val=1), tmp_path / "out"
    command = [sys.executable, "-m", "scdd.cli", "run", "--out", str(out), "--data-root", str(data), *RUN.split()]
    first = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_running(first, out)
        os.kill(first.pid, signal.SIGSTOP)  # frozen mid-stage: only the second run could change the folder now
        before = _snapshot(out)
        second = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
        after = _snapshot(out)
        os.kill(first.pid, signal.SIGCONT)
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode == 1 and len(lines) == 1, second.stderr
        assert lines[0].startswith(_refusal(out, first.pid)), lines[0]
        assert after == before  # the first run's files, byte for byte
        assert first.wait(timeout=600) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            first.wait()


HOLD_WRITING = HOLD.replace("print('held'", "(Path(sys.argv[1]) / 'results.json').write_text('{\"first\": 1}'); print('held'")


def _other_command(kind: str, tmp_path: Path, out: Path) -> list[str]:
    """``kind``'s command line on ``out`` (with --overwrite, so only the lock can stop it)."""
    if kind == "bench":
        return ["bench", "--suite", "fair", "--ipc", "1", "--seeds", "0", "--out", str(out), "--overwrite"]
    if kind == "import-checkpoint":
        return ["import-checkpoint", str(tmp_path / "r50.pth"), "--format", "torchvision", "--out", str(out), "--overwrite"]
    data = _image_folder(tmp_path / "data", classes=10, train=2, val=1)
    model, distilled = _classifier(tmp_path / "model.safetensors"), _distilled(tmp_path / "distilled.safetensors")
    return [
        "prune",
        "--model",
        str(model),
        "--distilled",
        str(distilled),
        "--soft-labels",
        str(tmp_path / "labels.safetensors"),
        "--data-root",
        str(data),
        "--out",
        str(out),
        "--overwrite",
    ]


@pytest.mark.parametrize("kind", ["bench", "import-checkpoint", "prune"])
def test_bench_import_and_prune_folders_are_locked_too(kind, tmp_path):
    """A folder another scdd process holds is refused by every command that writes one, in one line,
    even with --overwrite, and the holder's files stay as they are."""
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITING, str(out)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _snapshot(out)
        result = CliRunner().invoke(_ready(), _other_command(kind, tmp_path, out))  # with plugin commands (prune)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert lines[0].startswith(_refusal(out, holder.pid)), lines[0]
        assert _snapshot(out) == before and (out / "results.json").read_text() == '{"first": 1}'
    finally:
        holder.kill()
        holder.wait()


def test_a_failed_import_leaves_no_folder_it_made(tmp_path):
    result = CliRunner().invoke(
        cli, ["import-checkpoint", str(tmp_path / "missing.pth"), "--format", "torchvision", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1 and not (tmp_path / "out").exists(), result.output
