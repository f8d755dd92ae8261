"""scdd.load_distilled yields exactly the crops and soft labels post-training trains on; the docs' own loop runs."""

import json
import re
import runpy
import shutil
from pathlib import Path

import pytest
import torch

import scdd
import scdd.training.distilled as training_distilled
from scdd.config import make_run_config, to_dict
from scdd.distilled import load_distilled as load_distilled_set
from scdd.errors import ArtifactError, ConfigError
from scdd.labels import SoftTargets, open_soft_labels
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model
from scdd.replay_dataset import DistilledDataset, load_distilled
from scdd.stages.coreset import coreset_random
from scdd.stages.posttrain import PosttrainConfig, train_student
from scdd.stages.relabel import RelabelConfig, relabel

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small_run(mnist_subset, tmp_path_factory):
    """A run folder holding what load_distilled reads: 1 real image per class (a coreset), an untrained teacher,
    its soft labels for 3 epochs, and the manifest naming them (built directly: no squeeze or recovery needed)."""
    out = tmp_path_factory.mktemp("small") / "run"
    data = mnist_subset(200, 20, 0)
    distilled = coreset_random(data, 1, out / "coreset", seed=0).artifacts["distilled"]
    record = ModelRecord("classifier", "resnet10-slim", {}, data.info, {})
    teacher = save_model(out / "align" / "classifier.safetensors", build_classifier("resnet10-slim", data.info), record)
    labels = relabel(RelabelConfig(epochs=3, temperature=2.0), teacher, distilled, out / "relabel", device=CPU, seed=0)
    manifest = {
        "scdd_manifest": 1,
        "config": to_dict(make_run_config({"posttrain": {"epochs": 3, "temperature": 2.0}})),
        "stages": {
            "coreset": {"status": "done", "artifacts": {"distilled": "coreset/distilled.safetensors"}},
            "relabel": {"status": "done", "artifacts": {"soft_labels": str(labels.artifacts["soft_labels"].relative_to(out))}},
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out, None


def _posttrain_batches(monkeypatch, distilled_path, labels_path, epochs):
    """Every (index, crops, targets) batch post-training's own loop consumes, per epoch."""
    seen = []
    original = training_distilled.replay_batches

    def recording(source, images, epoch, *args, **kwargs):
        for index, crops, targets in original(source, images, epoch, *args, **kwargs):
            seen.append((epoch, index.clone(), crops.clone(), targets))
            yield index, crops, targets

    monkeypatch.setattr(training_distilled, "replay_batches", recording)
    labels = open_soft_labels(labels_path, device=CPU)
    config = PosttrainConfig(students=("tiny-vgg-bn",), epochs=epochs, batch_size=4, temperature=2.0)
    train_student("tiny-vgg-bn", load_distilled_set(distilled_path), labels, config, device=CPU, seed=0)
    return seen


def _check_items(dataset, seen, temperature):
    num_classes = dataset.info.num_classes
    for epoch, index, crops, targets in seen:
        dataset.set_epoch(epoch)
        dense = targets.distribution(num_classes, temperature) if isinstance(targets, SoftTargets) else targets
        for row, i in enumerate(index.tolist()):
            crop, target = dataset[i]
            assert torch.equal(crop, crops[row]), f"epoch {epoch} image {i}: crop differs from post-training's"
            assert torch.allclose(target, dense[row], atol=1e-6), f"epoch {epoch} image {i}: label differs"


@pytest.mark.parametrize("mix", ["none", "cutmix"])
def test_items_are_what_posttraining_trains_on(small_run, test_architectures, tmp_path, monkeypatch, mix):
    run, _ = small_run
    dataset = scdd.load_distilled(run, normalize=False)
    assert len(dataset) == 10 and dataset.epochs == 3 and dataset.temperature == 2.0
    distilled = dataset.distilled_path
    if mix == "none":
        labels = run / "relabel" / "soft_labels.safetensors"
    else:  # a relabelling with CutMix partners: the partner's crop and the mixed label are replayed too
        labels = relabel(
            RelabelConfig(epochs=2, mix="cutmix"),
            run / "align" / "classifier.safetensors",
            distilled,
            tmp_path / "relabel",
            device=CPU,
            seed=5,
        ).artifacts["soft_labels"]
        dataset = DistilledDataset(distilled, labels, dataset.temperature, normalize=False)
    seen = _posttrain_batches(monkeypatch, distilled, labels, epochs=dataset.epochs)
    assert {epoch for epoch, *_ in seen} == set(range(dataset.epochs))
    _check_items(dataset, seen, dataset.temperature)
    normalised = DistilledDataset(distilled, labels, dataset.temperature, epoch=1)
    mean, std = torch.tensor(dataset.info.mean).view(-1, 1, 1), torch.tensor(dataset.info.std).view(-1, 1, 1)
    dataset.set_epoch(1)
    assert torch.allclose(normalised[3][0], (dataset[3][0] - mean) / std)


def test_online_labels_are_computed_by_the_teacher(small_run, test_architectures, tmp_path, monkeypatch):
    run, _ = small_run
    distilled = run / "coreset" / "distilled.safetensors"
    labels = relabel(
        RelabelConfig(epochs=2, mode="online"), run / "align" / "classifier.safetensors", distilled, tmp_path / "online", device=CPU, seed=1
    ).artifacts["soft_labels"]
    dataset = DistilledDataset(distilled, labels, 2.0, normalize=False)
    seen = _posttrain_batches(monkeypatch, distilled, labels, epochs=2)
    _check_items(dataset, seen, 2.0)  # a batch of one through the teacher: equal to float precision


def test_bad_runs_and_epochs(small_run, tmp_path):
    with pytest.raises(ArtifactError, match="not an scdd run folder"):
        scdd.load_distilled(tmp_path)
    run, _ = small_run
    with pytest.raises(ConfigError, match="cover epochs 0-2, asked for 3"):
        scdd.load_distilled(run, epoch=3)
    copy = shutil.copytree(run, tmp_path / "copy")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["stages"]["relabel"]["status"] = "running"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="has not finished its relabel stage"):
        load_distilled(copy)


def test_the_docs_loop_runs(small_run, tmp_path, monkeypatch):
    run, _ = small_run
    text = (ROOT / "docs" / "use-your-own-loop.md").read_text()
    code = re.search(r"```python\n(import timm.*?)```", text, re.DOTALL).group(1)
    assert len(code.strip().splitlines()) <= 30
    code = code.replace('"runs/digits", 50', f"{str(run)!r}, 1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "example.py").write_text(code)
    runpy.run_path(str(tmp_path / "example.py"), run_name="__main__")
    weights = torch.load(tmp_path / "my-student.pt", weights_only=True)
    assert weights["fc.weight"].shape[0] == 10
