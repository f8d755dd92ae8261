"""Several teachers (G-VBSM / CV-DD): ensemble soft labels (``relabel.extra_teachers``) are the mean of
the teachers' softened outputs, stored or online, with every teacher's SHA-256 recorded; a recovery
with ``recover.extra_teachers`` matches the mean of the per-teacher BN terms and takes L_CE of the mean
logits, checked by hand; a teacher that does not fit is a one-line error before any work."""

import dataclasses
import re

import pytest
import torch
import torch.nn.functional as F
from hard_inputs import _distilled, _info
from toy_models import randomise_bn

from scdd.artifacts import file_sha256, load_tensors
from scdd.config import check_components, make_run_config
from scdd.distilled import load_distilled
from scdd.errors import ArtifactError, ConfigError
from scdd.labels import StoredSoftLabels, open_soft_labels, read_metadata, render_crops
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, load_classifier, save_model
from scdd.recovery.config import RecoverConfig
from scdd.recovery.engine import synthesize
from scdd.stages.recover import recover
from scdd.stages.relabel import RelabelConfig, relabel

CPU = torch.device("cpu")
T = 4.0
# lr 0: the images stay at their start; no crop, flip or roll: each step's view is the image itself
FROZEN = RecoverConfig(ipc=1, iterations=2, batch_size=10, lr=0.0, alpha_bn=0.3, crop=False, flip=False, jitter=0.0)


def _teacher(path, seed: int, info=None):
    info = info or _info()
    torch.manual_seed(seed)
    return save_model(path, build_classifier("resnet10-slim", info), ModelRecord("classifier", "resnet10-slim", {}, info, {}))


@pytest.fixture
def files(tmp_path):
    return _teacher(tmp_path / "a.safetensors", 0), _teacher(tmp_path / "b.safetensors", 1), _distilled(tmp_path / "distilled.safetensors")


@torch.no_grad()
def _softened(path, crops):
    return F.softmax(load_classifier(path)[0].eval()(crops) / T, dim=1)


def test_ensemble_labels_are_the_mean_of_the_teachers_softened_outputs(files, tmp_path):
    a, b, distilled = files
    config = RelabelConfig(epochs=2, temperature=T, extra_teachers=(str(b),))
    stored = relabel(config, a, distilled, tmp_path / "stored", device=CPU, seed=5).artifacts["soft_labels"]
    online = relabel(dataclasses.replace(config, mode="online"), a, distilled, tmp_path / "online", device=CPU, seed=5)
    online_labels = open_soft_labels(online.artifacts["soft_labels"], device=CPU)
    images = load_distilled(distilled).images
    for epoch in range(2):
        plan, targets = StoredSoftLabels(stored).epoch(epoch)
        crops = render_crops(images, plan, torch.arange(len(images)), 16, CPU)
        expected = (_softened(a, crops) + _softened(b, crops)) / 2
        assert torch.allclose(F.softmax(targets.logits / T, dim=1), expected, atol=1e-6)
        assert torch.allclose(F.softmax(online_labels.label(crops).logits / T, dim=1), expected, atol=1e-6)
        assert not torch.allclose(expected, _softened(a, crops), atol=1e-3)  # the second teacher counts
    for path in (stored, online.artifacts["soft_labels"]):
        metadata = read_metadata(path)
        assert metadata["teacher"]["sha256"] == file_sha256(a)
        assert [entry["sha256"] for entry in metadata["extra_teachers"]] == [file_sha256(b)]
    assert "extra_teachers" not in read_metadata(
        relabel(RelabelConfig(epochs=1), a, distilled, tmp_path / "one", device=CPU, seed=5).artifacts["soft_labels"]
    )


def test_two_teacher_recovery_averages_the_matching_terms_and_the_logits(mnist_subset):
    info = mnist_subset(20, 10, seed=0).info
    torch.manual_seed(0)
    first = build_classifier("resnet10-slim", info)
    torch.manual_seed(1)
    second = build_classifier("resnet10-slim", info)
    randomise_bn(second)  # statistics of its own, as another backbone's
    alone = [synthesize(model, info, FROZEN, device=CPU, seed=2) for model in (first, second)]
    both = synthesize(first, info, FROZEN, device=CPU, seed=2, extra_teachers=[second])
    assert torch.equal(both.images, alone[0].images)  # the same starts, not moved
    assert torch.allclose(both.loss_bn, (alone[0].loss_bn + alone[1].loss_bn) / 2, rtol=1e-4)
    assert not torch.allclose(alone[0].loss_bn, alone[1].loss_bn, rtol=0.1)
    with torch.no_grad():  # step 1 sees the clamped start, the recovered images
        logits = (first(both.images) + second(both.images)) / 2
    assert both.loss_ce[0, 1].item() == pytest.approx(F.cross_entropy(logits, both.labels).item(), rel=1e-4)


def test_recover_records_the_teacher_count(files, tmp_path):
    a, b, _ = files
    result = recover(dataclasses.replace(FROZEN, extra_teachers=(str(b),)), a, tmp_path / "r", device=CPU, seed=0)
    assert load_tensors(result.artifacts["distilled"], "distilled")[1]["teachers"] == 2
    assert load_tensors(recover(FROZEN, a, tmp_path / "p", device=CPU, seed=0).artifacts["distilled"], "distilled")[1]["teachers"] == 1


def test_a_teacher_that_does_not_fit_is_a_one_line_error(files, tmp_path):
    a, _, distilled = files
    three = _teacher(tmp_path / "three.safetensors", 2, _info(3))
    small = _teacher(tmp_path / "small.safetensors", 2, dataclasses.replace(_info(), image_size=8))
    cases = [
        (three, ArtifactError, "the teacher has 3 classes, the images 10"),
        (small, ArtifactError, "the teacher takes 8-px images, these are 16-px"),
        (tmp_path / "missing.safetensors", ConfigError, "no such file"),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=re.escape(f"relabel.extra_teachers {path}: {message}")) as caught:
            relabel(RelabelConfig(epochs=1, extra_teachers=(str(path),)), a, distilled, tmp_path / "l", device=CPU, seed=0)
        assert "\n" not in str(caught.value)
        with pytest.raises(error, match=re.escape(f"recover.extra_teachers {path}: {message}")):
            recover(dataclasses.replace(FROZEN, extra_teachers=(str(path),)), a, tmp_path / "r", device=CPU, seed=0)
    assert not (tmp_path / "l" / "soft_labels.safetensors").exists() and not (tmp_path / "r").exists()
    config = make_run_config({"recover": {"extra_teachers": f"{a},{tmp_path / 'gone.safetensors'}"}})
    assert config.recover.extra_teachers == (str(a), str(tmp_path / "gone.safetensors"))
    with pytest.raises(ConfigError, match="recover.extra_teachers .*gone.safetensors: no such file"):
        check_components(config)
