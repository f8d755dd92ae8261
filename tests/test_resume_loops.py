"""Resuming after interruption, in process: every training loop (squeeze, align, post-train)
continues from its last saved epoch to the same state as an uninterrupted run, checkpoints that do
not fit are ignored, saving takes a bounded share of training, and relabelling continues from its
last epoch or shard. (A whole run killed with SIGKILL: test_resume.py.)"""

import pytest
import torch
from hard_inputs import _classifier, _distilled
from test_resume import _content, make_image_folder

import scdd.training.checkpoint
from scdd.curves import CurveRecorder
from scdd.data.folders import ImageFolderConfig, load_imagefolder
from scdd.distilled import DistilledSet
from scdd.models.build import build_backbone
from scdd.models.classifier import Classifier
from scdd.progress import SILENT
from scdd.registry import get_component
from scdd.resume.scope import progress_scope
from scdd.resume.units import UnitStore
from scdd.stages.posttrain import PosttrainConfig, train_student
from scdd.stages.relabel import RelabelConfig, relabel
from scdd.training.checkpoint import EpochCheckpoint
from scdd.training.loop import TrainLoop

# ----------------------------------------------------------------------------- training loops, in process


class Interrupted(Exception):
    pass


def _interrupt_after(monkeypatch, epochs: int):
    """Make every epoch checkpoint raise right after saving the state of ``epochs`` finished epochs."""
    monkeypatch.setattr(scdd.training.checkpoint, "SAVE_SHARE", 0)  # save after every epoch
    original = EpochCheckpoint.epoch_done

    def epoch_done(self, done, curve=None, extra=None):
        original(self, done, curve, extra)
        if done == epochs:
            raise Interrupted

    monkeypatch.setattr(EpochCheckpoint, "epoch_done", epoch_done)
    return lambda: monkeypatch.setattr(EpochCheckpoint, "epoch_done", original)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = make_image_folder(tmp_path_factory.mktemp("small"), train=4, val=1)
    return load_imagefolder(ImageFolderConfig(), data_root=root)


def _state(module: torch.nn.Module) -> dict:
    return {key: value.clone() for key, value in module.state_dict().items()}


def _resumes_exactly(monkeypatch, tmp_path, train, stop_after: int):
    """train() with no interruption vs. interrupted after ``stop_after`` epochs and run again in the same folder."""
    with progress_scope(tmp_path / "whole"):
        reference = train()
    restore = _interrupt_after(monkeypatch, stop_after)
    with progress_scope(tmp_path / "cut"), pytest.raises(Interrupted):
        train()
    restore()
    with progress_scope(tmp_path / "cut") as scope:
        resumed = train()
    assert scope.counts["epochs_reused"] == stop_after
    return reference, resumed


@pytest.mark.parametrize("pretrainer", ["moco-v3", "supervised"])
def test_squeeze_resumes_from_its_last_epoch(pretrainer, small_data, monkeypatch, tmp_path):
    options = (
        {"epochs": 3, "batch_size": 16, "hidden_dim": 32, "output_dim": 16} if pretrainer == "moco-v3" else {"epochs": 3, "batch_size": 16}
    )

    def train():
        torch.manual_seed(0)
        backbone = build_backbone("resnet10-slim", small_data.info, {})
        result = get_component("pretrainer", pretrainer).build(options).pretrain(backbone, small_data, device=torch.device("cpu"), seed=1)
        return _state(result.backbone), result.loss_per_epoch

    (weights, curve), (resumed_weights, resumed_curve) = _resumes_exactly(monkeypatch, tmp_path, train, 2)
    assert curve == resumed_curve and len(curve) == 3
    assert all(torch.equal(weights[key], resumed_weights[key]) for key in weights)


@pytest.mark.parametrize("aligner, options", [("linear-probe", {"augment": True}), ("finetune", {"batch_size": 8})])
def test_align_resumes_from_its_last_epoch(aligner, options, small_data, monkeypatch, tmp_path):
    def train():
        torch.manual_seed(0)
        info = small_data.info
        classifier = Classifier(build_backbone("resnet10-slim", info, {}), info.num_classes, info.mean, info.std)
        aligned = (
            get_component("aligner", aligner)
            .build({"epochs": 3, **options})
            .align(classifier, small_data, device=torch.device("cpu"), seed=2)
        )
        return _state(aligned)

    weights, resumed = _resumes_exactly(monkeypatch, tmp_path, train, 1)
    assert all(torch.equal(weights[key], resumed[key]) for key in weights)


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])  # 0.9: the saved student is the EMA, kept with each epoch's checkpoint
def test_posttrain_resumes_from_its_last_epoch(ema_decay, small_data, monkeypatch, tmp_path):
    images = small_data.train.images[:20].float() / 255
    distilled = DistilledSet(images, small_data.train.labels[:20], small_data.info, 2, "test")
    config = PosttrainConfig(students=("resnet10-slim",), epochs=3, batch_size=8, labels="hard", ema_decay=ema_decay)

    def train():
        student, curve = train_student("resnet10-slim", distilled, None, config, device=torch.device("cpu"), seed=4)
        return _state(student), curve

    (weights, curve), (resumed_weights, resumed_curve) = _resumes_exactly(monkeypatch, tmp_path, train, 2)
    assert curve == resumed_curve
    assert all(torch.equal(weights[key], resumed_weights[key]) for key in weights)


def test_unreadable_or_foreign_checkpoint_is_not_used(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "train.safetensors"
    EpochCheckpoint(path, identity={"epochs": 3}, modules={"m": model}).save(2, [1.0, 0.5])
    assert EpochCheckpoint(path, identity={"epochs": 4}, modules={"m": model}).restore() == (0, [], {})
    assert EpochCheckpoint(path, identity={"epochs": 3}, modules={"m": model}).restore()[:2] == (2, [1.0, 0.5])
    path.write_bytes(path.read_bytes()[:40])  # truncated: ignored, never half-loaded
    assert EpochCheckpoint(path, identity={"epochs": 3}, modules={"m": model}).restore() == (0, [], {})


class _Clock:
    """A monotonic clock that moves only when told to: timings independent of the machine's load."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "epoch_seconds, save_seconds",
    [
        (0.0013, 0.021),  # epochs much shorter than a save (a large student on a few distilled images)
        (0.031, 0.021),  # a save takes about an epoch
        (0.5, 0.021),  # epochs longer than ten saves: every epoch is saved
    ],
)
def test_saving_takes_a_bounded_share_of_training(epoch_seconds, save_seconds, monkeypatch, tmp_path):
    """Saving takes at most SAVE_SHARE of a loop's time (beyond the latest save), and at most ten
    save-durations of training (plus the epoch they end in) are ever unsaved. Epochs and saves
    advance a fake clock, so the outcome does not depend on how loaded the machine is."""
    clock = _Clock()
    monkeypatch.setattr(scdd.training.checkpoint, "time", clock)
    share = scdd.training.checkpoint.SAVE_SHARE
    saved = []

    def save(done, curve=None, extra=None):
        saved.append(done)
        clock.now += save_seconds

    checkpoint = EpochCheckpoint(tmp_path / "t.safetensors", identity={}, modules={"m": torch.nn.Linear(3, 2)})
    monkeypatch.setattr(checkpoint, "save", save)
    epochs = 2000
    for epoch in range(1, epochs + 1):
        clock.now += epoch_seconds
        checkpoint.epoch_done(epoch)
    assert saved[0] == 1  # the first epoch is always saved
    assert len(saved) * save_seconds <= share * epochs * epoch_seconds + save_seconds
    for last, following in zip(saved, saved[1:] + [epochs + 1], strict=False):
        assert (following - last - 1) * epoch_seconds < save_seconds / share  # unsaved training
    if epoch_seconds * share >= save_seconds:
        assert saved == list(range(1, epochs + 1))


@pytest.mark.parametrize(
    "stop_after, counts",
    [
        ("epoch-00001", {"units_reused": 2, "units_computed": 1}),  # two epochs kept as units, the first shard unwritten
        ("epoch-00002", {"units_reused": 3}),  # the first shard (two epochs) adopted, the third epoch kept as a unit
    ],
)
def test_relabel_resumes_from_its_last_epoch(stop_after, counts, monkeypatch, tmp_path):
    """Relabelling interrupted part-way continues to the same soft-label shards, reusing the finished epochs."""
    teacher, distilled = _classifier(tmp_path / "teacher.safetensors"), _distilled(tmp_path / "distilled.safetensors")
    config = RelabelConfig(epochs=3, epochs_per_shard=2)

    def run(folder):
        with progress_scope(folder) as scope:
            relabel(config, teacher, distilled, folder, device=torch.device("cpu"), seed=5)
        return scope

    run(tmp_path / "whole")
    original = UnitStore.save

    def save_then_stop(self, unit, tensors, extra=None, count=True):
        original(self, unit, tensors, extra, count)
        if unit == stop_after:
            raise Interrupted

    monkeypatch.setattr(UnitStore, "save", save_then_stop)
    with pytest.raises(Interrupted):
        run(tmp_path / "cut")
    monkeypatch.setattr(UnitStore, "save", original)
    assert not (tmp_path / "cut" / "soft_labels.safetensors").exists()  # no shard appears before all do
    scope = run(tmp_path / "cut")
    assert scope.counts == counts
    for name in ("soft_labels.safetensors", "soft_labels-00001.safetensors"):
        whole, resumed = _content(tmp_path / "whole" / name), _content(tmp_path / "cut" / name)
        assert whole[1] == resumed[1] and all(torch.equal(whole[0][k], resumed[0][k]) for k in whole[0])


@pytest.mark.parametrize("count", ["steps", "epochs"])
def test_a_resumed_loop_reports_the_finished_epochs_again(count, monkeypatch, tmp_path):
    """The loss curve a resumed run writes (curves.csv) has every row of an uninterrupted run's, the
    per-step losses of the epochs finished before the interruption included."""

    def train() -> list[tuple]:
        torch.manual_seed(0)
        model, data = torch.nn.Linear(3, 1), torch.randn(12, 3)
        loop = TrainLoop("fit", PosttrainConfig(epochs=3, lr=0.01), model.parameters(), 12, torch.device("cpu"), count=count)
        loop.keep("fit", {"epochs": 3}, modules={"model": model})
        recorder = CurveRecorder(SILENT)
        loop.run(lambda epoch: data, lambda row, step: model(row).square().mean(), progress=recorder)
        return [row[:-1] for row in recorder.rows]  # all but the wall-clock seconds

    whole, resumed = _resumes_exactly(monkeypatch, tmp_path, train, 2)
    assert resumed == whole and len(whole) == (3 + 3 if count == "steps" else 3)
