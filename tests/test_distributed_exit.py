"""A finished torchrun run exits 0 on every rank: each process leaves the process group and its gloo
threads before the interpreter finalises.

Why: a gloo worker thread still running at interpreter exit can destroy the last collective's work
while CPython finalises; freeing the work's tensors needs the GIL, CPython ends the thread inside a
noexcept destructor, and the rank dies with SIGABRT ("terminate called without an active exception")
after all its work is done. DistributedDataParallel's import of torch._dynamo, made while the group
exists, is what kept the backend (and its threads) alive past ``destroy_process_group``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hard_inputs import _distilled, _image_folder

ENTRY = Path(__file__).with_name("torchrun_entry.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
GLOO_THREADS = {"pt_gloo_runloop", "gloo_tcp_loop"}
# The README's 2-process CPU command (`scdd run`, every stage) on a tiny image folder, tiny budgets.
TINY_RUN = (
    "run --dataset imagefolder --device cpu --quiet --pretrainer supervised --backbone resnet10-slim --students resnet10-slim --ipc 1"
    " --set squeeze.pretrainer_options.epochs=1 --set squeeze.pretrainer_options.batch_size=256"
    " --set align.aligner_options.epochs=1 --set recover.iterations=2 --set posttrain.epochs=1"
    " --set report.max_classes=2"
)


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_every_rank_leaves_its_gloo_threads_before_exit(tmp_path):
    """Data-parallel (DDP) post-training under torchrun; when scdd's entry returns, each rank lists its
    threads: no gloo worker or transport thread may be left for interpreter finalisation (had one been,
    scdd would have ended the process at once with a warning, and no list would be written)."""
    distilled = _distilled(tmp_path / "distilled.safetensors")
    logs, out = tmp_path / "logs", tmp_path / "out"
    logs.mkdir()
    arguments = (
        f"posttrain {distilled} --hard-labels --students resnet10-slim --epochs 1 --set posttrain.batch_size=8"
        f" --device cpu --quiet --out {out}"
    )
    done = subprocess.run(
        [*TORCHRUN, str(ENTRY), str(logs), str(out), *arguments.split()], env=_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gloo threads still running" not in done.stderr
    for rank in (0, 1):
        threads = (logs / f"threads-rank{rank}.txt").read_text().split()
        assert threads and not GLOO_THREADS & set(threads), (rank, threads)


@pytest.mark.slow
def test_two_process_cpu_run_exits_zero_five_times(tmp_path):
    """`python -m torch.distributed.run --standalone --nproc_per_node 2 -m scdd.cli run ...` five times
    in a row: every run exits 0, without the fallback exit."""
    data = _image_folder(tmp_path / "data", train=4, val=1)
    for attempt in range(5):
        out = tmp_path / f"run{attempt}"
        command = [*TORCHRUN, "-m", "scdd.cli", *TINY_RUN.split(), "--data-root", str(data), "--out", str(out)]
        done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"run {attempt}: exit {done.returncode}\n{done.stderr[-3000:]}"
        assert "gloo threads still running" not in done.stderr
        assert (out / "report.html").is_file()
