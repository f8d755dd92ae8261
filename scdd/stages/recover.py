"""Stage 3, recover: synthesise a distilled set from an aligned classifier (Eq. 9); data-free with
the paper's components, reading the training images with a real-data initializer or matcher
(recorded as ``reads_training_data`` in the artifact and ``data_free`` in the stage's metrics).

The loop itself is ``scdd.recovery.engine``; this stage loads the classifier (and any
``extra_teachers``, each checked against it), runs it, checks how the classifier labels the recovered
images, and writes the artifacts: the images losslessly (float32 safetensors, and 8-bit PNGs for
viewing, with the teacher count in the metadata) and the L_CE / L_BN trajectories (Fig. 5).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from scdd.artifacts import export_image_folder, save_tensors
from scdd.data.base import DatasetSplits
from scdd.distributed import on_main
from scdd.models.classifier import Classifier
from scdd.models.saved import load_classifier, load_teacher
from scdd.progress import SILENT, Progress
from scdd.recovery.config import RecoverConfig
from scdd.recovery.engine import Synthesis, recovery_batches, recovery_order, synthesize
from scdd.recovery.initializers import initial_noise
from scdd.registry import get_component
from scdd.runtime import place
from scdd.stages.common import StageResult, Stopwatch, info_dict

__all__ = [
    "RecoverConfig",
    "Synthesis",
    "initial_noise",
    "recover",
    "recovery_batches",
    "recovery_order",
    "synthesize",
    "teacher_agreement",
]

DISTILLED_FILE = "distilled.safetensors"
COMPONENT_SLOTS = ("matcher", "initializer", "crop_schedule", "regularizer")  # recorded by name and resolved options
TRAJECTORY_FILE = "trajectory.safetensors"
IMAGE_FOLDER = "images"


def resolved_options(kind: str, name: str, options: dict) -> tuple[str, dict]:
    """A configured component's canonical name and its options with defaults filled in (unset: ``("", {})``)."""
    if not name:
        return "", {}
    component = get_component(kind, name)
    return component.name, dataclasses.asdict(component.make_config(options)) if component.config else dict(options)


@torch.no_grad()
def teacher_agreement(
    classifier: Classifier, images: torch.Tensor, labels: torch.Tensor, device: torch.device, batch_size: int = 256
) -> float:
    """Percentage of recovered images (whole, un-augmented) that ``classifier`` puts in their target class."""
    place(classifier, device).eval()
    hits = 0
    for start in range(0, len(labels), batch_size):
        logits = classifier(images[start : start + batch_size].to(device))
        hits += int((logits.argmax(1).cpu() == labels[start : start + batch_size]).sum())
    return 100.0 * hits / max(1, len(labels))


def recover(
    config: RecoverConfig,
    classifier_path: Path,
    out_dir: Path,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
    data: DatasetSplits | None = None,
) -> StageResult:
    """Recover a distilled set from an aligned classifier (reading ``data`` only where a component
    needs training images); writes the images (safetensors + PNG folder) and the L_CE / L_BN
    trajectories (Fig. 5)."""
    config.check_teachers()
    classifier, record = load_classifier(classifier_path)
    info = record.dataset
    extras = [load_teacher(path, info, "recover.extra_teachers") for path in config.extra_teachers]
    chosen = {kind: resolved_options(kind, getattr(config, kind), getattr(config, f"{kind}_options")) for kind in COMPONENT_SLOTS}
    with Stopwatch() as clock:
        result = synthesize(classifier, info, config, device=device, seed=seed, progress=progress, data=data, extra_teachers=extras)
    agreement = teacher_agreement(classifier.float().to(memory_format=torch.contiguous_format), result.images, result.labels, device)
    out_dir = Path(out_dir)
    metadata = {
        "kind": "distilled",
        "dataset": info_dict(info),
        "ipc": config.ipc,
        "source": "recover",
        "reads_training_data": result.reads_training_data,
        "teachers": 1 + len(extras),  # BN statistics matched and logits averaged (recover.extra_teachers); cost grows with it
        "aligner": record.extra.get("aligner"),
        "pretrainer": record.extra.get("pretrainer"),
    }
    for kind, (name, options) in chosen.items():
        metadata[kind], metadata[f"{kind}_options"] = name, options
    distilled = on_main(  # rank 0 writes, the others wait
        save_tensors,
        out_dir / DISTILLED_FILE,
        {"images": result.images, "labels": result.labels, "ipc_index": result.ipc_index},
        metadata,
    )
    trajectory = on_main(
        save_tensors, out_dir / TRAJECTORY_FILE, {"loss_ce": result.loss_ce, "loss_bn": result.loss_bn}, {"kind": "trajectory"}
    )
    folder = on_main(export_image_folder, result.images, result.labels, info.class_names, out_dir / IMAGE_FOLDER)
    bn_first, bn_last = result.loss_bn[:, 0].mean().item(), result.loss_bn[:, -1].mean().item()
    return StageResult(
        "recover",
        artifacts={"distilled": distilled, "trajectory": trajectory, "image_folder": folder},
        metrics={
            "images": len(result.labels),
            "data_free": not result.reads_training_data,
            "teacher_top1_on_distilled": agreement,
            "loss_bn_first": bn_first,
            "loss_bn_last": bn_last,
            "loss_bn_drop": bn_first / bn_last if bn_last > 0 else None,
            "loss_ce_first": result.loss_ce[:, 0].mean().item(),
            "loss_ce_last": result.loss_ce[:, -1].mean().item(),
        },
        seconds=clock.seconds,
    )
