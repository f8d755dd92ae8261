"""Stage 5, post-train: train fresh students on the distilled set (Eq. 10).

With soft labels, each step replays the relabel stage's crops and minimises the KL divergence
to the teacher's crop-level soft labels at temperature T (SRe²L's protocol). With hard labels
(the real-image baseline), the same kind of crops are trained with cross-entropy on the class label.
Defaults: Table 16's validation column (AdamW, lr 0.001, wd 0.01, batch 64, cosine, 300 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from scdd.artifacts import ModelRecord, save_model
from scdd.augment import apply_crops
from scdd.distilled import DistilledSet, load_distilled
from scdd.errors import ConfigError
from scdd.models.build import build_classifier
from scdd.progress import SILENT, Progress
from scdd.registry import get_component
from scdd.runtime import derive_seed, generator, seed_everything
from scdd.stages.common import StageResult, Stopwatch
from scdd.stages.relabel import SoftLabels, crop_plan, load_soft_labels
from scdd.training import check_finite, cosine_schedule, make_optimizer

LABEL_MODES = ("soft", "hard")


@dataclass
class PosttrainConfig:
    students: tuple[str, ...] = ("resnet18",)
    epochs: int = 300
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 0.001
    weight_decay: float = 0.01
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    temperature: float = 20.0
    labels: str = "soft"
    crop_min_scale: float = 0.08

    def __post_init__(self) -> None:
        if self.labels not in LABEL_MODES:
            raise ConfigError(f"labels must be one of {', '.join(LABEL_MODES)}, got {self.labels!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("post-training needs epochs >= 1 and batch_size >= 1")
        if not self.students:
            raise ConfigError("post-training needs at least one student architecture")


def student_file(name: str) -> str:
    return f"student-{name}.safetensors"


def soft_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(softmax(t/T) ‖ softmax(s/T))``, batch mean."""
    return F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.log_softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (temperature**2)


def train_student(
    student_name: str,
    distilled: DistilledSet,
    labels: SoftLabels | None,
    config: PosttrainConfig,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> tuple[torch.nn.Module, list[float]]:
    """Train one fresh student; returns it and its mean loss per epoch."""
    if labels is not None and labels.epochs < config.epochs:
        raise ConfigError(f"soft labels cover {labels.epochs} epochs but post-training asks for {config.epochs}")
    seed_everything(derive_seed(seed, "posttrain", student_name, "init"))
    student = build_classifier(student_name, distilled.info).to(device)
    optimizer = make_optimizer(
        config.optimizer,
        student.parameters(),
        lr=config.lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        betas=config.betas,
    )
    count = len(distilled.labels)
    per_epoch = -(-count // config.batch_size)
    schedule = cosine_schedule(optimizer, config.epochs * per_epoch)
    order = generator(seed, "posttrain", student_name, "order")
    images, targets = distilled.images.to(device), distilled.labels.to(device)
    curve: list[float] = []
    task = progress.task(f"posttrain {student_name}", config.epochs)
    try:
        for epoch in range(config.epochs):
            if labels is not None:
                boxes, flips, teacher_logits = labels.boxes[epoch], labels.flips[epoch], labels.logits[epoch].to(device)
            else:
                boxes, flips = crop_plan(count, epoch, distilled.info, config.crop_min_scale, seed)
            permutation = torch.randperm(count, generator=order)
            running = torch.zeros((), device=device)
            student.train()
            for start in range(0, count, config.batch_size):
                index = permutation[start : start + config.batch_size]
                crops = apply_crops(images[index.to(device)], boxes[index], flips[index], distilled.info.image_size)
                logits = student(crops)
                if labels is not None:
                    loss = soft_label_loss(logits, teacher_logits[index.to(device)], config.temperature)
                else:
                    loss = F.cross_entropy(logits, targets[index.to(device)])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                running += loss.detach()
            epoch_loss = check_finite((running / per_epoch).item(), f"posttrain {student_name}", epoch + 1)
            curve.append(epoch_loss)
            task.advance(1, loss=epoch_loss)
    finally:
        task.close()
    return student.eval(), curve


def posttrain(
    config: PosttrainConfig,
    distilled_path: Path,
    soft_labels_path: Path | None,
    out_dir: Path,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> StageResult:
    """Train every student in ``config.students``; writes ``student-<name>.safetensors`` for each."""
    distilled = load_distilled(distilled_path)
    labels = None
    if config.labels == "soft":
        if soft_labels_path is None:
            raise ConfigError("soft-label post-training needs the relabel stage's soft labels")
        labels = load_soft_labels(soft_labels_path)
    artifacts, metrics = {}, {}
    with Stopwatch() as clock:
        for name in config.students:
            canonical = get_component("architecture", name).name
            student, curve = train_student(canonical, distilled, labels, config, device=device, seed=seed, progress=progress)
            record = ModelRecord(
                kind="classifier",
                architecture=canonical,
                architecture_options={},
                dataset=distilled.info,
                extra={"trained_on": distilled.source, "labels": config.labels, "ipc": distilled.ipc},
            )
            artifacts[canonical] = save_model(Path(out_dir) / student_file(canonical), student, record)
            metrics[canonical] = {"final_loss": curve[-1]}
    return StageResult("posttrain", artifacts=artifacts, metrics=metrics, seconds=clock.seconds)
