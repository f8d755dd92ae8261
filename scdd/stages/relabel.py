"""Stage 4, relabel: crop-level soft labels from the aligned model (SRe²L's relabelling, Sec. 2.5).

For every post-training epoch, each distilled image gets a random-resized or padded crop (+ flip where
the dataset allows, + an optional CutMix/MixUp partner, per image or per batch); the teacher's label for exactly that crop is
kept with the crop's parameters, so post-training replays the same crops (Eq. 10). The same seed
gives identical crops and labels.

``stored`` mode writes the labels as safetensors shards (full fp32/fp16 logits, or the top-K fp16
probabilities); ``online`` mode writes only a descriptor naming the teacher, which then labels each
crop during post-training. See ``scdd.labels`` for the encodings and the top-K target.

With ``extra_teachers`` the teacher is an ensemble: each crop's label is the mean of every teacher's
softened output at ``temperature`` (G-VBSM / CV-DD; ``scdd.labels.ensemble``), and the metadata names
each teacher with its SHA-256 (``teacher``, then ``extra_teachers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from scdd import distributed
from scdd._options import check_memory_format, check_teacher_files
from scdd.artifacts import file_sha256
from scdd.data.base import DatasetInfo
from scdd.distilled import load_distilled
from scdd.errors import ArtifactError, ConfigError
from scdd.labels import SOFT_LABELS_FILE, LabelEncoding, PlanSpec, plan_epoch, render_crops
from scdd.labels.ensemble import TeacherEnsemble, teacher_entry
from scdd.labels.store import plan_metadata, write_online_descriptor
from scdd.models.saved import load_model, load_teacher
from scdd.progress import SILENT, Progress
from scdd.resume.shards import ResumableShardWriter, epoch_unit
from scdd.resume.units import NoUnits, unit_store
from scdd.runtime import place
from scdd.stages.common import StageResult, Stopwatch

RELABEL_MODES = ("stored", "online")
ALIGNED_TEACHER = "aligned"

__all__ = ["SOFT_LABELS_FILE", "RelabelConfig", "relabel"]


@dataclass
class RelabelConfig:
    # the classifier that labels: "aligned" (Eq. 10: the SSL model after alignment) or a classifier artifact's
    # path, e.g. one `scdd import-checkpoint --format torchvision` wrote (the official ImageNet code's teacher)
    teacher: str = ALIGNED_TEACHER
    # more classifier artifacts labelling with it: each crop's label is the mean of every teacher's softmax at
    # `temperature` (ensemble labels, G-VBSM / CV-DD); empty: the one teacher (the paper)
    extra_teachers: tuple[str, ...] = ()
    epochs: int = 300  # one crop per image per post-training epoch (Table 16: 300 epochs)
    crop_min_scale: float = 0.08
    batch_size: int = 256
    mode: str = "stored"  # "stored" (safetensors shards) or "online" (teacher runs during post-training)
    precision: str = "fp32"  # stored full logits: "fp32" or "fp16"
    label_topk: int = 0  # >0: store only the top-K probabilities (fp16) and their classes
    temperature: float = 1.0  # of stored top-K probabilities; `scdd run` ties it to post-training's
    mix: str = "none"  # "none", "cutmix" or "mixup" (SRe²L relabels with CutMix)
    mix_alpha: float = 1.0
    mix_scope: str = "image"  # "batch": one λ per post-training batch, partners within it (official code)
    mix_batch: int = 64  # the post-training batch size; `scdd run` ties it to post-training's
    crop: str = "resized"  # "resized" (RandomResizedCrop) or "padded" (RandomCrop with zero padding)
    crop_padding: int = 4  # pixels of padding of "padded" crops (official CIFAR-100: RandomCrop(32, padding=4))
    randaugment_ops: int = 0  # >0: RandAugment with that many ops per crop (Table 15, Tiny-ImageNet)
    randaugment_magnitude: int = 9  # torchvision's default magnitude bin (of 31)
    epochs_per_shard: int = 0  # 0: as many epochs as fit in about shard_mib
    shard_mib: int = 1024
    memory_format: str = "auto"  # the teacher's layout (scdd.runtime.memory_format)

    def __post_init__(self) -> None:
        check_memory_format(self.memory_format)
        if self.epochs < 1:
            raise ConfigError("relabel needs epochs >= 1")
        if self.mode not in RELABEL_MODES:
            raise ConfigError(f"relabel mode must be one of {', '.join(RELABEL_MODES)}, got {self.mode!r}")
        if self.batch_size < 1 or self.epochs_per_shard < 0 or self.shard_mib < 1:
            raise ConfigError("relabel needs batch_size >= 1, epochs_per_shard >= 0 and shard_mib >= 1")
        self.encoding()  # validates precision / top-K / temperature

    def teacher_files(self, aligned: str | Path) -> list[Path]:
        """The classifier files that label: ``aligned`` (the aligned model's) unless ``teacher`` names another,
        then ``extra_teachers``."""
        first = Path(aligned) if self.teacher == ALIGNED_TEACHER else Path(self.teacher)
        return [first, *(Path(path) for path in self.extra_teachers)]

    def check_teacher(self) -> None:
        """Fail before any work when ``teacher`` or ``extra_teachers`` names a file that is not there."""
        if self.teacher != ALIGNED_TEACHER and not Path(self.teacher).is_file():
            raise ConfigError(f"relabel.teacher {self.teacher}: no such file (give a classifier artifact, or 'aligned')")
        check_teacher_files(self.extra_teachers, "relabel.extra_teachers")

    def encoding(self) -> LabelEncoding:
        return LabelEncoding(self.precision, self.label_topk, self.temperature)

    def plan_spec(self, info: DatasetInfo) -> PlanSpec:
        return PlanSpec(
            self.crop_min_scale,
            info.hflip,
            self.mix,
            self.mix_alpha,
            crop=self.crop,
            crop_padding=self.crop_padding,
            image_size=info.image_size,
            mix_scope=self.mix_scope,
            mix_batch=self.mix_batch,
            randaugment_ops=self.randaugment_ops,
            randaugment_magnitude=self.randaugment_magnitude,
        )


def _epochs_per_shard(config: RelabelConfig, images: int, bytes_per_image_epoch: int) -> int:
    if config.epochs_per_shard:
        return config.epochs_per_shard
    return max(1, (config.shard_mib << 20) // max(1, images * bytes_per_image_epoch))


def _agreements(saved: dict[int, tuple[dict[str, torch.Tensor], dict] | None]) -> dict[int, int]:
    """The label agreement of each epoch taken over from an interrupted run, by epoch."""
    return {epoch: int(unit[1]["agree"]) for epoch, unit in saved.items() if unit is not None}


def _commit(writer: ResumableShardWriter) -> tuple[list[Path], int]:
    files = writer.commit()
    return files, sum(f.stat().st_size for f in files)


def relabel(
    config: RelabelConfig,
    classifier_path: Path,
    distilled_path: Path,
    out_dir: Path,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> StageResult:
    """Label ``config.epochs`` crops of every distilled image with the teacher (``classifier_path``, unless
    ``config.teacher`` names another file; with ``config.extra_teachers``, the ensemble of them all); writes
    ``soft_labels.safetensors`` (and further shards), or in online mode a descriptor of the teachers and crop seed."""
    config.check_teacher()
    classifier_path, *extra_paths = config.teacher_files(classifier_path)
    teacher, record = load_model(classifier_path, "classifier")
    distilled = load_distilled(distilled_path)
    info = distilled.info
    if info.num_classes != record.dataset.num_classes:
        raise ArtifactError(f"teacher has {record.dataset.num_classes} classes, distilled set {info.num_classes}")
    if extra_paths:
        extras = [load_teacher(path, info, "relabel.extra_teachers") for path in extra_paths]
        teacher = TeacherEnsemble([teacher, *extras], config.temperature)
    encoding, spec = config.encoding(), config.plan_spec(info)
    encoding.check(info.num_classes)
    count = len(distilled.labels)
    metadata = {
        "kind": "soft_labels",
        "mode": config.mode,
        "epochs": config.epochs,
        "images": count,
        "classes": info.num_classes,
        "seed": seed,
        "plan": plan_metadata(spec),
        "encoding": {"precision": encoding.precision, "topk": encoding.topk, "temperature": encoding.temperature},
        "distilled": {"sha256": file_sha256(distilled_path)},  # post-training refuses labels of another set
        "teacher": teacher_entry(classifier_path, out_dir),
    }
    if extra_paths:
        metadata["extra_teachers"] = [teacher_entry(path, out_dir) for path in extra_paths]
    out_dir = Path(out_dir)
    if config.mode == "online":
        path = distributed.on_main(write_online_descriptor, out_dir, metadata)
        return StageResult(
            "relabel",
            artifacts={"soft_labels": path},
            metrics={"mode": "online", "label_bytes_per_image_per_epoch": 0},
        )
    place(teacher, device, config.memory_format).eval()
    plan_bytes = sum(t.element_size() * t[0].numel() for t in plan_epoch(1, 0, spec, seed).tensors().values())
    label_bytes = encoding.bytes_per_label(info.num_classes)
    # rank 0 keeps the relabelled epochs (the ranks label each epoch together) and writes the shards,
    # adopting those an interrupted run finished, whatever its number of processes
    store = unit_store("relabel-epochs", {"metadata": metadata}) if distributed.is_main() else NoUnits()
    per_shard = _epochs_per_shard(config, count, plan_bytes + label_bytes)
    writer = ResumableShardWriter(out_dir, metadata, config.epochs, per_shard, store) if distributed.is_main() else None

    def adopted() -> tuple[int, int]:
        assert writer is not None  # on_main runs this on rank 0, which has the writer
        return writer.epochs_done, writer.agree_done

    done, agree = distributed.on_main(adopted)
    task = progress.task("relabel", config.epochs)
    task.advance(done)
    starts = range(0, count, config.batch_size)

    def label_batch(unit: tuple[int, int]) -> torch.Tensor:
        epoch, start = unit
        index = torch.arange(start, min(start + config.batch_size, count))
        return teacher(render_crops(distilled.images, plans[epoch], index, info.image_size, device)).float().cpu()

    try:
        with Stopwatch() as clock, torch.no_grad():
            # (epoch, batch) units, one epoch per process at a time, shared out across processes under torchrun
            for first in range(done, config.epochs, distributed.world_size()):
                epochs = range(first, min(first + distributed.world_size(), config.epochs))
                saved = {epoch: store.load(epoch_unit(epoch)) for epoch in epochs}  # epochs of an interrupted run
                # every rank learns which epochs rank 0 took over, and their agreement
                kept = distributed.on_main(_agreements, saved)
                plans = {epoch: plan_epoch(count, epoch, spec, seed) for epoch in epochs if epoch not in kept}
                logits = iter(distributed.map_units([(e, s) for e in plans for s in starts], label_batch))
                for epoch in epochs:
                    if epoch in kept:
                        unit = saved[epoch]  # on rank 0; the other ranks only count its agreement
                        epoch_tensors, epoch_agree = (unit[0] if unit is not None else {}), kept[epoch]
                    else:
                        epoch_logits = torch.cat([next(logits) for _ in starts])
                        epoch_agree = int((epoch_logits.argmax(-1) == distilled.labels).sum())
                        epoch_tensors = {**plans[epoch].tensors(), **encoding.encode(epoch_logits)}
                        store.save(epoch_unit(epoch), epoch_tensors, {"agree": epoch_agree})
                    agree += epoch_agree
                    if writer is not None:
                        writer.add_epoch(epoch, epoch_tensors, epoch_agree)
                    task.advance(1)
        files, stored_bytes = distributed.on_main(_commit, writer)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        task.close()
    return StageResult(
        "relabel",
        artifacts={"soft_labels": files[0]},
        metrics={
            "mode": "stored",
            "encoding": encoding.name,
            "crop_label_agreement": 100.0 * agree / (count * config.epochs),
            "label_bytes_per_image_per_epoch": label_bytes,
            "crop_bytes_per_image_per_epoch": plan_bytes,
            "stored_bytes_per_image_per_epoch": stored_bytes / (count * config.epochs),
            "shards": len(files),
        },
        seconds=clock.seconds,
    )
