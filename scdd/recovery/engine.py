"""The recovery loop: synthesise images by Eq. 9, from Gaussian noise (the paper's start) or the
registered ``initializer``'s starting images.

Each batch minimises ``CE(model(view(x')), y) + α · R_reg(view(x')) [+ priors]`` where ``R_reg``
is the registered matcher's statistic-matching loss (Eq. 8). Optimisation follows SRe²L/SC-DD:
Adam with β = (0.5, 0.9), cosine learning rate, a fresh random view (crop + flip + jitter) of
every synthetic image each step, and clipping to the valid pixel range after each step. Images
live in normalised space, as the paper's learning rates assume, and go through the backbone and
head directly (the classifier's normalisation is the identity there).

Each step's crop scales come from the registered ``crop_schedule`` (the paper's: constant), a
registered ``regularizer`` (none in the paper) may add a term to the objective, and extra teachers
(none in the paper) make the matcher a committee over all of them (``scdd.recovery.committee``).

Batches hold many classes at once: the (class, ipc-index) pairs are taken ipc-index major and cut
into batches of ``batch_size``. Every image's start is fixed by its own (class, ipc-index) and
every batch's views by a seed of its first member and size, so the same config recomputes any image bit for bit: ``synthesize(..., members=[...])`` reruns only the batches
holding the requested images, and under torchrun each process runs a share of the batches
(``scdd.distributed.map_units``) with the same result as one process. The hot loop never waits
on the device: losses go into on-device trajectories, and progress reads them asynchronously.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from scdd import distributed
from scdd.augment import CropSpec
from scdd.augment.recovery import RecoveryViewSpec, SyntheticViews
from scdd.data.base import DatasetInfo, DatasetSplits
from scdd.errors import ConfigError
from scdd.matchers.base import StatMatcher, matcher_param_groups, reset_matcher
from scdd.models.classifier import Classifier
from scdd.progress import SILENT, Progress
from scdd.recovery.committee import TeacherCommittee
from scdd.recovery.config import RecoverConfig
from scdd.recovery.initializers import InitContext, Initializer
from scdd.recovery.monitor import LossMonitor
from scdd.recovery.priors import l2_prior, total_variation
from scdd.recovery.regularizers import RecoveryStep, Regularizer
from scdd.recovery.schedules import CropSchedule
from scdd.registry import get_component
from scdd.resume.units import unit_store
from scdd.runtime import generator, memory_format, place
from scdd.training.optim import cosine_schedule, make_optimizer

SYNC_EVERY = 25  # steps between progress reports
Member = tuple[int, int]  # (class, ipc-index)


@dataclass
class Synthesis:
    """Recovered images (float pixels in [0, 1]) with their labels and per-batch loss trajectories."""

    images: torch.Tensor
    labels: torch.Tensor
    ipc_index: torch.Tensor
    loss_ce: torch.Tensor  # [batches, iterations]
    loss_bn: torch.Tensor  # [batches, iterations]
    reads_training_data: bool = False  # a component started from or matched real training images


def recovery_order(num_classes: int, ipc: int) -> list[Member]:
    """All (class, ipc-index) pairs, ipc-index major, so each batch mixes classes."""
    return [(label, index) for index in range(ipc) for label in range(num_classes)]


def recovery_batches(num_classes: int, ipc: int, batch_size: int) -> list[list[Member]]:
    """The fixed batches recovery runs, in order."""
    order = recovery_order(num_classes, ipc)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def view_spec(info: DatasetInfo, config: RecoverConfig) -> RecoveryViewSpec:
    return RecoveryViewSpec(
        crop=CropSpec(scale=(config.crop_min_scale, config.crop_max_scale)) if config.crop else None,
        flip_p=0.5 if (config.flip and info.hflip) else 0.0,
        max_shift=int(config.jitter * info.image_size),
        per_batch=config.view_scope == "batch",
        min_shift=-int(config.jitter * info.image_size) if config.jitter_symmetric else 0,
    )


@dataclass
class Components:
    """The registered components of one recovery: matcher (Eq. 8; with extra teachers, a ``TeacherCommittee``
    of one per teacher), initializer, crop schedule, extra term."""

    matcher: StatMatcher
    initializer: Initializer
    schedule: CropSchedule
    regularizer: Regularizer | None

    @classmethod
    def build(cls, config: RecoverConfig, extra_teachers: Sequence[Classifier] = ()) -> Components:
        regularizer = get_component("regularizer", config.regularizer).build(config.regularizer_options) if config.regularizer else None
        matchers = [get_component("matcher", config.matcher).build(config.matcher_options) for _ in range(1 + len(extra_teachers))]
        return cls(
            TeacherCommittee(matchers, extra_teachers) if extra_teachers else matchers[0],
            get_component("initializer", config.initializer).build(config.initializer_options),
            get_component("crop_schedule", config.crop_schedule).build(config.crop_schedule_options),
            regularizer,
        )

    def reads_data(self) -> bool:
        """Whether recovery reads real training images (then the distilled set is not data-free)."""
        return bool(getattr(self.initializer, "reads_data", False) or getattr(self.matcher, "reads_data", False))

    def prepare(self, classifier: Classifier, context: InitContext) -> None:
        """Give the components what they read before the first batch (training images only where they need them)."""
        if self.reads_data() and context.data is None:
            raise ConfigError("this recovery reads the training images (a real-data initializer or matcher): run it in `scdd run`")
        self.initializer.prepare(context)
        prepare = getattr(self.matcher, "prepare", None)
        if callable(prepare):
            prepare(classifier, context.data, device=context.device)


class BatchRecovery:
    """Everything one recovery run shares across its batches: model, components, bounds, settings."""

    def __init__(
        self, classifier: Classifier, parts: Components, info: DatasetInfo, config: RecoverConfig, device: torch.device, seed: int
    ) -> None:
        self.classifier, self.parts, self.info, self.config, self.device, self.seed = classifier, parts, info, config, device, seed
        self.matcher = parts.matcher
        self.committee = parts.matcher if isinstance(parts.matcher, TeacherCommittee) else None
        self.mean = torch.tensor(info.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(info.std, device=device).view(1, -1, 1, 1)
        self.low, self.high = (0 - self.mean) / self.std, (1 - self.mean) / self.std
        self.spec = view_spec(info, config)
        self.memory_format = memory_format(device, config.memory_format)

    def _autocast(self):
        if not self.config.autocast:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def logits(self, view: torch.Tensor) -> torch.Tensor:
        """Class scores of an already normalised view (with extra teachers: the mean of every teacher's)."""
        view = view.contiguous(memory_format=self.memory_format)
        logits = self.classifier.head(self.classifier.backbone(view))
        return logits if self.committee is None else self.committee.vote(logits, view * self.std + self.mean)

    def run(self, members: Sequence[Member], monitor: LossMonitor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Optimise one batch; returns its pixels in [0, 1] (CPU) and its L_CE and L_BN per step (CPU)."""
        config, device, n = self.config, self.device, len(members)
        targets = torch.tensor([label for label, _ in members], device=device)
        latent = self.parts.initializer.start(members).to(device).requires_grad_(True)
        reset_matcher(self.matcher)
        set_targets = getattr(self.matcher, "set_targets", None)
        if callable(set_targets):
            set_targets(targets)
        crops, extra = self.parts.schedule, self.parts.regularizer
        if extra is not None:
            extra.begin(latent)
        groups = [{"params": [latent]}, *matcher_param_groups(self.matcher)]
        optimizer = make_optimizer(config.optimizer, groups, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)
        schedule = cosine_schedule(optimizer, config.iterations)
        views = SyntheticViews(
            n, self.info.image_size, self.spec, generator(self.seed, "recover-augment", *members[0], n, device=device), device
        )
        loss_ce = torch.zeros(config.iterations, device=device)
        loss_bn = torch.zeros(config.iterations, device=device)
        base = (config.crop_min_scale, config.crop_max_scale)
        crop = views.spec.crop  # the views' crop; roll-only views have none, so no crop scale to schedule
        for step in range(config.iterations):
            if crop is not None and (scale := crops.scale(step, config.iterations, base)) != crop.scale:
                crop = CropSpec(scale=scale)
                views.spec = dataclasses.replace(views.spec, crop=crop)
            view = views(latent)
            with self._autocast():
                logits = self.logits(view).float()
                ce = F.cross_entropy(logits, targets)
                bn = self.matcher.loss()
                loss = ce + config.alpha_bn * bn
                if extra is not None:
                    loss = loss + extra.loss(RecoveryStep(step, config.iterations, latent, view, logits, targets, views.again, self.logits))
                if config.tv_weight:
                    loss = loss + config.tv_weight * total_variation(view.float())
                if config.l2_weight:
                    loss = loss + config.l2_weight * l2_prior(view.float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                latent.clamp_(self.low, self.high)
                if extra is not None:
                    extra.after_step(latent)
                loss_ce[step] = ce.detach()
                loss_bn[step] = bn.detach()
            monitor.step(step, ce, bn, last=step + 1 == config.iterations)
        pixels = (latent.detach() * self.std + self.mean).clamp_(0, 1).cpu()
        return pixels, loss_ce.cpu(), loss_bn.cpu()


def _check_members(members: Sequence[Member], num_classes: int, ipc: int) -> list[Member]:
    checked = []
    for label, index in members:
        if not (0 <= label < num_classes and 0 <= index < ipc):
            raise ConfigError(f"image (class {label}, ipc-index {index}) is outside {num_classes} classes x ipc {ipc}")
        checked.append((int(label), int(index)))
    return checked


def synthesize(
    classifier: Classifier,
    info: DatasetInfo,
    config: RecoverConfig,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
    members: Sequence[Member] | None = None,
    data: DatasetSplits | None = None,
    extra_teachers: Sequence[Classifier] = (),
) -> Synthesis:
    """Recover ``config.ipc`` images per class from ``classifier`` (and ``extra_teachers``, matched and
    voting with it): data-free unless a component reads the training images (``data``; the real-image
    initializers, ``class-aware-bn``).

    With ``members``, only those (class, ipc-index) images are returned, in that order, computed
    by rerunning just the batches that hold them: bit-identical to the same images of a full run
    (trajectories are those of the batches rerun)."""
    for teacher in (classifier, *extra_teachers):
        place(teacher, device, config.memory_format).eval()
        teacher.requires_grad_(False)
    parts = Components.build(config, extra_teachers)
    parts.prepare(classifier, InitContext(info, config.ipc, seed, device, classifier, data))
    matcher = parts.matcher
    batches = recovery_batches(info.num_classes, config.ipc, config.batch_size)
    wanted = None if members is None else _check_members(members, info.num_classes, config.ipc)
    if wanted is not None:
        batches = [batch for batch in batches if set(batch) & set(wanted)]
    engine = BatchRecovery(classifier, parts, info, config, device, seed)
    task = progress.task("recover", len(distributed.shard_units(batches)) * config.iterations)
    monitor = LossMonitor(task, ("ce", "bn"), device, every=SYNC_EVERY, stage="recover")
    images, ce_curves, bn_curves, done = [], [], [], []
    store = unit_store("recover-batches", {"config": asdict(config), "seed": seed, "classes": info.num_classes})

    def run_batch(batch: list[Member]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        unit = "batch-c{}-i{}-n{}".format(*batch[0], len(batch))  # a finished batch of an interrupted run is reused
        saved = store.load(unit)
        if saved is not None:
            pixels, ce, bn = (saved[0][key] for key in ("pixels", "loss_ce", "loss_bn"))
            for step in range(config.iterations):  # its losses reported again: the loss curve stays whole
                monitor.step(step, ce[step], bn[step], last=step + 1 == config.iterations)
            return pixels, ce, bn
        output = engine.run(batch, monitor)
        if distributed.is_distributed():
            monitor.flush()  # a rank's non-finite loss stops the run before its images are gathered
        store.save(unit, dict(zip(("pixels", "loss_ce", "loss_bn"), output, strict=False)))
        return output

    matcher.attach(classifier)
    try:
        # each rank runs its share of the batches (same seeds as one process), every rank gets all of them
        for batch, (pixels, ce_curve, bn_curve) in zip(batches, distributed.map_units(batches, run_batch), strict=False):
            images.append(pixels)
            ce_curves.append(ce_curve)
            bn_curves.append(bn_curve)
            done.extend(batch)
        monitor.flush()
    finally:
        matcher.detach()
        task.close()
    all_images = torch.cat(images)
    if wanted is not None:
        position = {member: row for row, member in enumerate(done)}
        rows = [position[member] for member in wanted]
        all_images, done = all_images[rows], wanted
    return Synthesis(
        images=all_images,
        labels=torch.tensor([label for label, _ in done], dtype=torch.long),
        ipc_index=torch.tensor([index for _, index in done], dtype=torch.long),
        loss_ce=torch.stack(ce_curves),
        loss_bn=torch.stack(bn_curves),
        reads_training_data=parts.reads_data(),
    )
