"""Loss curves: every value a loop reports lands in the stage's curves.csv, and in TensorBoard when asked."""

import csv
import json
import sys

import pytest
from click.testing import CliRunner
from hard_inputs import _image_folder

from scdd.cli import cli
from scdd.curves import CurveRecorder, tensorboard_writer
from scdd.errors import ConfigError
from scdd.progress import SILENT


def _loop(progress, name, epochs, steps):
    task = progress.task(name, epochs * steps)
    for epoch in range(epochs):
        for step in range(steps):
            task.advance(1, loss=10.0 - epoch - step / 10)
        task.advance(0, loss=9.5 - epoch, epoch=epoch + 1)
    task.close()


def test_csv_rows_per_stage(tmp_path):
    recorder = CurveRecorder(SILENT)
    recorder.begin_stage("squeeze")
    _loop(recorder, "squeeze moco-v3", epochs=2, steps=3)
    path = recorder.write_stage(tmp_path / "squeeze")
    rows = list(csv.DictReader(path.open()))
    assert [r["metric"] for r in rows].count("loss") == 6 and [r["metric"] for r in rows].count("loss/epoch") == 2
    assert rows[5] == {**rows[5], "loop": "squeeze moco-v3", "unit": "5", "epoch": "", "metric": "loss", "value": "8.9"}
    assert rows[-1]["epoch"] == "2" and float(rows[-1]["value"]) == 8.5 and rows[-1]["unit"] == "6"
    recorder.begin_stage("evaluate")  # a stage whose loops report nothing writes no file
    assert recorder.write_stage(tmp_path / "evaluate") is None and not (tmp_path / "evaluate").exists()


def test_tensorboard_scalars(tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the optional tensorboard extra (pip install 'scdd[tensorboard]') is not installed",
    )
    recorder = CurveRecorder(SILENT, tensorboard_writer(tmp_path / "tb"))
    recorder.begin_stage("posttrain")
    _loop(recorder, "posttrain resnet10-slim", epochs=3, steps=1)
    recorder.write_stage(tmp_path / "posttrain")
    recorder.add_metrics({"teacher": {"top1": 90.0, "top5": 99.0}, "students": {"resnet10-slim": {"top1": 80.5, "top5": 98.0}}})
    recorder.close()
    events = event_accumulator.EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"posttrain/posttrain resnet10-slim/loss", "metrics/teacher/top1", "metrics/resnet10-slim/top1"} <= tags
    assert [s.step for s in events.Scalars("posttrain/posttrain resnet10-slim/loss/epoch")] == [1, 2, 3]
    assert events.Scalars("metrics/resnet10-slim/top1")[0].value == pytest.approx(80.5)


def test_missing_tensorboard_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(
        ConfigError, match=r"^--log tensorboard needs the optional 'tensorboard' package: pip install 'scdd\[tensorboard\]'$"
    ):
        tensorboard_writer(tmp_path)


def test_missing_tensorboard_stops_scdd_run_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    result = CliRunner().invoke(cli, ["run", "--log", "tensorboard", "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "pip install 'scdd[tensorboard]'" in result.output and not (tmp_path / "run").exists()


def test_scdd_run_writes_each_stage_and_the_metrics_to_tensorboard(tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the optional tensorboard extra (pip install 'scdd[tensorboard]') is not installed",
    )
    folder = _image_folder(tmp_path / "data", classes=3, train=4, val=2)
    budgets = {
        "squeeze.pretrainer_options.epochs": 2,
        "squeeze.pretrainer_options.batch_size": 6,
        "align.aligner_options.epochs": 2,
        "recover.iterations": 3,
        "posttrain.epochs": 2,
        "report.max_classes": 2,
    }
    args = [
        "run",
        "--dataset",
        "imagefolder",
        "--data-root",
        str(folder),
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
        "--quiet",
        "--ipc",
        "1",
        "--log",
        "tensorboard",
        *[f"--set={setting}={value}" for setting, value in budgets.items()],
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    events = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert not any(tag.startswith("relabel/") for tag in tags) and not (tmp_path / "run" / "relabel" / "curves.csv").exists()  # no loss
    for stage in ("squeeze", "align", "recover", "posttrain"):  # every stage's loop, as <stage>/<loop>/<metric>
        rows = list(csv.DictReader((tmp_path / "run" / stage / "curves.csv").open()))
        expected = {f"{stage}/{row['loop']}/{row['metric']}" for row in rows}
        assert expected and expected <= set(tags), stage
        last = rows[-1]
        scalars = events.Scalars(f"{stage}/{last['loop']}/{last['metric']}")
        assert scalars[-1].step == int(last["unit"]) and scalars[-1].value == pytest.approx(float(last["value"]), rel=1e-6)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    student = manifest["metrics"]["students"]["resnet10-slim"]["top1"]
    assert events.Scalars("metrics/teacher/top1")[0].value == pytest.approx(manifest["metrics"]["teacher"]["top1"])
    assert events.Scalars("metrics/resnet10-slim/top1")[0].value == pytest.approx(student)
