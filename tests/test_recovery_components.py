"""Recovery's registered components in the engine: initializer, crop schedule, regularizer, class-aware
matcher; the paper's defaults, what reads training data, and docs/plugins.md's third-party initializer."""

from __future__ import annotations

import dataclasses
import re
import sys
import types
from pathlib import Path

import pytest
import torch

import scdd.augment.recovery
from scdd.artifacts import load_tensors
from scdd.data.base import class_members, to_float_pixels
from scdd.errors import ConfigError
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model
from scdd.recovery.config import RecoverConfig
from scdd.recovery.engine import synthesize
from scdd.registry import get_registry, hookimpl
from scdd.stages.coreset import random_real
from scdd.stages.recover import recover

CPU = torch.device("cpu")
FROZEN = RecoverConfig(ipc=2, iterations=2, batch_size=10, lr=0.0, alpha_bn=0.3)  # lr 0: the images stay at their start
DOC = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()


@pytest.fixture(scope="module")
def setup(mnist_subset):
    torch.manual_seed(0)
    data = mnist_subset(120, 20, seed=5)
    return build_classifier("resnet10-slim", data.info).eval(), data


def test_paper_defaults_keep_every_new_component_off():
    config = RecoverConfig()
    assert (config.initializer, config.crop_schedule, config.regularizer) == ("noise", "constant", "")
    assert {"noise", "real", "patches"} <= set(get_registry().names("initializer"))
    assert {"constant", "curriculum"} <= set(get_registry().names("crop_schedule"))
    assert {"flatness"} <= set(get_registry().names("regularizer"))
    assert "class-aware-bn" in get_registry().names("matcher")


def test_real_start_is_the_random_coreset_and_is_recorded_as_reading_data(setup):
    classifier, data = setup
    config = dataclasses.replace(FROZEN, ipc=1, initializer="real")
    result = synthesize(classifier, data.info, config, device=CPU, seed=4, data=data)
    images, labels = random_real(data, 1, 4)
    order = sorted(range(len(labels)), key=lambda row: (int(labels[row]), row))
    got = sorted(range(len(result.labels)), key=lambda row: (int(result.labels[row]), int(result.ipc_index[row])))
    assert torch.allclose(result.images[got], images[order], atol=1e-5)
    assert result.reads_training_data
    assert not synthesize(classifier, data.info, dataclasses.replace(FROZEN, ipc=1, iterations=1), device=CPU, seed=4).reads_training_data
    with pytest.raises(ConfigError, match="reads the training images"):
        synthesize(classifier, data.info, config, device=CPU, seed=4)


def test_class_aware_matcher_reads_data_and_gets_each_batchs_classes(setup):
    classifier, data = setup
    config = dataclasses.replace(FROZEN, ipc=1, lr=0.1, matcher="class-aware-bn", matcher_options={"class_weight": 1.0})
    result = synthesize(classifier, data.info, config, device=CPU, seed=0, data=data)
    assert result.reads_training_data and torch.isfinite(result.loss_bn).all() and (result.loss_bn > 0).all()
    with pytest.raises(ConfigError, match="reads the training images"):
        synthesize(classifier, data.info, config, device=CPU, seed=0)


class Recorder:
    """A crop schedule and a regularizer that record how the engine calls them."""

    def __init__(self, config=None):
        self.scales, self.steps, self.begun, self.after = [], [], 0, 0

    def scale(self, step, total, base):
        self.scales.append((step, total, base))
        return (0.3 + 0.1 * step, 0.9)

    def begin(self, latent):
        self.begun += 1

    def loss(self, step):
        self.steps.append((step, step.latent.detach().clone()))
        assert torch.allclose(step.same_view(step.latent.detach()), step.view.detach(), atol=1e-5)
        return 0.5 * step.latent.square().mean()

    def after_step(self, latent):
        self.after += 1


def test_engine_asks_the_schedule_every_step_and_runs_the_regularizer(setup, register_plugin, monkeypatch):
    classifier, data = setup
    recorder, drawn = Recorder(), []
    sample_boxes = scdd.augment.recovery.sample_boxes

    def spy(n, spec, **kwargs):
        drawn.append(spec.scale)
        return sample_boxes(n, spec, **kwargs)

    monkeypatch.setattr(scdd.augment.recovery, "sample_boxes", spy)

    class Plugin:
        @hookimpl
        def register_crop_schedules(self, register):
            register("recorded", lambda config: recorder)

        @hookimpl
        def register_regularizers(self, register):
            register("recorded", lambda config: recorder)

    register_plugin(Plugin(), "recorder")
    config = dataclasses.replace(FROZEN, ipc=1, iterations=3, lr=0.1, jitter=0.0, crop_schedule="recorded", regularizer="recorded")
    synthesize(classifier, data.info, config, device=CPU, seed=0)
    assert [step for step, _, _ in recorder.scales] == [0, 1, 2]
    assert {(total, base) for _, total, base in recorder.scales} == {(3, (config.crop_min_scale, 1.0))}
    assert [step.step for step, _ in recorder.steps] == [0, 1, 2] and recorder.begun == 1 and recorder.after == 3
    assert drawn == [pytest.approx((0.3, 0.9)), pytest.approx((0.4, 0.9)), pytest.approx((0.5, 0.9))]  # each step's crops


def test_recover_stage_records_components_and_data_use(setup, tmp_path):
    classifier, data = setup
    record = ModelRecord(kind="classifier", architecture="resnet10-slim", architecture_options={}, dataset=data.info, extra={})
    path = save_model(tmp_path / "classifier.safetensors", classifier, record)
    config = dataclasses.replace(FROZEN, ipc=1, initializer="real", crop_schedule="curriculum")
    result = recover(config, path, tmp_path / "r", device=CPU, seed=0, data=data)
    _, metadata = load_tensors(result.artifacts["distilled"], "distilled")
    assert metadata["reads_training_data"] and not result.metrics["data_free"]
    assert (metadata["initializer"], metadata["crop_schedule"], metadata["regularizer"]) == ("real", "curriculum", "")
    assert metadata["initializer_options"] == {"selection": "random"}
    paper = recover(dataclasses.replace(config, initializer="noise"), path, tmp_path / "p", device=CPU, seed=0)
    assert paper.metrics["data_free"]


def test_docs_third_party_initializer_registers_and_starts_recovery(setup, register_plugin, monkeypatch):
    section = DOC.split("### `register_initializers(register)`", 1)[1].split("\n### ", 1)[0]
    code = re.search(r"```python\n(# scdd_classmean.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 40
    plugin = types.ModuleType("scdd_classmean_plugin")
    monkeypatch.setitem(sys.modules, plugin.__name__, plugin)  # as an installed package's module would be
    exec(compile(code, "docs/plugins.md", "exec"), plugin.__dict__)
    register_plugin(plugin, "classmean")
    classifier, data = setup
    config = dataclasses.replace(FROZEN, ipc=1, initializer="class-mean")
    result = synthesize(classifier, data.info, config, device=CPU, seed=0, data=data)
    for image, label in zip(result.images, result.labels, strict=False):
        members = class_members(data, 1)[int(label)]
        mean = torch.stack([to_float_pixels(data.train[int(i)][0]) for i in members]).mean(0)
        assert torch.allclose(image, mean, atol=1e-5)
    assert result.reads_training_data
