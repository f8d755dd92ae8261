"""Where soft labels come from at post-training: safetensors shards (stored) or the teacher itself (online).

A stored set is ``soft_labels.safetensors`` (epochs ``[0, k)``, and the list of every shard in its
metadata) plus ``soft_labels-00001.safetensors`` … for later epoch ranges. Each shard holds the crop
plans of its epochs (``boxes`` [E, N, 4], ``flips`` [E, N], mix tensors when mixing) and the labels
in the set's encoding. The shards appear together or not at all. An online set is the same first
file with no tensors: its metadata names the teacher (its path relative to the file's folder, and SHA-256; ensemble
labels name every teacher, ``teacher`` then ``extra_teachers``) and the crop-plan seed.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from scdd.artifacts import file_sha256, load_tensors, save_tensors, sync_path
from scdd.artifacts import read_metadata as read_artifact_metadata
from scdd.errors import ArtifactError
from scdd.labels.encoding import LabelEncoding
from scdd.labels.ensemble import TeacherEnsemble
from scdd.labels.plan import EpochPlan, PlanSpec, plan_epoch
from scdd.labels.targets import SoftTargets
from scdd.models.saved import load_model
from scdd.runtime import place

SOFT_LABELS_FILE = "soft_labels.safetensors"
KIND = "soft_labels"
_PLAN_KEYS = ("boxes", "flips", "partners", "lambdas", "regions", "order", "augment")


def shard_name(index: int) -> str:
    return SOFT_LABELS_FILE if index == 0 else f"soft_labels-{index:05d}.safetensors"


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Decoded ``scdd.*`` metadata of a soft-label file, without loading its tensors."""
    return read_artifact_metadata(path, KIND)


class ShardWriter:
    """Collects per-epoch tensors into shards of ``epochs_per_shard`` epochs, each written to a hidden
    temporary file; ``commit`` renames them all into place (the first shard last), ``abort`` removes them."""

    def __init__(self, folder: Path, metadata: dict[str, Any], total_epochs: int, epochs_per_shard: int) -> None:
        self.folder, self.metadata = Path(folder), metadata
        self.total, self.per_shard = total_epochs, max(1, epochs_per_shard)
        self.shards = -(-total_epochs // self.per_shard)
        self._pending: list[dict[str, torch.Tensor]] = []
        self._written: list[tuple[Path, Path]] = []
        self._next_epoch = 0

    def add(self, epoch_tensors: dict[str, torch.Tensor]) -> None:
        self._pending.append(epoch_tensors)
        self._next_epoch += 1
        if len(self._pending) == self.per_shard or self._next_epoch == self.total:
            self._flush()

    def _flush(self) -> None:
        index = len(self._written)
        start = self._next_epoch - len(self._pending)
        stacked = {key: torch.stack([epoch[key] for epoch in self._pending]) for key in self._pending[0]}
        metadata = {**self.metadata, "shard": index, "shards": self.shards, "epoch_start": start, "epoch_stop": self._next_epoch}
        if index == 0:
            metadata["files"] = [shard_name(i) for i in range(self.shards)]
        final = self.folder / shard_name(index)
        staging = self.folder / f".{final.name}.partial"
        save_tensors(staging, stacked, metadata)
        self._written.append((staging, final))
        self._pending = []

    def commit(self) -> list[Path]:
        if self._next_epoch != self.total:
            raise ArtifactError(f"soft labels: {self._next_epoch} of {self.total} epochs written")
        for staging, final in [*self._written[1:], self._written[0]]:
            os.replace(staging, final)
        sync_path(self.folder)  # the renames, durable (each staged file was flushed when written)
        return [final for _, final in self._written]

    def abort(self) -> None:
        for staging, _ in self._written:
            staging.unlink(missing_ok=True)


def write_online_descriptor(folder: Path, metadata: dict[str, Any]) -> Path:
    """The online set's only file: metadata, no tensors."""
    return save_tensors(Path(folder) / SOFT_LABELS_FILE, {}, {**metadata, "shard": 0, "shards": 0, "files": []})


class StoredSoftLabels:
    """Stored soft labels, read one shard at a time: ``epoch(e)`` → ``(EpochPlan, SoftTargets)``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        if self.metadata.get("mode", "stored") != "stored":
            raise ArtifactError(f"{self.path}: holds online soft labels (no stored labels); open it with open_soft_labels")
        try:
            self.epochs = int(self.metadata["epochs"])
            self.images = int(self.metadata["images"])
            self.encoding = LabelEncoding(**self.metadata["encoding"])
            self.files = [self.path.parent / name for name in self.metadata["files"]]
            self.spec = PlanSpec(**self.metadata.get("plan", {}))
        except (KeyError, TypeError) as error:
            raise ArtifactError(f"{self.path}: soft-label metadata incomplete ({error})") from None
        self.files[0] = self.path
        missing = [str(f) for f in self.files if not f.is_file()]
        if missing:
            raise ArtifactError(f"{self.path}: soft-label shard missing: {missing[0]}")
        self._cached: tuple[int, int, dict[str, torch.Tensor]] | None = None

    def _shard_for(self, epoch: int) -> tuple[int, dict[str, torch.Tensor]]:
        if self._cached is not None and self._cached[0] <= epoch < self._cached[1]:
            return self._cached[0], self._cached[2]
        for file in self.files:
            metadata = read_metadata(file)
            if metadata["epoch_start"] <= epoch < metadata["epoch_stop"]:
                tensors, _ = load_tensors(file, KIND)
                needed = {"boxes", "flips", *self.encoding.label_keys}
                if not needed <= tensors.keys():
                    raise ArtifactError(f"{file}: soft labels lack tensor {sorted(needed - tensors.keys())[0]!r}")
                self._cached = (metadata["epoch_start"], metadata["epoch_stop"], tensors)
                return metadata["epoch_start"], tensors
        raise ArtifactError(f"{self.path}: no shard holds epoch {epoch}")

    def epoch(self, epoch: int) -> tuple[EpochPlan, SoftTargets]:
        if not 0 <= epoch < self.epochs:
            raise ArtifactError(f"{self.path}: soft labels cover epochs 0-{self.epochs - 1}, asked for {epoch}")
        start, tensors = self._shard_for(epoch)
        row = {key: value[epoch - start] for key, value in tensors.items()}
        plan = EpochPlan(
            boxes=row["boxes"].float(),
            flips=row["flips"].bool(),
            partners=row["partners"].long() if "partners" in row else None,
            lambdas=row.get("lambdas"),
            regions=row.get("regions"),
            order=row["order"].long() if "order" in row else None,
            augment=row.get("augment"),
            padding_mode=self.spec.padding_mode,
            randaugment=self.spec.randaugment,
        )
        return plan, self.encoding.decode(row)


class OnlineSoftLabels:
    """The teacher labels each crop during post-training; crop plans are recomputed from the seed."""

    def __init__(self, teacher: torch.nn.Module, spec: PlanSpec, images: int, epochs: int, seed: int) -> None:
        self.teacher, self.spec, self.images, self.epochs, self.seed = teacher.eval(), spec, images, epochs, seed

    def epoch(self, epoch: int) -> tuple[EpochPlan, None]:
        return plan_epoch(self.images, epoch, self.spec, self.seed), None

    @torch.no_grad()
    def label(self, crops: torch.Tensor) -> SoftTargets:
        return SoftTargets(logits=self.teacher(crops).float())


def open_soft_labels(path: str | Path, *, device: torch.device, distilled: str | Path | None = None) -> StoredSoftLabels | OnlineSoftLabels:
    """Open a soft-label set of either mode; an online set loads its teacher (checked by SHA-256) onto ``device``.
    With ``distilled``, a set made for another distilled file (by the SHA-256 relabelling recorded) is refused."""
    metadata = read_metadata(path)
    made_for = (metadata.get("distilled") or {}).get("sha256")
    if distilled is not None and made_for is not None and made_for != file_sha256(distilled):
        raise ArtifactError(f"{path}: made for another distilled set than {distilled} (SHA-256 differs)")
    if metadata.get("mode", "stored") == "stored":
        return StoredSoftLabels(path)
    try:
        # relative to the descriptor's folder (absolute in files written before paths were kept relative)
        entries = [metadata["teacher"], *metadata.get("extra_teachers", [])]
        teachers = [(Path(path).parent / entry["path"], entry["sha256"]) for entry in entries]
        spec = PlanSpec(**metadata["plan"])
        images, epochs, seed = int(metadata["images"]), int(metadata["epochs"]), int(metadata["seed"])
        temperature = float(metadata["encoding"]["temperature"]) if len(entries) > 1 else 1.0
    except (KeyError, TypeError) as error:
        raise ArtifactError(f"{path}: online soft-label metadata incomplete ({error})") from None
    models = []
    for teacher_path, digest in teachers:
        if not teacher_path.is_file():
            raise ArtifactError(f"{path}: its teacher {teacher_path} is missing (online labels need the teacher)")
        if file_sha256(teacher_path) != digest:
            raise ArtifactError(f"{path}: teacher {teacher_path} changed since relabelling (SHA-256 differs)")
        models.append(load_model(teacher_path, "classifier")[0])
    teacher = models[0] if len(models) == 1 else TeacherEnsemble(models, temperature)  # ensemble labels (relabel.extra_teachers)
    return OnlineSoftLabels(place(teacher, device), spec, images, epochs, seed)


def plan_metadata(spec: PlanSpec) -> dict[str, Any]:
    return asdict(spec)
