"""Crop-level soft labels: determinism, shard layout, encodings (fp32 / fp16 / top-K), the KL target,
online vs stored replay, CutMix replay, and storage size for a 1000-class teacher."""

import math

import pytest
import torch
import torch.nn.functional as F

from scdd.artifacts import load_tensors, save_tensors
from scdd.augment import apply_crops
from scdd.data.base import DatasetInfo
from scdd.labels import (
    LabelEncoding,
    StoredSoftLabels,
    open_soft_labels,
    region_mask,
    render_crops,
    replay_batches,
    soft_label_loss,
)
from scdd.labels.store import read_metadata
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model
from scdd.stages.common import info_dict
from scdd.stages.relabel import RelabelConfig, relabel

CPU = torch.device("cpu")


def _make_set(folder, classes=10, images=20, size=16, seed=0):
    """A random-weight resnet10-slim teacher and a random 'distilled' set, as artifacts."""
    info = DatasetInfo("fake", classes, 1, size, (0.5,), (0.25,), tuple(map(str, range(classes))), hflip=True)
    torch.manual_seed(seed)
    teacher = build_classifier("resnet10-slim", info)
    teacher_path = save_model(folder / "teacher.safetensors", teacher, ModelRecord("classifier", "resnet10-slim", {}, info, {}))
    pixels = torch.rand(images, 1, size, size, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(images) % classes
    distilled_path = save_tensors(
        folder / "distilled.safetensors",
        {"images": pixels, "labels": labels},
        {"kind": "distilled", "dataset": info_dict(info), "ipc": images // classes, "source": "test"},
    )
    return teacher_path, distilled_path


@pytest.fixture(scope="module")
def fake_set(tmp_path_factory):
    return _make_set(tmp_path_factory.mktemp("fake"))


def _relabel(fake_set, folder, seed=0, **options):
    config = RelabelConfig(epochs=options.pop("epochs", 3), crop_min_scale=0.25, **options)
    return relabel(config, *fake_set, folder, device=CPU, seed=seed)


def test_same_seed_gives_identical_crops_and_labels(fake_set, tmp_path):
    first = load_tensors(_relabel(fake_set, tmp_path / "a").artifacts["soft_labels"])[0]
    second = load_tensors(_relabel(fake_set, tmp_path / "b").artifacts["soft_labels"])[0]
    other = load_tensors(_relabel(fake_set, tmp_path / "c", seed=1).artifacts["soft_labels"])[0]
    assert first.keys() == second.keys() == {"boxes", "flips", "logits"}
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not torch.equal(first["boxes"], other["boxes"])


def test_shards_split_epochs_and_read_back_like_one_file(fake_set, tmp_path):
    whole = StoredSoftLabels(_relabel(fake_set, tmp_path / "one", epochs=5).artifacts["soft_labels"])
    result = _relabel(fake_set, tmp_path / "many", epochs=5, epochs_per_shard=2)
    sharded = StoredSoftLabels(result.artifacts["soft_labels"])
    assert result.metrics["shards"] == 3 and len(sharded.files) == 3
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [
        "soft_labels-00001.safetensors",
        "soft_labels-00002.safetensors",
        "soft_labels.safetensors",
    ]
    for epoch in range(5):
        (plan_a, labels_a), (plan_b, labels_b) = whole.epoch(epoch), sharded.epoch(epoch)
        assert torch.equal(plan_a.boxes, plan_b.boxes) and torch.equal(labels_a.logits, labels_b.logits)


def test_failed_relabel_leaves_no_shards(fake_set, tmp_path):
    class Boom:
        def task(self, description, total):
            return self

        def advance(self, steps=1, **metrics):
            raise RuntimeError("stop")

        def close(self):
            pass

    with pytest.raises(RuntimeError):
        relabel(RelabelConfig(epochs=4, epochs_per_shard=1), *fake_set, tmp_path, device=CPU, seed=0, progress=Boom())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.numerics
def test_topk_target_keeps_the_teacher_mass_and_spreads_the_rest():
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(0)) * 3
    encoding = LabelEncoding(topk=3, temperature=4.0)
    targets = encoding.decode(encoding.encode(logits))
    teacher = F.softmax(logits / 4.0, dim=1)
    top = teacher.topk(3, dim=1)
    rest = (1 - top.values.sum(dim=1, keepdim=True)) / 7
    reference = rest.expand(-1, 10).clone().scatter_(1, top.indices, top.values)
    dense = targets.distribution(10, 4.0)
    assert torch.allclose(dense, reference, atol=2e-3)
    assert torch.allclose(dense.sum(dim=1), torch.ones(6))
    # at another post-training temperature the kept classes keep the teacher's ratios at that temperature
    kept = targets.distribution(10, 2.0).gather(1, top.indices)
    expected = F.softmax(logits / 2.0, dim=1).gather(1, top.indices)
    assert torch.allclose(kept / kept.sum(1, keepdim=True), expected / expected.sum(1, keepdim=True), atol=2e-3)


@pytest.mark.numerics
def test_soft_label_loss_matches_reference_kl():
    gen = torch.Generator().manual_seed(0)
    student, teacher, temperature = torch.randn(5, 10, generator=gen), torch.randn(5, 10, generator=gen), 4.0
    p = F.softmax(teacher / temperature, dim=1)
    q = F.softmax(student / temperature, dim=1)
    reference = (p * (p.log() - q.log())).sum(1).mean() * temperature**2
    assert torch.allclose(soft_label_loss(student, teacher, temperature), reference, atol=1e-5)
    full_as_topk = LabelEncoding(topk=10, temperature=temperature)
    loss = soft_label_loss(student, full_as_topk.decode(full_as_topk.encode(teacher)), temperature)
    assert torch.allclose(loss, reference, atol=1e-3)


def test_encodings_store_the_expected_bytes(fake_set, tmp_path):
    sizes = {}
    for name, options in {"fp32": {}, "fp16": {"precision": "fp16"}, "top3": {"label_topk": 3}}.items():
        result = _relabel(fake_set, tmp_path / name, **options)
        sizes[name] = result.metrics["label_bytes_per_image_per_epoch"]
        tensors = load_tensors(result.artifacts["soft_labels"])[0]
        label_bytes = sum(t.numel() * t.element_size() for k, t in tensors.items() if k.startswith(("logits", "topk")))
        assert label_bytes == sizes[name] * 20 * 3
    assert sizes == {"fp32": 40, "fp16": 20, "top3": 9}  # 10 classes; top-3 = 3 x (fp16 + uint8 index)


@pytest.mark.numerics
def test_online_replay_gives_the_stored_crops_and_labels(fake_set, tmp_path):
    stored = open_soft_labels(_relabel(fake_set, tmp_path / "s").artifacts["soft_labels"], device=CPU)
    online_result = _relabel(fake_set, tmp_path / "o", mode="online")
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["soft_labels.safetensors"]
    assert load_tensors(online_result.artifacts["soft_labels"])[0] == {}
    online = open_soft_labels(online_result.artifacts["soft_labels"], device=CPU)
    images = load_tensors(fake_set[1])[0]["images"]
    order = torch.randperm(20, generator=torch.Generator().manual_seed(3))
    for epoch in range(3):
        pairs = zip(
            replay_batches(stored, images, epoch, order, 8, image_size=16, device=CPU),
            replay_batches(online, images, epoch, order, 8, image_size=16, device=CPU),
            strict=False,
        )
        for (index_s, crops_s, targets_s), (index_o, crops_o, targets_o) in pairs:
            assert torch.equal(index_s, index_o) and torch.equal(crops_s, crops_o)
            assert torch.allclose(targets_s.logits, targets_o.logits, atol=1e-4)


def test_online_labels_refuse_a_changed_teacher(tmp_path):
    teacher, distilled = _make_set(tmp_path)
    path = relabel(RelabelConfig(epochs=1, mode="online"), teacher, distilled, tmp_path / "o", device=CPU, seed=0).artifacts["soft_labels"]
    teacher.write_bytes(teacher.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(Exception, match="changed since relabelling"):
        open_soft_labels(path, device=CPU)


def test_online_labels_of_a_moved_run_folder_find_their_teacher(tmp_path):
    """The descriptor names its teacher relative to its own folder: a run folder moved whole keeps working."""
    run = tmp_path / "run"
    teacher, distilled = _make_set(run)
    relabel(RelabelConfig(epochs=1, mode="online"), teacher, distilled, run / "relabel", device=CPU, seed=0)
    assert read_metadata(run / "relabel" / "soft_labels.safetensors")["teacher"]["path"] == "../teacher.safetensors"
    run.rename(tmp_path / "moved")
    labels = open_soft_labels(tmp_path / "moved" / "relabel" / "soft_labels.safetensors", device=CPU)
    assert torch.equal(
        labels.teacher.state_dict()["head.weight"], load_tensors(tmp_path / "moved" / "teacher.safetensors")[0]["head.weight"]
    )


def test_cutmix_crops_replay_with_partner_region(fake_set, tmp_path):
    labels = StoredSoftLabels(_relabel(fake_set, tmp_path, mix="cutmix", epochs=1).artifacts["soft_labels"])
    plan, _ = labels.epoch(0)
    assert plan.partners is not None and sorted(plan.partners.tolist()) == list(range(20))
    images = load_tensors(fake_set[1])[0]["images"]
    index = torch.arange(20)
    mixed = render_crops(images, plan, index, 16, CPU)

    own = apply_crops(images, plan.boxes, plan.flips, 16)
    partner = apply_crops(images[plan.partners], plan.boxes[plan.partners], plan.flips[plan.partners], 16)
    mask = region_mask(plan.regions, 16)
    assert torch.equal(mixed, torch.where(mask, partner, own))
    area = (plan.regions[:, 2] - plan.regions[:, 0]) * (plan.regions[:, 3] - plan.regions[:, 1])
    assert torch.allclose(mask.float().mean(dim=(1, 2, 3)), area, atol=0.15)


def test_thousand_class_top10_is_at_least_50x_smaller_on_disk(tmp_path):
    teacher, distilled = _make_set(tmp_path, classes=1000, images=200, size=8)
    sizes = {}
    for name, topk in (("fp32", 0), ("top10", 10)):
        result = relabel(RelabelConfig(epochs=2, label_topk=topk), teacher, distilled, tmp_path / name, device=CPU, seed=0)
        sizes[name] = result.artifacts["soft_labels"].stat().st_size
        assert math.isclose(result.metrics["stored_bytes_per_image_per_epoch"], sizes[name] / 400)
    assert sizes["fp32"] / sizes["top10"] >= 50
