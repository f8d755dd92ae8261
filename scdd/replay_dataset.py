"""A finished run's distilled set as a torch dataset, for any training loop (``scdd.load_distilled``).

Item ``i`` at epoch ``e`` is image ``i``'s crop of that epoch and the teacher's soft label for
exactly that crop, made by ``scdd.labels.replay_crops``, the function post-training's batches
(``scdd.labels.replay_batches``) are made with: crop box, flip, and a MixUp/CutMix partner when the
run relabelled with one; stored labels read from the shards, online labels computed by the teacher.
The label is the dense target distribution post-training trains towards at its temperature ``T``
(``SoftTargets.distribution``), so a loop that minimises ``T² · KL(target ‖ softmax(logits / T))``
trains as ``scdd posttrain`` does (Eq. 10). Crops are normalised with the dataset's mean and std, as
scdd's students normalise them inside the model (``normalize=False``: pixels in [0, 1]).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from scdd.distilled import load_distilled as load_distilled_set
from scdd.errors import ArtifactError, ConfigError
from scdd.labels import SoftTargets, open_soft_labels, replay_crops
from scdd.run_folder import MANIFEST_FILE, finished_result


def _run_artifacts(run_dir: Path) -> tuple[Path, Path, float]:
    """The distilled set, the soft labels and the post-training temperature a finished run recorded."""
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"{run_dir}: no {MANIFEST_FILE} (not an scdd run folder)")
    try:
        manifest = json.loads(path.read_text())
        stages, temperature = manifest["stages"], float(manifest["config"]["posttrain"]["temperature"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ArtifactError(f"{path}: unreadable manifest") from None
    images = finished_result(stages.get("recover"), run_dir, "recover") or finished_result(stages.get("coreset"), run_dir, "coreset")
    labels = finished_result(stages.get("relabel"), run_dir, "relabel")
    if images is None or labels is None:
        missing = "recover (or coreset)" if images is None else "relabel"
        raise ArtifactError(f"{run_dir}: the run has not finished its {missing} stage")
    return images.artifacts["distilled"], labels.artifacts["soft_labels"], temperature


class DistilledDataset(Dataset):
    """``(crop, soft label)`` pairs of one epoch of a run's distilled set; ``set_epoch`` moves to another."""

    def __init__(
        self,
        distilled_path: Path,
        labels_path: Path,
        temperature: float,
        *,
        epoch: int = 0,
        normalize: bool = True,
        device: torch.device | str = "cpu",
    ) -> None:
        self.distilled_path, self.labels_path = Path(distilled_path), Path(labels_path)
        self.distilled = load_distilled_set(distilled_path)
        self.info = self.distilled.info
        self.classes = self.info.class_names
        self.device = torch.device(device)
        self.source = open_soft_labels(labels_path, device=self.device, distilled=distilled_path)
        self.temperature, self.epochs, self.normalize = temperature, self.source.epochs, normalize
        self._mean = torch.tensor(self.info.mean).view(-1, 1, 1)
        self._std = torch.tensor(self.info.std).view(-1, 1, 1)
        self._stored: SoftTargets | None = None  # stored labels of the epoch (None: computed online)
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Crops and labels of ``epoch`` (``0 <= epoch < self.epochs``); call it at the start of every epoch."""
        if not 0 <= epoch < self.epochs:
            raise ConfigError(f"the run's soft labels cover epochs 0-{self.epochs - 1}, asked for {epoch}")
        self.epoch = epoch
        self._plan, self._stored = self.source.epoch(epoch)  # read once per epoch, not per item

    def __len__(self) -> int:
        return len(self.distilled.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        crops, targets = replay_crops(
            self.source,
            self._plan,
            self._stored,
            self.distilled.images,
            torch.tensor([int(index)]),
            image_size=self.info.image_size,
            device=self.device,
        )
        crop = crops[0].cpu()
        if self.normalize:
            crop = (crop - self._mean) / self._std
        return crop, targets.distribution(self.info.num_classes, self.temperature)[0].cpu()


def load_distilled(run_dir: str | Path, epoch: int = 0, *, normalize: bool = True, device: torch.device | str = "cpu") -> DistilledDataset:
    """A finished ``scdd run`` folder's distilled set with its soft labels, at ``epoch`` (``set_epoch`` to change).

    Yields ``(crop [C, S, S], target [num_classes])``: the crop post-training trains on in that epoch
    and the teacher's probabilities for it at the run's post-training temperature (``.temperature``).
    """
    distilled, labels, temperature = _run_artifacts(Path(run_dir))
    return DistilledDataset(distilled, labels, temperature, epoch=epoch, normalize=normalize, device=device)
