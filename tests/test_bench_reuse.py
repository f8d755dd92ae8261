"""A bench run again into its own folder reuses the teachers and cells that finished there with the
same settings, and runs only what changed or is missing (scdd.bench.reuse)."""

import copy
import json

import pytest

import scdd.bench.runner as runner
import scdd.bench.teachers as teachers
from scdd.bench import run_suite, suite_from_dict
from scdd.bench.reuse import same_config
from scdd.config import RunConfig, to_dict
from scdd.run_folder import normalized
from tests.test_bench import SRE2L, TINY_BUDGET, MiniDigits

SUITE = {
    "ipc": [1],
    "seeds": [0],
    "overrides": TINY_BUDGET,
    "teachers": {"supervised": {"pretrainer": "supervised", "aligner": "pretrained-head"}},
    "labels": "supervised",
    "rows": [
        {"label": "SRe2L", **SRE2L},
        {"label": "random real", "method": "coreset", "selection": "random", "role": "random-real"},
    ],
}
SETTINGS = {"dataset": "mini-digits", "device": "cpu"}


def _bench(out, *, overwrite=False, **settings):
    suite = suite_from_dict("reuse", SUITE)
    return run_suite(suite, out, overrides={**SETTINGS, **settings}, preset="mnist5k", overwrite=overwrite)


def _count_calls(monkeypatch):
    calls = {"train_teacher": 0, "recover": 0, "coreset": 0, "posttrain": 0}
    for name in calls:
        module = teachers if name == "train_teacher" else runner
        original = getattr(module, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


def _top1(document):
    return {row["label"]: row["top1_per_seed"] for row in document["table"]}


def test_a_bench_run_again_reuses_what_finished_and_reruns_what_changed(register_plugin, tmp_path, monkeypatch):
    register_plugin(MiniDigits(), "mini-digits")
    out = tmp_path / "bench"
    first = _bench(out)
    calls = _count_calls(monkeypatch)

    again = _bench(out)  # the same folder, no --overwrite: continued, nothing runs again
    assert calls == {"train_teacher": 0, "recover": 0, "coreset": 0, "posttrain": 0}
    assert _top1(again) == _top1(first)
    assert again["teachers"] == first["teachers"]
    stages = [cell["students"]["resnet10-slim"]["stage_seconds"] for cell in again["cells"]]
    assert stages == [cell["students"]["resnet10-slim"]["stage_seconds"] for cell in first["cells"]]

    # a missing student file: only that cell runs again
    (student,) = (out / "cells" / "random-real").rglob("student-*.safetensors")
    student.unlink()
    _bench(out)
    assert calls == {"train_teacher": 0, "recover": 0, "coreset": 1, "posttrain": 1}

    # another post-training budget: the teacher is reused, every cell runs again
    _bench(out, posttrain={"epochs": 4})
    assert calls == {"train_teacher": 0, "recover": 1, "coreset": 2, "posttrain": 3}

    # --overwrite reuses nothing
    _bench(out, overwrite=True)
    assert calls == {"train_teacher": 1, "recover": 2, "coreset": 3, "posttrain": 5}


def test_a_folder_that_is_not_a_bench_is_still_refused(register_plugin, tmp_path):
    register_plugin(MiniDigits(), "mini-digits")
    out = tmp_path / "other"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="already holds other files"):
        _bench(out)
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt"]


def test_a_record_matches_only_the_same_settings_or_a_missing_one_at_its_default():
    wanted = normalized(to_dict(RunConfig()))
    recorded = copy.deepcopy(wanted)
    assert same_config(recorded, wanted)
    del recorded["recover"]["extra_teachers"]  # written before extra_teachers existed: it ran as the default does
    assert same_config(recorded, wanted)
    other = copy.deepcopy(wanted)
    other["recover"]["extra_teachers"] = ["t.safetensors"]
    assert not same_config(recorded, other)
    changed = copy.deepcopy(wanted)
    changed["recover"]["iterations"] += 1
    assert not same_config(changed, wanted)
    unknown = copy.deepcopy(wanted)
    unknown["recover"]["gone"] = 1
    assert not same_config(unknown, wanted)
    options = copy.deepcopy(wanted)
    options["recover"]["matcher_options"] = {"first_bn_multiplier": 10.0}
    assert not same_config(wanted, options)  # an option the record lacks has no default: not a match


def test_cell_manifests_hold_paths_inside_the_bench_folder(register_plugin, tmp_path):
    register_plugin(MiniDigits(), "mini-digits")
    out = tmp_path / "bench"
    _bench(out)
    moved = tmp_path / "moved"
    out.rename(moved)
    for manifest in moved.rglob("manifest.json"):
        artifacts = json.loads(manifest.read_text())["artifacts"]
        for path in [artifacts["distilled"], artifacts["soft_labels"], *artifacts["students"].values()]:
            assert (moved / path).is_file()
