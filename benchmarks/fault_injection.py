"""Kill `scdd run` with SIGKILL at random instants of every stage and check that each rerun ends with
exactly the artifacts of an uninterrupted run (README "Resuming a run").

One uninterrupted reference run (the embedded default dataset and components, tiny budgets, one
thread so float sums repeat) records when each stage starts and ends. Then kills are made in chains,
one per stage in pipeline order (squeeze, align, recover, relabel, posttrain, evaluate, report): a
chain's run folder is started, killed (the whole process group, SIGKILL) a random fraction of the
reference stage's duration after that stage has begun, copied, and the copy is run again to the end
with the same command and compared with the reference; the chain's own folder is then run on, to be
killed in its next stage. Compared: every file of the run folder except the manifest and report
(safetensors by tensors, metadata and bytes; loss curves by every column but their wall-clock
seconds; other files byte for byte), no leftover progress or temporary file, the manifest's config,
metrics and per-stage status, and a whole report.html.

    python benchmarks/fault_injection.py                   # 30 kills: 4 chains of 7, then 2
    python benchmarks/fault_injection.py --kills 6 --seed 1 --keep /tmp/fi
    python benchmarks/fault_injection.py --jobs 2           # each rerun beside the chain's next run

Prints one line per kill (where it landed, how far into the stage, what the rerun reused, the verdict)
and finally "N kills, M identical".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STAGES = ("squeeze", "align", "recover", "relabel", "posttrain", "evaluate", "report")
_PIPELINE = ("squeeze", "align", "recover", "relabel", "posttrain", "evaluate")
# Tiny budgets on the embedded mnist5k: 30 training images a class (the rest held out), of which the
# validation carve (eval_split) takes a fifth and is what the teacher and students are scored on; two
# epochs per training loop so a kill can land after a kept epoch, recovery in 5 batches and soft labels
# in 3 shards so kills land between finished units of those stages too.
TINY = [
    "--set",
    "dataset_options.held_out_per_class=470",
    "--set",
    "eval_split=validation",
    "--set",
    "squeeze.pretrainer_options.batch_size=64",
    "--set",
    "report.max_classes=2",
    "--set",
    "squeeze.pretrainer_options.epochs=2",
    "--set",
    "align.aligner_options.epochs=2",
    "--set",
    "recover.iterations=10",
    "--set",
    "recover.batch_size=20",
    "--set",
    "relabel.epochs_per_shard=1",
    "--set",
    "posttrain.epochs=3",
]
_RECORDS = {"manifest.json", "report.html", ".scdd.lock", ".scdd-stage.json"}
_POLL = 0.02


def command(out: Path, extra: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "scdd.cli", "run", "--out", str(out), "--quiet", *TINY, *(extra or [])]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every run: the same float sums


def read_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def phase(out: Path) -> str | None:
    """The stage running now according to the manifest ("report" once every stage is done and the
    final metrics are written), or None before the first stage."""
    manifest = read_manifest(out)
    if manifest is None:
        return None
    stages = manifest.get("stages", {})
    for name in _PIPELINE:
        if stages.get(name, {}).get("status") != "done":
            return name if name in stages else None
    return "report" if manifest.get("metrics") else "evaluate"


def _start(out: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command(out), env=environment(), stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True)


def reference_run(out: Path, log: Path) -> dict[str, float]:
    """Run to the end, recording when each stage (and the report) was first seen running; returns durations."""
    started: dict[str, float] = {}
    process = _start(out, log)
    while process.poll() is None:
        current = phase(out)
        if current is not None and current not in started:
            started[current] = time.monotonic()
        time.sleep(_POLL)
    end = time.monotonic()
    if process.returncode != 0:
        raise SystemExit(f"the reference run failed (exit {process.returncode}); see {log}")
    order = [name for name in (*_PIPELINE, "report") if name in started]
    bounds = [started[name] for name in order] + [end]
    return {name: bounds[i + 1] - bounds[i] for i, name in enumerate(order)}


@dataclass
class Kill:
    planned: str
    landed: str | None  # the stage running when the signal was sent (None: before the first stage)
    seconds_in: float  # since the planned stage was first seen running
    finished_first: bool  # the run ended before the kill instant (no kill happened)


def run_and_kill(out: Path, stage: str, delay: float, log: Path) -> Kill:
    """Start (or continue) the run in ``out`` and SIGKILL it ``delay`` seconds after ``stage`` is seen running."""
    process = _start(out, log)
    later = STAGES.index(stage) if stage in STAGES else 0
    entered = None
    while process.poll() is None:
        current = phase(out)
        if entered is None and current is not None:
            position = STAGES.index(current) if current in STAGES else _PIPELINE.index(current)
            if current == stage or position > later:
                entered = time.monotonic()
        if entered is not None and time.monotonic() - entered >= delay:
            landed = phase(out)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return Kill(stage, landed, time.monotonic() - entered, False)
        time.sleep(_POLL / 4 if entered is not None else _POLL)
    return Kill(stage, None, 0.0, True)


def _tensors(path: Path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    return load_file(str(path)), metadata


def _timeless(path: Path) -> list[list[str]]:
    """A loss-curve CSV's rows without the wall-clock ``seconds`` column (the one thing a rerun cannot repeat)."""
    import csv

    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0] if rows else []) if name != "seconds"]
    return [[row[i] for i in keep if i < len(row)] for row in rows]


def files_of(out: Path) -> dict[str, Path]:
    return {str(path.relative_to(out)): path for path in sorted(out.rglob("*")) if path.is_file() and path.name not in _RECORDS}


def differences(reference: Path, out: Path) -> list[str]:
    """What differs between a finished run folder and the reference (empty when identical)."""
    import torch

    found: list[str] = []
    mine, theirs = files_of(out), files_of(reference)
    for name in sorted(mine.keys() ^ theirs.keys()):
        found.append(f"{name}: {'only in the rerun' if name in mine else 'missing'}")
    for name in sorted(mine.keys() & theirs.keys()):
        if name.endswith(".safetensors"):
            (a, meta_a), (b, meta_b) = _tensors(mine[name]), _tensors(theirs[name])
            if meta_a != meta_b:
                keys = sorted(k for k in meta_a.keys() | meta_b.keys() if meta_a.get(k) != meta_b.get(k))
                found.append(f"{name}: metadata {', '.join(keys)}")
            if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
                found.append(f"{name}: tensors")
            elif meta_a == meta_b and mine[name].read_bytes() != theirs[name].read_bytes():
                found.append(f"{name}: bytes")
        elif name.endswith(".csv"):
            if _timeless(mine[name]) != _timeless(theirs[name]):
                found.append(f"{name}: values")
        elif mine[name].read_bytes() != theirs[name].read_bytes():
            found.append(f"{name}: bytes")
    if any(path.name == ".progress" for path in out.rglob(".progress")):
        found.append("a .progress folder is left")
    manifest, wanted = read_manifest(out), read_manifest(reference)
    if manifest is None:
        found.append("manifest.json unreadable")
    else:
        for key in ("config", "metrics"):
            if manifest.get(key) != wanted.get(key):
                found.append(f"manifest {key}")
        if any(entry.get("status") != "done" for entry in manifest.get("stages", {}).values()):
            found.append("manifest: a stage is not done")
    report = out / "report.html"
    if not report.is_file() or "</html>" not in report.read_text(errors="replace")[-200:]:
        found.append("report.html missing or cut")
    return found


def reused(out: Path) -> str:
    """What the rerun took over from the killed attempt, from the manifest's progress records."""
    manifest = read_manifest(out) or {}
    parts = []
    for name, entry in manifest.get("stages", {}).items():
        progress = entry.get("progress", {})
        kept = progress.get("epochs_reused", 0) + progress.get("units_reused", 0)
        if entry.get("attempt", 1) > 1 or kept:
            parts.append(f"{name} attempt {entry.get('attempt')}, {kept} reused")
    return "; ".join(parts) or "-"


@dataclass
class Rerun:
    number: int
    kill: Kill
    folder: Path
    process: subprocess.Popen


def _rerun(number: int, kill: Kill, folder: Path, log: Path) -> Rerun:
    """Start the same command on a copy of the killed folder, to the end."""
    return Rerun(
        number, kill, folder, subprocess.Popen(command(folder), env=environment(), stdout=subprocess.DEVNULL, stderr=log.open("w"))
    )


def _verdict(rerun: Rerun, reference: Path, timeout: float, keep: bool) -> bool:
    """Wait for ``rerun``, compare its folder with the reference, print one line; True when identical."""
    code = rerun.process.wait(timeout=timeout)
    log = rerun.folder.with_suffix(".log")
    found = [f"rerun exit {code}: {log.read_text().strip().splitlines()[-1:]}"] if code else differences(reference, rerun.folder)
    kill = rerun.kill
    print(
        f"kill {rerun.number:2d}: planned {kill.planned:9s} landed {kill.landed or 'start':9s} {kill.seconds_in:6.2f} s in; "
        f"rerun: {reused(rerun.folder)}; {'identical' if not found else 'DIFFERENT: ' + '; '.join(found[:4])}",
        flush=True,
    )
    if not keep:
        shutil.rmtree(rerun.folder)
    return not found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it (default: a temporary one, removed).")
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds allowed for each rerun.")
    parser.add_argument("--jobs", type=int, default=1, help="Processes at once: reruns beside the chain when above 1.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="scdd-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    began = time.monotonic()
    try:
        reference = work / "reference"
        durations = reference_run(reference, work / "reference.log")
        print("reference run: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in durations.items()), flush=True)
        kills = identical = chain = 0
        pending: list[Rerun] = []
        while kills < args.kills:
            folder = work / f"chain{chain}"
            for stage in STAGES[: min(len(STAGES), args.kills - kills)]:
                delay = rng.random() * durations.get(stage, 1.0)
                kill = run_and_kill(folder, stage, delay, work / f"chain{chain}-{stage}.log")
                if kill.finished_first:
                    print(f"chain {chain}: the run ended before the instant planned in {stage}; a new chain starts", flush=True)
                    break
                kills += 1
                copy = work / f"kill{kills:02d}"
                shutil.copytree(folder, copy, symlinks=True)
                pending.append(_rerun(kills, kill, copy, copy.with_suffix(".log")))
                while len(pending) > max(args.jobs - 1, 0):  # reruns waiting beside the chain
                    identical += _verdict(pending.pop(0), reference, args.timeout, bool(args.keep))
                if kills >= args.kills:
                    break
            chain += 1
        while pending:
            identical += _verdict(pending.pop(0), reference, args.timeout, bool(args.keep))
        print(f"({time.monotonic() - began:.0f} s in all, {args.jobs} process(es) at once)", flush=True)
        print(f"{kills} kills, {identical} identical", flush=True)
        if identical != kills:
            raise SystemExit(1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
