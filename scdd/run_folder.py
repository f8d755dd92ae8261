"""Run folders: the manifest, the out-folder policy, and the identity that lets a run continue.

``scdd run`` keeps its record in ``manifest.json`` (resolved config, package versions, seed, device, per-stage
status, timings and metrics), rewritten atomically after every stage; a stage command (``scdd recover --out
DIR`` ...) keeps one in ``DIR/.scdd-stage.json`` (stage, resolved config, its inputs' SHA-256, status). The same
command on the same folder continues it: finished stages come from the record, the unfinished one resumes from
its progress (``scdd.resume.scope``). A folder made with other settings is refused in one line naming them,
unless ``--overwrite``, and so is one a newer scdd wrote; folders never continued (``scdd.out_dir``)
whenever they hold files. A running command holds the folder's lock (``locked_run_folder``, ``scdd.run_lock``)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import platform
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from scdd.artifacts import file_sha256, write_json
from scdd.config import RunConfig, apply_overrides, to_dict
from scdd.distributed import is_main, on_main, world_size
from scdd.errors import ConfigError
from scdd.out_dir import MANIFEST_FILE, already_holds, holds_files, remove_temporaries
from scdd.resume.scope import PROGRESS_FOLDER, ProgressScope, progress_scope
from scdd.run_lock import LOCK_FILE, acquire, release
from scdd.stages.common import StageResult

MANIFEST_FORMAT = 1  # the manifest's layout ("scdd_manifest"); a folder written in a later one is refused
STAGE_RECORD = ".scdd-stage.json"
# the stage folders `scdd run` writes into, in pipeline order (coreset replaces recover); a stage command's is its --out
STAGE_FOLDERS = ("squeeze", "align", "recover", "coreset", "relabel", "posttrain", "evaluate")
_SHOWN_DIFFERENCES = 4
_PACKAGES = ("scdd", "torch", "torchvision", "timm", "lightly", "pluggy", "safetensors", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@dataclass
class RunRecord:
    """The manifest's content while a run is under way."""

    config: RunConfig
    device: str
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # what loading the dataset noted: skipped files
    notes: dict[str, Any] = field(default_factory=dict)  # how the settings were chosen (``sizing``)

    def to_json(self) -> dict[str, Any]:
        return {
            "scdd_manifest": MANIFEST_FORMAT,
            "created": self.created,
            "command": self.command,
            "device": self.device,
            "processes": world_size(),
            "seed": self.config.seed,
            "versions": package_versions(),
            "config": to_dict(self.config),
            "stages": self.stages,
            "metrics": self.metrics,
            "data": self.data,
            **self.notes,
        }


def write_manifest(out_dir: Path, record: RunRecord) -> None:
    """``out_dir/manifest.json`` from ``record`` (rank 0 writes, the others wait)."""
    on_main(write_json, Path(out_dir) / MANIFEST_FILE, record.to_json())


def normalized(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so records compare equal to live configs."""
    return json.loads(json.dumps(value, default=str))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``setting: old -> new`` for every dotted setting that differs."""
    before, after = _flatten(normalized(old)), _flatten(normalized(new))
    missing = object()
    return [
        f"{key}: {json.dumps(before.get(key)) if key in before else '(unset)'} -> {json.dumps(after.get(key)) if key in after else '(unset)'}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key, missing) != after.get(key, missing)
    ]


def _discard_progress(out_dir: Path, record: str) -> None:
    """Delete the progress scdd keeps in ``out_dir``: a stage command's own (``record`` is
    ``STAGE_RECORD``), or that of a run's stage folders; a progress folder anywhere else is not scdd's."""
    folders = [out_dir] if record == STAGE_RECORD else [out_dir / name for name in STAGE_FOLDERS]
    for folder in folders:
        shutil.rmtree(folder / PROGRESS_FOLDER, ignore_errors=True)


def open_run_folder(
    out_dir: str | Path, identity: Mapping[str, Any], *, overwrite: bool, record: str = MANIFEST_FILE
) -> dict[str, Any] | None:
    """Make ``out_dir`` ready; returns its earlier record when the run continues, None when it starts afresh.

    The record's ``identity_key`` entries must equal ``identity``'s: a folder made with other settings
    (or holding files that are not an scdd record) is refused unless ``overwrite``, which discards the
    earlier progress and starts over."""
    out_dir = Path(out_dir)
    if not holds_files(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        return None
    if overwrite:
        _discard_progress(out_dir, record)
        return None
    path = out_dir / record
    if not path.is_file():
        raise already_holds(out_dir)
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ConfigError(f"--out {out_dir}: {record} is unreadable; choose another folder or pass --overwrite") from None
    check_format(previous, f"--out {out_dir}")
    if not isinstance(previous, dict) or not all(key in previous for key in identity):  # no settings recorded
        raise ConfigError(f"--out {out_dir} already holds a run; choose another folder or pass --overwrite")
    stored = {key: previous.get(key) for key in identity}
    differences = [line.removeprefix("config.") for line in config_differences(stored, identity)]
    if differences:
        shown = "; ".join(differences[:_SHOWN_DIFFERENCES])
        more = f" (and {len(differences) - _SHOWN_DIFFERENCES} more)" if len(differences) > _SHOWN_DIFFERENCES else ""
        raise ConfigError(
            f"--out {out_dir} holds a run made with different settings: {shown}{more}; "
            f"pass --overwrite to start over, or choose another folder"
        )
    return previous


def check_format(record: Any, where: str) -> None:
    """Refuse a manifest written in a later format than this scdd reads (a newer scdd made the folder)."""
    found = record.get("scdd_manifest", MANIFEST_FORMAT) if isinstance(record, dict) else MANIFEST_FORMAT
    if not isinstance(found, int) or found > MANIFEST_FORMAT:
        made_by = (record.get("versions") or {}).get("scdd", "unknown")
        raise ConfigError(
            f"{where} was written by a newer scdd ({made_by}, manifest format {found}; this one reads format "
            f"{MANIFEST_FORMAT}); upgrade scdd, or choose another folder"
        )


def _open_locked(out_dir: Path, identity: Mapping[str, Any], overwrite: bool, record: str) -> tuple[dict[str, Any] | None, int]:
    if holds_files(out_dir) and not overwrite and not (out_dir / record).is_file():
        raise already_holds(out_dir)  # refused before anything is created in it
    fd = acquire(out_dir)
    try:
        remove_temporaries(out_dir)  # what writers killed mid-write left (scdd.out_dir)
        return open_run_folder(out_dir, identity, overwrite=overwrite, record=record), fd
    except BaseException:
        release(fd)
        raise


@contextlib.contextmanager
def locked_run_folder(
    out_dir: Path, identity: Mapping[str, Any], *, overwrite: bool, record: str = MANIFEST_FILE
) -> Iterator[dict[str, Any] | None]:
    """``open_run_folder`` under the folder's lock, held (by rank 0 under torchrun) until the block
    ends; yields the earlier record or None. A folder another process holds is refused in one line."""
    previous, fd = on_main(_open_locked, Path(out_dir), identity, overwrite, record)
    try:
        yield previous
    finally:
        if is_main():
            release(fd)


def finished_result(entry: Mapping[str, Any] | None, out_dir: Path, name: str) -> StageResult | None:
    """The result of a stage the record marks done, when all its artifacts are still there."""
    if not entry or entry.get("status") != "done":
        return None
    artifacts = {key: out_dir / rel for key, rel in entry.get("artifacts", {}).items()}
    if not all(path.exists() for path in artifacts.values()):
        return None
    return StageResult(name, artifacts=artifacts, metrics=dict(entry.get("metrics", {})), seconds=float(entry.get("seconds", 0.0)))


def run_recorded_stage(
    name: str,
    out_dir: Path,
    stages: dict[str, dict[str, Any]],
    save: Callable[[], None],
    action: Callable[[Path], StageResult],
    stage_dir: Path | None = None,
) -> StageResult:
    """Run stage ``name`` into ``stage_dir`` (default ``out_dir/name``) unless ``stages`` records it done; keeps progress while it
    runs, records status, timings, metrics and what was computed or reused, and calls ``save`` after
    each change of ``stages``."""
    done = finished_result(stages.get(name), out_dir, name)
    stage_dir = out_dir / name if stage_dir is None else stage_dir
    if done is not None:
        ProgressScope(stage_dir).discard()  # left by a kill between recording the stage done and discarding it
        return done
    attempt = int((stages.get(name) or {}).get("attempt", 0)) + 1
    stages[name] = {"status": "running", "attempt": attempt}
    save()
    with progress_scope(stage_dir) as scope:
        scope.counts["attempt"] = attempt
        try:
            result = action(stage_dir)
        except BaseException:
            stages[name] = {"status": "failed", "attempt": attempt, "progress": scope.summary()}
            save()
            raise
    stages[name] = {
        "status": "done",
        "attempt": attempt,
        "seconds": round(result.seconds, 3),
        "artifacts": {key: str(Path(path).relative_to(out_dir)) for key, path in result.artifacts.items()},
        "metrics": result.metrics,
        "progress": scope.summary(every_rank=True),
    }
    save()
    scope.discard()
    return result


def run_stage_command(
    stage: str,
    out_dir: str | Path,
    config: Mapping[str, Any],
    inputs: Mapping[str, str | Path | None],
    *,
    overwrite: bool,
    action: Callable[[Path], StageResult],
) -> StageResult:
    """A single stage command into ``out_dir`` with a ``.scdd-stage.json`` record: the same command on
    the same folder continues it (or returns at once when it finished); other settings or inputs are refused."""
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    identity = {
        "stage": stage,
        "config": normalized(dict(config)),
        "inputs": {key: file_sha256(path) if path is not None and Path(path).is_file() else None for key, path in inputs.items()},
    }
    path = out_dir / STAGE_RECORD
    try:
        with locked_run_folder(out_dir, identity, overwrite=overwrite, record=STAGE_RECORD) as previous:
            record = {**identity, "stages": dict((previous or {}).get("stages", {}))}
            return run_recorded_stage(
                stage, out_dir, record["stages"], lambda: on_main(write_json, path, record), action, stage_dir=out_dir
            )
    except BaseException:
        nothing_kept = not (out_dir / PROGRESS_FOLDER).exists()
        if is_main() and created and nothing_kept and out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= {STAGE_RECORD, LOCK_FILE}:
            shutil.rmtree(out_dir, ignore_errors=True)  # a stage that failed before any work leaves no folder
        raise


def recorded_config(run_dir: str | Path, out: str | Path | None, preset: str | None, overrides: Mapping[str, Any]):
    """The resolved config a run folder's manifest records, with ``overrides`` applied on top (``--resume DIR``)."""
    run_dir = Path(run_dir)
    if out is not None and Path(out).resolve() != run_dir.resolve():
        raise ConfigError(f"--resume {run_dir} continues that folder; leave out --out {out}")
    if preset is not None:
        raise ConfigError("--resume takes the settings the run recorded; leave out --preset")
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: no {MANIFEST_FILE} there (not an scdd run folder)")
    return manifest_config(path, overrides, f"--resume {run_dir}")


def manifest_config(path: Path, overrides: Mapping[str, Any], option: str) -> RunConfig:
    """The resolved config the manifest at ``path`` records, on the paper's defaults, with ``overrides`` on top."""
    try:
        manifest = json.loads(path.read_text())
        check_format(manifest, option)
        recorded = manifest["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{option}: {path.name} is unreadable") from None
    if not isinstance(recorded, Mapping):
        raise ConfigError(f"{option}: {path.name} records no config")
    return apply_overrides(apply_overrides(RunConfig(), recorded), overrides).resolved()
