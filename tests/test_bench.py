"""`scdd bench`: suites as data, checked before work, one shared teacher per pretrainer, JSON/CSV results."""

import csv
import json

import pytest
import torch
from click.testing import CliRunner
from scdd.cli import cli
from scdd.registry import hookimpl

from scdd.bench import get_suite, plan_suite, suite_from_dict
from scdd.data.base import DatasetSplits, ImageTensorDataset
from scdd.data.mnist5k import Mnist5kConfig, load_mnist5k
from scdd.errors import ConfigError

TINY_BUDGET = {
    "squeeze": {"pretrainer_options": {"epochs": 1, "batch_size": 64}},
    "align": {"aligner_options": {"epochs": 5, "optimizer": "adamw", "lr": 0.01, "weight_decay": 0.0}},
    "recover": {"iterations": 30},
    "posttrain": {"epochs": 8},
}
SC_DD = {"method": "distill", "aligner": "linear-probe", "matcher": "imbalanced-bn", "role": "sc-dd"}
TINY_SUITE = {
    "ipc": [1],
    "seeds": [0, 1],
    "overrides": TINY_BUDGET,
    "rows": [
        {"label": "SC-DD (MoCo v3)", "pretrainer": "moco-v3", **SC_DD},
        {"label": "SRe2L (supervised, first BN x1)", "pretrainer": "supervised", **{**SC_DD, "role": "sre2l"},
         "overrides": {"recover": {"matcher_options": {"first_bn_multiplier": 1.0}}}},
        {"label": "random real", "method": "coreset", "selection": "random", "pretrainer": "supervised", "role": "random-real"},
        {"label": "herding real", "method": "coreset", "selection": "herding", "pretrainer": "supervised", "role": "herding-real"},
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


def test_default_suite_is_the_papers_comparison():
    suite = get_suite("default")
    distilled = {row.pretrainer: row for row in suite.rows if row.method == "distill"}
    assert set(distilled) == {"moco-v2", "moco-v3", "swav", "dino", "supervised"}
    assert all(distilled[name].matcher == "imbalanced-bn" and distilled[name].aligner == "linear-probe"
               for name in ("moco-v2", "moco-v3", "swav", "dino"))
    assert distilled["supervised"].matcher == "bn" and distilled["supervised"].role == "sre2l"
    assert {row.selection for row in suite.rows if row.method == "coreset"} == {"random", "herding"}
    assert suite.ipc == (1, 10) and len(suite.seeds) >= 2
    multipliers = [row.overrides["recover"]["matcher_options"]["first_bn_multiplier"] for row in get_suite("first-bn").rows]
    assert multipliers == [1, 5, 10, 15, 20]


def test_first_bn_suite_shares_one_teacher():
    counts = plan_suite(get_suite("first-bn")).counts()
    assert counts["teachers (squeeze + align)"] == 1
    assert counts["recoveries"] == 5 * 2


def test_unregistered_component_fails_before_any_work(tmp_path):
    suite = {**TINY_SUITE, "rows": [*TINY_SUITE["rows"], {"label": "SC-DD (MoCo v9)", "pretrainer": "moco-v9", **SC_DD}]}
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    result = CliRunner().invoke(cli, ["bench", "--suite-file", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code != 0
    assert "row 'SC-DD (MoCo v9)': unknown pretrainer 'moco-v9'. Did you mean 'moco-v3'?" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="has no option 'epochz'"):
        plan_suite(suite_from_dict("x", {**TINY_SUITE, "overrides": {"squeeze": {"pretrainer_options": {"epochz": 1}}}}))


def test_tiny_suite_runs_shares_teachers_and_writes_results(register_plugin, tmp_path):
    register_plugin(MiniDigits(), "mini-digits")
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_SUITE))
    out = tmp_path / "bench"
    args = ["bench", "--suite-file", str(path), "--dataset", "mini-digits", "--preset", "mnist5k",
            "--device", "cpu", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    assert document["complete"] and document["protocol"]["dataset"] == "mini-digits"
    table = document["table"]
    assert [row["label"] for row in table] == [row["label"] for row in TINY_SUITE["rows"]]
    for row in table:
        assert row["seeds"] == 2 and len(row["top1_per_seed"]) == 2 and row["ipc"] == 1
        assert all(0.0 <= value <= 100.0 for value in row["top1_per_seed"])
        assert row["seconds_per_seed"] > 0
    # one squeeze + align per pretrainer, shared by the SRe2L row and the real-image row, and by both seeds
    assert sorted(p.name.split("-")[0] for p in (out / "teachers").iterdir()) == ["moco", "supervised"]
    assert table[1]["setup_seconds"] == table[2]["setup_seconds"] == table[3]["setup_seconds"]
    stages = [cell["students"]["resnet10-slim"]["stage_seconds"][0] for cell in document["cells"]]
    assert set(stages[0]) == {"recover", "relabel", "posttrain", "evaluate"}
    assert set(stages[2]) == set(stages[3]) == {"coreset", "relabel", "posttrain", "evaluate"}
    herded = [cell for cell in (out / "cells").rglob("coreset/distilled.safetensors") if "herding" in str(cell)]
    assert len(herded) == 2  # one herding selection per seed, on the supervised teacher's features
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["top1_mean"]) for r in rows] == [pytest.approx(r["top1_mean"], abs=1e-4) for r in table]
    # the printed table and the reading against SRe2L and random real
    assert "SC-DD (MoCo v3)\t1\tresnet10-slim\t" in result.output
    assert "points vs SRe²L" in result.output and "points vs random real" in result.output
    # every cell was relabelled and post-trained with the same settings
    configs = [cell["config"] for cell in document["protocol"]["cells"]]
    assert all(c["posttrain"] == configs[0]["posttrain"] and c["relabel"] == configs[0]["relabel"] for c in configs)
