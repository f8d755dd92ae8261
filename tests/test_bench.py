"""`scdd bench`: suites as data, checked before work, one shared teacher per pretrainer, JSON/CSV results."""

import csv
import json

import pytest
import torch
from click.testing import CliRunner

from scdd.bench import get_suite, plan_suite, suite_from_dict
from scdd.cli import cli
from scdd.data.base import DatasetSplits, ImageTensorDataset
from scdd.data.mnist5k import Mnist5kConfig, load_mnist5k
from scdd.errors import ConfigError
from scdd.registry import hookimpl

TINY_BUDGET = {
    "squeeze": {"pretrainer_options": {"epochs": 1, "batch_size": 64}},
    "align": {"aligner_options": {"epochs": 5, "optimizer": "adamw", "lr": 0.01, "weight_decay": 0.0}},
    "recover": {"iterations": 30},
    "posttrain": {"epochs": 8},
}
SC_DD = {"method": "distill", "aligner": "linear-probe", "matcher": "imbalanced-bn", "role": "sc-dd"}
SRE2L = {
    "method": "distill",
    "pretrainer": "supervised",
    "aligner": "pretrained-head",
    "matcher": "bn",
    "role": "sre2l",
    "overrides": {"recover": {"matcher_options": {"first_bn_multiplier": 10.0}}},
}
TINY_SUITE = {
    "ipc": [1],
    "seeds": [0, 1],
    "overrides": TINY_BUDGET,
    "teachers": {
        "supervised": {"pretrainer": "supervised", "aligner": "pretrained-head"},
        "moco-v3": {"pretrainer": "moco-v3", "aligner": "linear-probe"},
    },
    "labels": "supervised",
    "cross_teachers": ["supervised", "moco-v3"],
    "cross_rows": ["SC-DD (MoCo v3)", "random real"],
    "rows": [
        {"label": "SC-DD (MoCo v3)", "pretrainer": "moco-v3", **SC_DD},
        {"label": "SRe2L", **SRE2L},
        {"label": "random real", "method": "coreset", "selection": "random", "role": "random-real"},
        {
            "label": "herding real",
            "method": "coreset",
            "selection": "herding",
            "pretrainer": "supervised",
            "aligner": "pretrained-head",
            "role": "herding-real",
        },
    ],
}


class MiniDigits:
    """A 400-image slice of the embedded digits, registered as a dataset plugin (tests --dataset)."""

    @hookimpl
    def register_datasets(self, register):
        register("mini-digits", mini_digits, description="400 training digits for tests")


def mini_digits(config, *, data_root=None):
    """40 training and 20 held-out images per class of the embedded digits."""
    full = load_mnist5k(Mnist5kConfig())

    def per_class(split, count):
        index = torch.cat([torch.nonzero(split.labels == label).flatten()[:count] for label in range(10)])
        return ImageTensorDataset(split.images[index], split.labels[index])

    return DatasetSplits(full.info, per_class(full.train, 40), per_class(full.val, 20))


def test_claim_suites_compare_with_identical_labels():
    table1 = get_suite("table1")
    distilled = {row.pretrainer: row for row in table1.rows if row.method == "distill" and row.role == "sc-dd"}
    assert set(distilled) == {"moco-v2", "moco-v3", "swav", "dino"}
    assert all(row.matcher == "imbalanced-bn" and row.aligner == "linear-probe" for row in distilled.values())
    recipe, ablation = (row for row in table1.rows if row.role == "sre2l")
    assert (recipe.aligner, recipe.matcher, recipe.overrides["recover"]["matcher_options"]["first_bn_multiplier"]) == (
        "pretrained-head",
        "bn",
        10.0,
    )
    assert (ablation.aligner, ablation.matcher, ablation.overrides) == ("linear-probe", "bn", {})
    multipliers = [
        row.overrides["recover"]["matcher_options"]["first_bn_multiplier"] for row in get_suite("first-bn").rows if row.method == "distill"
    ]
    assert multipliers == [1, 5, 10, 15, 20]
    for name in ("fair", "table1", "scaling", "first-bn", "alignment", "bn-spread"):
        suite = get_suite(name)
        assert suite.labels == "supervised" and len(suite.seeds) >= 3 and suite.preset == "small"
        assert any(row.role == "random-real" for row in suite.rows)


def test_first_bn_suite_shares_one_teacher():
    counts = plan_suite(get_suite("first-bn")).counts()
    assert counts["teachers (squeeze + align)"] == 2  # the MoCo v3 recovery teacher and the supervised labelling one
    assert counts["recoveries"] == 5 * 2 * 3  # multipliers × IPC 1 and 10 × seeds


def test_unregistered_component_fails_before_any_work(tmp_path):
    suite = {**TINY_SUITE, "rows": [*TINY_SUITE["rows"], {"label": "SC-DD (MoCo v9)", "pretrainer": "moco-v9", **SC_DD}]}
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    result = CliRunner().invoke(cli, ["bench", "--suite-file", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code != 0
    assert "row 'SC-DD (MoCo v9)': unknown pretrainer 'moco-v9'. Did you mean 'moco-v3'?" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="pretrainer_options has no option 'epochz' for any registered pretrainer"):
        plan_suite(suite_from_dict("x", {**TINY_SUITE, "overrides": {"squeeze": {"pretrainer_options": {"epochz": 1}}}}))


def test_tiny_suite_runs_shares_teachers_and_writes_results(register_plugin, tmp_path):
    register_plugin(MiniDigits(), "mini-digits")
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_SUITE))
    out = tmp_path / "bench"
    args = [
        "bench",
        "--suite-file",
        str(path),
        "--dataset",
        "mini-digits",
        "--preset",
        "mnist5k",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    assert document["complete"] and document["protocol"]["dataset"] == "mini-digits"
    table = document["table"]
    main = {row["label"]: row for row in table if row["table"] == "main"}
    assert list(main) == [row["label"] for row in TINY_SUITE["rows"]]
    for row in table:
        assert row["seeds"] == 2 and len(row["top1_per_seed"]) == 2 and row["ipc"] == 1
        assert all(0.0 <= value <= 100.0 for value in row["top1_per_seed"])
        assert row["seconds_per_seed"] > 0
    # one squeeze + align per teacher: the supervised one makes the SRe2L images, herds, and labels every main row
    assert sorted(p.name.split("-")[0] for p in (out / "teachers").iterdir()) == ["moco", "supervised"]
    assert {row["labels"] for row in main.values()} == {"supervised"}
    assert len({row["label_identity"] for row in main.values()}) == 1
    assert main["SRe2L"]["teacher_top1"] == main["herding real"]["teacher_top1"] == main["random real"]["label_teacher_top1"]
    # the paired gain: per seed, the row's top-1 minus random real's with the same seed and labels
    for label in ("SC-DD (MoCo v3)", "SRe2L", "herding real"):
        expected = [a - b for a, b in zip(main[label]["top1_per_seed"], main["random real"]["top1_per_seed"], strict=False)]
        assert main[label]["gain_per_seed"] == pytest.approx(expected)
        assert main[label]["gain_mean"] == pytest.approx(sum(expected) / 2)
    # the cross-teacher table: SC-DD and random real images, each relabelled by both teachers
    cross = {(row["label"], row["labels"]): row for row in document["cross_table"]}
    assert set(cross) == {(label, teacher) for label in TINY_SUITE["cross_rows"] for teacher in ("supervised", "moco-v3")}
    ssl = [cross["SC-DD (MoCo v3)", "moco-v3"], cross["random real", "moco-v3"]]
    assert ssl[0]["gain_mean"] == pytest.approx(ssl[0]["top1_mean"] - ssl[1]["top1_mean"])
    assert ssl[0]["label_teacher_top1"] == main["SC-DD (MoCo v3)"]["teacher_top1"]
    stages = [cell["students"]["resnet10-slim"]["stage_seconds"][0] for cell in document["cells"]]
    assert set(stages[0]) == {"recover", "relabel", "posttrain", "evaluate"}
    assert set(stages[2]) == set(stages[3]) == {"coreset", "relabel", "posttrain", "evaluate"}
    herded = [cell for cell in (out / "cells").rglob("coreset/distilled.safetensors") if "herding" in str(cell)]
    assert len(herded) == 2  # one herding selection per seed, on the supervised teacher's features
    recovered = list((out / "cells").rglob("recover/distilled.safetensors"))
    assert len(recovered) == 4  # SC-DD and SRe2L, two seeds each: the cross cells reuse the images
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["top1_mean"]) for r in rows] == [pytest.approx(r["top1_mean"], abs=1e-4) for r in table]
    # the printed tables and the reading, against random real and SRe2L with identical labels
    assert "SC-DD (MoCo v3)\t1\tresnet10-slim\tsupervised\t" in result.output
    assert "cross-teacher table" in result.output
    assert "points over random real" in result.output and " vs SRe2L (" in result.output
    # every cell was relabelled and post-trained with the same settings
    configs = [cell["config"] for cell in document["protocol"]["cells"]]
    assert all(c["posttrain"] == configs[0]["posttrain"] and c["relabel"] == configs[0]["relabel"] for c in configs)
    # every cell and seed has a run folder whose manifest runs it again, to the same top-1
    manifests = sorted((out / "cells").rglob("manifest.json"))
    assert len(manifests) == (4 + 2) * 2
    folder = out / "cells" / "random-real" / "moco-v3" / "ipc1" / "seed1"
    recorded = json.loads((folder / "manifest.json").read_text())
    assert recorded["label_config"]["squeeze"]["pretrainer"] == "moco-v3" and recorded["seed"] == 1
    again = CliRunner().invoke(cli, ["bench", "--rerun-cell", str(folder), "--out", str(tmp_path / "again"), "--device", "cpu"])
    assert again.exit_code == 0, again.output
    rerun = json.loads((tmp_path / "again" / "results.json").read_text())["table"][0]
    assert rerun["top1_per_seed"] == [recorded["metrics"]["resnet10-slim"]["top1"]]
