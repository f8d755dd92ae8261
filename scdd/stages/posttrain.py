"""Stage 5, post-train: train fresh students on the distilled set (Eq. 10).

With soft labels, each step replays the relabel stage's crops (``scdd.labels.replay_batches``)
and minimises the KL divergence to the teacher's crop-level soft labels at temperature T (SRe²L's
protocol); the labels are read from stored shards or, in online mode, computed by the teacher on
the same crops. With hard labels (the real-image baseline), the same kind of crops are trained with
cross-entropy on the class label (``scdd.training.distilled``; the loop is ``scdd.training.TrainLoop``). Defaults: Table 16's validation column (AdamW, lr 0.001, wd 0.01,
batch 64, cosine, 300 epochs); ``runs`` repeats each student with its own seed (Table 1: 3 runs).

``ema_decay`` > 0 (off in the paper) keeps an exponential moving average of the student's weights and
buffers through training (timm's ``ModelEmaV3``, updated after every optimiser step; the first update
copies the weights, as timm's ``train.py`` counts updates) and saves, hence evaluates, the average
instead of the last weights: EDC's EMA-based evaluation (Shao et al. 2024). The average is kept with
the per-epoch checkpoint, so an interrupted run resumes to the same numbers.

Under torchrun the student is wrapped in DistributedDataParallel and each process trains on its
``DistributedSampler``-style part of every global batch (``batch_size / processes`` images), so
the global recipe is unchanged. BatchNorm statistics are per process (rank 0's are saved).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scdd import distributed
from scdd._options import check_memory_format
from scdd.distilled import DistilledSet, load_distilled
from scdd.errors import ConfigError
from scdd.labels import OnlineSoftLabels, PlanSpec, open_soft_labels
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model
from scdd.progress import SILENT, Progress
from scdd.registry import get_component, normalize_name
from scdd.runtime import derive_seed, generator, place, seed_everything
from scdd.stages.common import StageResult, Stopwatch
from scdd.training import TrainLoop
from scdd.training.distilled import SoftLabelSource, distilled_batches, distilled_loss
from scdd.training.optim import decay_groups

LABEL_MODES = ("soft", "hard")

__all__ = ["PosttrainConfig", "posttrain", "run_key", "run_seed", "student_file", "train_student"]


@dataclass
class PosttrainConfig:
    students: tuple[str, ...] = ("resnet18",)
    student_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # architecture options by student name
    epochs: int = 300
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 0.001
    weight_decay: float = 0.01
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    temperature: float = 20.0
    temperature_squared: bool = True  # scale the KL by T² (SRe²L Tiny code); the official CIFAR/ImageNet code does not
    labels: str = "soft"
    crop_min_scale: float = 0.08  # these five: `scdd run` copies relabel's crop settings (hard labels use them)
    crop: str = "resized"
    crop_padding: int = 4
    randaugment_ops: int = 0
    randaugment_magnitude: int = 9
    decay_norm_and_bias: bool = True  # False: no weight decay on biases and BN parameters (official ImageNet code)
    warmup_epochs: int = 0  # linear warm-up before the cosine decay (SRe²L's Tiny-ImageNet code: 5)
    # the cosine's length in epochs when it should outlast training (0: decay to zero at the last epoch); the official
    # CIFAR-100 code's factor 0.5·(1 + cos(π·e / 600)) over 200 epochs is schedule_epochs=600: it ends at 0.75
    schedule_epochs: int = 0
    ema_decay: float = 0.0  # >0: save (and evaluate) an EMA of the student's weights, this decay per step (EDC); 0: off (the paper)
    runs: int = 1  # post-training runs per student, each with its own seed (Table 1 reports mean ± std of 3)
    memory_format: str = "auto"  # the students' layout (scdd.runtime.memory_format)

    def __post_init__(self) -> None:
        check_memory_format(self.memory_format)
        if self.labels not in LABEL_MODES:
            raise ConfigError(f"labels must be one of {', '.join(LABEL_MODES)}, got {self.labels!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.runs < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError("post-training needs epochs >= 1, batch_size >= 1, runs >= 1 and 0 <= warmup_epochs < epochs")
        if self.schedule_epochs and self.schedule_epochs < self.epochs:
            raise ConfigError(f"posttrain.schedule_epochs ({self.schedule_epochs}) must be 0 or at least epochs ({self.epochs})")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"posttrain.ema_decay must be in [0, 1) (0: off), got {self.ema_decay}")
        if self.temperature <= 0:
            raise ConfigError(f"post-training temperature must be positive, got {self.temperature}")
        if not self.students:
            raise ConfigError("post-training needs at least one student architecture")

    def options_for(self, student: str) -> dict[str, Any]:
        """The architecture options given for ``student`` (names compared after normalisation)."""
        return next((dict(v) for k, v in self.student_options.items() if normalize_name(k) == normalize_name(student)), {})


def student_file(name: str, run: int = 0, runs: int = 1) -> str:
    return f"student-{name}.safetensors" if runs == 1 else f"student-{name}-run{run}.safetensors"


def run_key(name: str, run: int, runs: int) -> str:
    """The artifact / metric key of one post-training run: the architecture, plus ``/run<r>`` when repeated."""
    return name if runs == 1 else f"{name}/run{run}"


def run_seed(seed: int, run: int) -> int:
    """Run 0 uses the run seed itself; later runs derive their own."""
    return seed if run == 0 else derive_seed(seed, "posttrain-run", run)


def train_student(
    student_name: str,
    distilled: DistilledSet,
    labels: SoftLabelSource | None,
    config: PosttrainConfig,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> tuple[torch.nn.Module, list[float]]:
    """Train one fresh student on soft labels (stored or online) or, with ``labels=None``, hard labels;
    returns it (its weights' moving average with ``config.ema_decay``) and its mean loss per epoch."""
    if labels is not None and labels.epochs < config.epochs:
        raise ConfigError(f"soft labels cover {labels.epochs} epochs but post-training asks for {config.epochs}")
    if labels is not None and labels.images != len(distilled.labels):
        raise ConfigError(f"soft labels are for {labels.images} images, the distilled set has {len(distilled.labels)}")
    seed_everything(derive_seed(seed, "posttrain", student_name, "init"))
    student = place(build_classifier(student_name, distilled.info, config.options_for(student_name)), device, config.memory_format)
    count = len(distilled.labels)
    per_epoch = -(-count // config.batch_size)
    parameters = student.parameters() if config.decay_norm_and_bias else decay_groups(student)  # groups: torch optimisers take either
    loop = TrainLoop(
        f"posttrain {student_name}",
        config,
        parameters,
        per_epoch,
        device,
        warmup_steps=config.warmup_epochs * per_epoch,
        schedule_steps=config.schedule_epochs * per_epoch,
        count="epochs",
    )
    order = generator(seed, "posttrain", student_name, "order")
    identity: dict[str, float] = {"epochs": config.epochs, "per_epoch": per_epoch, "images": count}
    from timm.utils import ModelEmaV3  # timm only where it is used: loading a config does not import it

    modules: dict[str, torch.nn.Module] = {"student": student}
    average = ModelEmaV3(student, decay=config.ema_decay) if config.ema_decay else None
    if average is not None:
        identity["ema_decay"] = config.ema_decay
        modules["ema"] = average.module  # the average's weights and buffers, saved and restored with the student's
    loop.keep(("posttrain", student_name, seed), identity, modules=modules, generators={"order": order})
    model = loop.wrap(student)  # under torchrun: gradients averaged over processes
    hard_plan = PlanSpec(
        config.crop_min_scale,
        distilled.info.hflip,
        crop=config.crop,
        crop_padding=config.crop_padding,
        image_size=distilled.info.image_size,
        randaugment_ops=config.randaugment_ops,
        randaugment_magnitude=config.randaugment_magnitude,
    )
    batches = distilled_batches(
        distilled,
        labels,
        student,
        batch_size=config.batch_size,
        order=order,
        seed=seed,
        hard_plan=hard_plan,
        device=device,
    )
    classes = distilled.labels.to(device)
    squared = config.temperature_squared

    def loss(batch, _):
        return distilled_loss(model(batch[1]), batch, classes, config.temperature, squared=squared)

    def update_average(step: int) -> None:
        assert average is not None
        average.update(student, step=step + 1)  # timm's count of updates so far: the first one copies the weights

    curve = loop.run(batches, loss, after_step=None if average is None else update_average, progress=progress)
    return (student if average is None else average.module).eval(), curve


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
    """Train every student in ``config.students`` ``config.runs`` times; writes ``student-<name>[-run<r>].safetensors``."""
    distilled = load_distilled(distilled_path)
    labels = None
    if config.labels == "soft":
        if soft_labels_path is None:
            raise ConfigError("soft-label post-training needs the relabel stage's soft labels")
        labels = open_soft_labels(soft_labels_path, device=device, distilled=distilled_path)
    label_kind = "hard" if labels is None else ("soft-online" if isinstance(labels, OnlineSoftLabels) else f"soft-{labels.encoding.name}")
    artifacts, metrics = {}, {}
    with Stopwatch() as clock:
        for name in config.students:
            canonical = get_component("architecture", name).name
            for run in range(config.runs):
                student_seed = run_seed(seed, run)
                student, curve = train_student(canonical, distilled, labels, config, device=device, seed=student_seed, progress=progress)
                record = ModelRecord(
                    kind="classifier",
                    architecture=canonical,
                    architecture_options=config.options_for(canonical),
                    dataset=distilled.info,
                    extra={"trained_on": distilled.source, "labels": label_kind, "ipc": distilled.ipc, "seed": student_seed},
                )
                if config.ema_decay:
                    record.extra["ema_decay"] = config.ema_decay  # the saved weights are the moving average
                key = run_key(canonical, run, config.runs)
                artifacts[key] = distributed.on_main(  # rank 0 writes, the others wait
                    save_model, Path(out_dir) / student_file(canonical, run, config.runs), student, record
                )
                metrics[key] = {"final_loss": curve[-1]}
    return StageResult("posttrain", artifacts=artifacts, metrics=metrics, seconds=clock.seconds)
