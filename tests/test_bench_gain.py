"""The paired gain over random real images with identical labels, and the identical-labels rule."""

import dataclasses
from pathlib import Path

import pytest
import torch

from scdd.bench import LabelMismatchError, Measured, gain_over_random_real, get_suite, paired_gain, plan_suite, suite_from_dict
from scdd.bench.comparisons import add_gains
from scdd.bench.suites import Suite, SuiteRow
from scdd.config import make_run_config
from scdd.distilled import load_distilled
from scdd.errors import ConfigError
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model
from scdd.stages.coreset import coreset


def test_paired_gain_matches_hand_computed_differences():
    row = Measured({0: 81.0, 1: 84.5, 2: 79.0}, labels="L")
    baseline = Measured({0: 78.0, 1: 85.0, 2: 76.5, 3: 90.0}, labels="L")  # seed 3 has no partner: left out
    gain = paired_gain(row, baseline)
    # differences 3.0, -0.5, 2.5: mean 5/3, sample variance ((4/3)² + (13/6)² + (5/6)²) / 2 = (258/36) / 2 = 43/12
    assert gain.seeds == (0, 1, 2)
    assert dict(gain.per_seed) == pytest.approx({0: 3.0, 1: -0.5, 2: 2.5})
    assert gain.mean == pytest.approx(5 / 3)
    assert gain.std == pytest.approx((43 / 12) ** 0.5)
    assert str(gain) == "+1.7 ± 1.9"
    assert paired_gain(Measured({4: 50.0}, "L"), Measured({4: 52.5}, "L")).std == 0.0


def test_paired_gain_refuses_other_labels_and_unpaired_seeds():
    with pytest.raises(LabelMismatchError, match="relabelled by moco-v3, the baseline by supervised"):
        paired_gain(Measured({0: 80.0}, "A", "moco-v3"), Measured({0: 70.0}, "B", "supervised"))
    with pytest.raises(ConfigError, match="no seed was measured for both"):
        paired_gain(Measured({0: 80.0}, "A"), Measured({1: 70.0}, "A"))


def _row(label, role, identity, labels, top1, seeds=(0, 1, 2), ipc=10):
    return {
        "label": label,
        "role": role,
        "ipc": ipc,
        "student": "convnet",
        "label_identity": identity,
        "labels": labels,
        "seed_list": list(seeds),
        "top1_per_seed": list(top1),
    }


def test_rows_get_the_gain_over_random_real_with_their_own_labels_only():
    rows = [
        _row("random real", "random-real", "sup", "supervised", [90.0, 91.0, 92.0]),
        _row("random real", "random-real", "ssl", "moco-v3", [70.0, 72.0, 71.0]),
        _row("SC-DD", "sc-dd", "sup", "supervised", [88.0, 93.0, 89.0]),
        _row("SC-DD", "sc-dd", "ssl", "moco-v3", [75.0, 71.0, 74.0]),
        _row("SRe2L (own labels)", "sre2l", "other", "own (supervised)", [95.0, 95.0, 95.0]),
        _row("SC-DD", "sc-dd", "sup", "supervised", [60.0], seeds=(0,), ipc=1),
    ]
    add_gains(rows)
    assert rows[0]["gain_note"] == "baseline" and rows[0]["gain_mean"] is None
    assert rows[2]["gain_per_seed"] == pytest.approx([-2.0, 2.0, -3.0])
    assert rows[3]["gain_per_seed"] == pytest.approx([5.0, -1.0, 3.0])  # against the moco-v3-labelled baseline
    assert rows[4]["gain_mean"] is None and "not comparable" in rows[4]["gain_note"]
    assert rows[5]["gain_mean"] is None and rows[5]["gain_note"] == "no random-real row"  # no IPC 1 baseline


def test_a_row_relabelled_by_another_teacher_than_its_comparison_is_flagged():
    suite = suite_from_dict(
        "flag",
        {
            "ipc": [1],
            "teachers": {"supervised": {"pretrainer": "supervised", "aligner": "pretrained-head"}, "moco-v3": {"pretrainer": "moco-v3"}},
            "labels": "supervised",
            "rows": [
                {"label": "SC-DD", "pretrainer": "moco-v3", "role": "sc-dd"},
                {"label": "SC-DD, own labels", "pretrainer": "moco-v3", "role": "sc-dd", "labels": "moco-v3"},
                {"label": "random real", "method": "coreset", "selection": "random", "role": "random-real"},
            ],
        },
    )
    cells = {cell.row.label: cell for cell in plan_suite(suite).cells}
    assert cells["SC-DD"].label_identity == cells["random real"].label_identity
    assert cells["SC-DD, own labels"].label_identity != cells["random real"].label_identity
    assert cells["SC-DD, own labels"].label_key == cells["SC-DD"].teacher_key  # its own squeeze labels it
    rows = [_row(label, cell.row.role, cell.label_identity, cell.labels_name, [80.0, 81.0, 82.0]) for label, cell in cells.items()]
    add_gains(rows)
    assert rows[0]["gain_mean"] == 0.0
    assert rows[1]["gain_mean"] is None and rows[1]["gain_note"] == "labels by moco-v3, random real's by supervised: not comparable"
    # a suite naming a teacher it does not define fails before any work
    with pytest.raises(ConfigError, match="labels names teacher 'dino'"):
        suite_from_dict("bad", {"labels": "dino", "rows": [{"label": "r", "pretrainer": "moco-v3"}]})


def test_fair_suite_relabels_every_row_with_one_teacher():
    plan = plan_suite(get_suite("fair"))
    main = [cell for cell in plan.cells if cell.table == "main"]
    assert plan.suite.ipc == (1, 10, 50) and len(plan.suite.seeds) >= 3
    for ipc in plan.suite.ipc:
        identities = {cell.label_identity for cell in main if cell.ipc == ipc}
        assert len(identities) == 1
    roles = {cell.row.role for cell in main}
    assert {"sc-dd", "sre2l", "random-real"} <= roles
    sre2l = next(cell for cell in main if cell.row.role == "sre2l")
    assert sre2l.config.align.aligner == "pretrained-head" and sre2l.config.recover.matcher_options["first_bn_multiplier"] == 10
    cross = {(cell.row.label, cell.labels) for cell in plan.cells if cell.table == "cross"}
    assert {labels for _, labels in cross} and all(label in plan.suite.cross_rows for label, _ in cross)


def test_gain_over_random_real_pairs_each_seed_with_its_random_subset(mnist_subset, tmp_path):
    """The library call a plugin makes for its own images: both sets relabelled by one teacher, post-trained alike."""
    data = mnist_subset(200, 50, seed=3)
    torch.manual_seed(0)
    teacher = build_classifier("convnet", data.info, {"width": 8})
    with torch.no_grad():
        teacher.train()(data.train.batch(torch.arange(200))[0])
    path = save_model(tmp_path / "teacher.safetensors", teacher.eval(), ModelRecord("classifier", "convnet", {"width": 8}, data.info, {}))
    # the "method": a random subset drawn with other seeds than the baseline's
    images = {seed: coreset("random", data, 1, tmp_path / f"method{seed}", seed=seed + 100).artifacts["distilled"] for seed in (0, 1)}
    config = make_run_config({"posttrain": {"students": ["convnet"], "student_options": {"convnet": {"width": 8}}, "epochs": 2}})
    ((name, result),) = gain_over_random_real(images, path, config, tmp_path / "gain", device=torch.device("cpu"), data=data).items()
    assert name == "convnet" and set(result.method.top1) == set(result.random_real.top1) == {0, 1}
    assert result.method.labels == result.random_real.labels
    assert dict(result.gain.per_seed) == pytest.approx({s: result.method.top1[s] - result.random_real.top1[s] for s in (0, 1)})
    expected = load_distilled(coreset("random", data, 1, tmp_path / "check", seed=1).artifacts["distilled"]).images
    used = load_distilled(tmp_path / "gain" / "seed1" / "random-real" / "coreset" / "distilled.safetensors").images
    assert torch.equal(used, expected)


def test_docs_describe_every_suite_and_row_setting():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "bench.md").read_text()
    for cls, skip in ((Suite, {"name", "description"}), (SuiteRow, set())):
        for name in {f.name for f in dataclasses.fields(cls)} - skip:
            assert f"`{name}`" in doc, f"docs/bench.md does not describe {cls.__name__}.{name}"
