"""Several teachers in a bench: a row's ``extra_teachers`` recover beside its own (G-VBSM's statistics of
several backbones) and a suite's ``label_ensemble`` joins its labelling teacher for every main row (ensemble
labels), both part of what a cell is, so reuse and --rerun-cell keep them."""

import json
import re

import pytest
from click.testing import CliRunner

import scdd.bench.runner as runner
from scdd.artifacts import file_sha256
from scdd.artifacts import read_metadata as read_artifact_metadata
from scdd.bench import plan_suite, run_suite, suite_from_dict
from scdd.bench.plan import image_key
from scdd.cli import cli
from scdd.errors import ConfigError
from scdd.labels.store import read_metadata
from tests.test_bench import SC_DD, TINY_BUDGET, MiniDigits

TEACHERS = {
    "supervised": {"pretrainer": "supervised", "aligner": "pretrained-head"},
    "moco-v3": {"pretrainer": "moco-v3", "aligner": "linear-probe"},
}
SUITE = {
    "ipc": [1],
    "seeds": [0],
    "overrides": TINY_BUDGET,
    "teachers": TEACHERS,
    "labels": "supervised",
    "label_ensemble": ["moco-v3"],
    "cross_teachers": ["supervised"],
    "cross_rows": ["SC-DD + supervised statistics"],
    "rows": [
        {"label": "SC-DD", "pretrainer": "moco-v3", **SC_DD},
        {"label": "SC-DD + supervised statistics", "pretrainer": "moco-v3", **SC_DD, "extra_teachers": ["supervised"]},
        {"label": "random real", "method": "coreset", "selection": "random", "role": "random-real"},
    ],
}


def _suite(**changes):
    return suite_from_dict("ensembles", {**SUITE, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label_ensemble": ["dino"]}, "label_ensemble names teacher 'dino'; the suite's teachers: supervised, moco-v3"),
        ({"label_ensemble": "moco-v3"}, "label_ensemble must be a list, got 'moco-v3'"),
        ({"ipc": None}, "ipc must be a list, got None"),
        ({"labels": "", "cross_teachers": [], "cross_rows": []}, "label_ensemble joins the suite's labels teacher, so it needs labels"),
        (
            {"rows": [{**SUITE["rows"][2], "extra_teachers": ["supervised"]}]},
            "row 'random real': extra_teachers recover images, so they apply to distill rows only",
        ),
        (
            {"rows": [{**SUITE["rows"][1], "extra_teachers": ["swav"]}]},
            "row 'SC-DD + supervised statistics' extra_teachers names teacher 'swav'",
        ),
    ],
)
def test_a_suite_naming_teachers_it_does_not_have_is_refused(changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _suite(**changes)


def test_files_in_extra_teachers_have_no_place_in_a_bench():
    for stage in ("recover", "relabel"):
        with pytest.raises(ConfigError, match="name suite teachers in a row's extra_teachers or the suite's label_ensemble"):
            plan_suite(_suite(), overrides={stage: {"extra_teachers": ["teacher.safetensors"]}})


def test_the_plan_labels_every_main_row_with_the_ensemble_and_keeps_extra_teachers_in_the_images():
    plan = plan_suite(_suite())
    main = {cell.row.label: cell for cell in plan.cells if cell.table == "main"}
    (cross,) = (cell for cell in plan.cells if cell.table == "cross")
    assert {cell.labels for cell in main.values()} == {"supervised+moco-v3"}
    assert len({cell.label_identity for cell in main.values()}) == 1  # identical labels: the gain is measured
    assert all(len(cell.label_extras) == 1 and cell.label_extras[0].squeeze.pretrainer == "moco-v3" for cell in main.values())
    # the ensemble's labels are not the supervised teacher's alone: the cross cell relabels with it only
    assert (cross.labels, cross.label_extras) == ("supervised", ())
    assert cross.label_key != main["SC-DD + supervised statistics"].label_key
    # a recovery with the supervised teacher's statistics makes other images than the plain one, the cross cell the same
    with_extra = main["SC-DD + supervised statistics"]
    assert [config.squeeze.pretrainer for config in with_extra.extra_teachers] == ["supervised"]
    assert image_key(with_extra) != image_key(main["SC-DD"])
    assert image_key(cross) == image_key(with_extra)
    assert plan.counts()["teachers (squeeze + align)"] == 2
    assert plan.counts()["recoveries"] == 2


@pytest.mark.slow
def test_a_bench_recovers_from_two_teachers_labels_with_two_and_reuses_and_reruns_those_cells(register_plugin, tmp_path, monkeypatch):
    register_plugin(MiniDigits(), "mini-digits")
    out = tmp_path / "bench"
    settings = {"dataset": "mini-digits", "device": "cpu"}
    document = run_suite(_suite(), out, overrides=settings, preset="mnist5k")
    assert document["complete"]
    main = {row["label"]: row for row in document["table"] if row["table"] == "main"}
    assert {row["labels"] for row in main.values()} == {"supervised+moco-v3"}
    assert main["SC-DD + supervised statistics"]["gain_per_seed"] is not None  # same labels as random real
    folder = out / "cells" / "sc-dd-supervised-statistics" / "supervised-moco-v3" / "ipc1" / "seed0"
    manifest = json.loads((folder / "manifest.json").read_text())
    (extra_images,), (extra_labels,) = manifest["teachers"]["extra_images"], manifest["teachers"]["extra_labels"]
    assert "/teachers/supervised-" in extra_images and "/teachers/moco-v3-" in extra_labels
    assert read_artifact_metadata(out / manifest["artifacts"]["distilled"], "distilled")["teachers"] == 2
    (entry,) = read_metadata(out / manifest["artifacts"]["soft_labels"])["extra_teachers"]
    assert entry["sha256"] == file_sha256(extra_labels)

    # the cell's manifest runs it again, with both teachers, to the same top-1
    again = CliRunner().invoke(cli, ["bench", "--rerun-cell", str(folder), "--out", str(tmp_path / "again"), "--device", "cpu"])
    assert again.exit_code == 0, again.output
    rerun = json.loads((tmp_path / "again" / "results.json").read_text())["table"][0]
    assert rerun["top1_per_seed"] == [manifest["metrics"]["resnet10-slim"]["top1"]]

    # run again into the folder: every cell is reused; without the extra teacher the row's cells run again
    calls = {"recover": 0, "posttrain": 0}
    for name in calls:
        original = getattr(runner, name)
        monkeypatch.setattr(runner, name, lambda *a, _n=name, _o=original, **k: calls.__setitem__(_n, calls[_n] + 1) or _o(*a, **k))
    run_suite(_suite(), out, overrides=settings, preset="mnist5k")
    assert calls == {"recover": 0, "posttrain": 0}
    rows = [{**row, "extra_teachers": []} for row in SUITE["rows"]]
    run_suite(_suite(rows=rows), out, overrides=settings, preset="mnist5k")
    # the row's main and cross cells post-train again, on the plain SC-DD row's images and labels (the same now)
    assert calls == {"recover": 0, "posttrain": 2}
