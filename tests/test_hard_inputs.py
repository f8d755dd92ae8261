"""Hard inputs: each gives one line naming the problem and a non-zero exit, never a traceback or a
half-written artifact. README's "Hard inputs" table is rendered from CASES and checked here."""

import argparse
import errno
import importlib.metadata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from scdd.cli import cli
from scdd.registry import reset_plugins

import scdd.artifacts
from scdd.artifacts import save_tensors
from scdd.data.base import DatasetInfo
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    name: str  # the README's "input" column
    args: Callable  # (dir, monkeypatch) -> command-line arguments, after setting up the input under dir
    message: str  # the line the user sees, with the test folder written as DIR
    fails: bool = True  # False: a warning, the command succeeds


def _image_folder(root: Path, classes: int = 10, train: int = 3, val: int = 1, bad: bool = False) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for label in range(classes):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(folder / f"{index}.png")
    if bad:
        (root / "train" / "c0" / "0.png").write_bytes(b"not a png")
    return root


def _info(classes: int = 10):
    return DatasetInfo("imagefolder", classes, 1, 16, (0.5,), (0.25,), tuple(f"c{i}" for i in range(classes)), True)


def _classifier(path: Path, classes: int = 10) -> Path:
    torch.manual_seed(0)
    model = build_classifier("resnet10-slim", _info(classes))
    return save_model(path, model, ModelRecord("classifier", "resnet10-slim", {}, _info(classes), {}))


def _distilled(path: Path) -> Path:
    images = torch.rand(20, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(20) % 10
    return save_tensors(path, {"images": images, "labels": labels}, {"kind": "distilled", "dataset": asdict(_info()), "ipc": 2, "source": "test"})


def _broken_plugin(monkeypatch) -> None:
    real = importlib.metadata.entry_points

    def with_broken(group):
        return [*real(group=group), importlib.metadata.EntryPoint("broken", "scdd_no_such_module_xyz", "scdd")]

    monkeypatch.setattr(importlib.metadata, "entry_points", with_broken)
    reset_plugins()


def _full_disk(monkeypatch) -> None:
    def fill_then_fail(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 64)  # a partial file, as a real full disk leaves one
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(scdd.artifacts, "save_file", fill_then_fail)


def _pickle_checkpoint(path: Path, truncate: bool = False) -> Path:
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "args": argparse.Namespace(arch="resnet50")}, path)
    if truncate:
        path.write_bytes(path.read_bytes()[:100])
    return path


CASES = [
    Case("dataset folder missing",
         lambda d, m: ["squeeze", "--dataset", "imagefolder", "--data-root", d / "nothing", "--out", d / "out"],
         "--data-root DIR/nothing does not exist or is not a folder"),
    Case("dataset folder empty",
         lambda d, m: (d / "empty").mkdir() or ["squeeze", "--dataset", "imagefolder", "--data-root", d / "empty", "--out", d / "out"],
         "DIR/empty/train: folder missing"),
    Case("class folders without images",
         lambda d, m: (d / "data/train/c0").mkdir(parents=True) or ["squeeze", "--dataset", "imagefolder", "--data-root", d / "data", "--out", d / "out"],
         "DIR/data/train: no image files (.jpg, .jpeg, .png, .ppm, ...)"),
    Case("image that cannot be decoded, `--strict`",
         lambda d, m: ["squeeze", "--strict", "--dataset", "imagefolder", "--data-root", _image_folder(d / "data", bad=True), "--out", d / "out"],
         "DIR/data/train/c0/0.png: cannot decode image (UnidentifiedImageError: cannot identify image file 'DIR/data/train/c0/0.png')"),
    Case("image that cannot be decoded (default: skipped, counted in the manifest)",
         lambda d, m: ["evaluate", _classifier(d / "model.safetensors"), "--dataset", "imagefolder", "--quiet",
                       "--data-root", _image_folder(d / "data", bad=True)],
         "warning: skipped 1 image file(s) that could not be decoded (first: DIR/data/train/c0/0.png: cannot decode image "
         "(UnidentifiedImageError: cannot identify image file 'DIR/data/train/c0/0.png')); --strict makes this an error",
         fails=False),
    Case("checkpoint with another class count than the dataset",
         lambda d, m: ["evaluate", _classifier(d / "model.safetensors"), "--dataset", "imagefolder",
                       "--data-root", _image_folder(d / "data", classes=3)],
         "DIR/model.safetensors: model has 10 classes, dataset 'imagefolder' has 3"),
    Case("teacher and distilled set with other class counts",
         lambda d, m: ["relabel", _classifier(d / "model.safetensors", classes=3), _distilled(d / "distilled.safetensors"), "--out", d / "out"],
         "teacher has 3 classes, distilled set 10"),
    Case("IPC 0", lambda d, m: ["run", "--ipc", "0", "--out", d / "out"],
         "Invalid value for '--ipc': 0 is not in the range x>=1."),
    Case("IPC below 1 through `--set`", lambda d, m: ["run", "--set", "recover.ipc=-1", "--out", d / "out"],
         "ipc must be at least 1, got -1"),
    Case("coreset IPC above a class's real image count",
         lambda d, m: ["coreset", "--ipc", "4", "--dataset", "imagefolder", "--data-root", _image_folder(d / "data"), "--out", d / "out"],
         "class 'c0' has 3 training images, fewer than ipc 4"),
    Case("`scdd run --method coreset-random` with IPC above a class's image count (checked before any training)",
         lambda d, m: ["run", "--method", "coreset-random", "--ipc", "4", "--dataset", "imagefolder",
                       "--data-root", _image_folder(d / "data"), "--out", d / "out"],
         "class 'c0' has 3 training images, fewer than ipc 4"),
    Case("unknown component name", lambda d, m: ["run", "--matcher", "imbalanced", "--out", d / "out"],
         "unknown matcher 'imbalanced'. Did you mean 'imbalanced-bn'? Registered matchers: bn, imbalanced-bn"),
    Case("plugin that fails to import (the others keep working; `scdd plugins` lists it as broken)",
         lambda d, m: _broken_plugin(m) or ["plugins", "--kind", "matcher"],
         "warning: plugin 'broken' is broken: ModuleNotFoundError: No module named 'scdd_no_such_module_xyz'", fails=False),
    Case("NaN or infinite loss",
         lambda d, m: ["posttrain", _distilled(d / "distilled.safetensors"), "--hard-labels", "--students", "resnet10-slim",
                       "--epochs", "1", "--set", "posttrain.lr=inf", "--set", "posttrain.batch_size=8", "--device", "cpu", "--out", d / "out"],
         "posttrain resnet10-slim: loss became nan at step 1; stopping"),
    Case("full disk while writing an artifact",
         lambda d, m: _full_disk(m) or ["coreset", "--ipc", "1", "--dataset", "imagefolder", "--data-root", _image_folder(d / "data"), "--out", d / "out"],
         "DIR/out/distilled.safetensors: no space left on device while writing it; the partial file was removed"),
    Case("artifact that is not a safetensors file",
         lambda d, m: (d / "backbone.safetensors").write_bytes(b"\x00\x01 not a safetensors file") and
         ["align", d / "backbone.safetensors", "--out", d / "out"],
         "DIR/backbone.safetensors: not a readable safetensors file (Error while deserializing header: header too large)"),
    Case("truncated safetensors artifact",
         lambda d, m: (d / "c.safetensors").write_bytes(_classifier(d / "whole.safetensors").read_bytes()[:5000]) and
         ["recover", d / "c.safetensors", "--out", d / "out"],
         "DIR/c.safetensors: not a readable safetensors file (Error while deserializing header: invalid header length)"),
    Case("pickle checkpoint that needs full unpickling",
         lambda d, m: ["import-checkpoint", _pickle_checkpoint(d / "full.pth"), "--format", "torchvision", "--out", d / "out"],
         "DIR/full.pth: the file pickles Python objects (argparse.Namespace), and unpickling can run arbitrary code; "
         "pass --trust-pickle only if you trust where the file came from"),
    Case("truncated pickle checkpoint",
         lambda d, m: ["import-checkpoint", _pickle_checkpoint(d / "cut.pth", truncate=True), "--format", "torchvision", "--out", d / "out"],
         "DIR/cut.pth: corrupt or truncated checkpoint (PytorchStreamReader failed reading zip archive: failed finding central directory)"),
    Case("`--out` folder holding other files",
         lambda d, m: (d / "out").mkdir() or (d / "out" / "notes.txt").write_text("mine") and ["run", "--out", d / "out"],
         "--out DIR/out already holds other files; choose another folder or pass --overwrite"),
]


def table(cases=CASES) -> str:
    """README's "Hard inputs" table."""
    rows = ["| input | what the user sees | exit |", "|---|---|---|"]
    for case in cases:
        shown = (f"`Error: {case.message}`" if case.fails else f"`{case.message}`").replace("|", "\\|")
        rows.append(f"| {case.name} | {shown} | {'1' if case.fails else '0'} |")
    return "\n".join(rows)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hard_input_gives_one_named_line(case, tmp_path, monkeypatch):
    args = [str(part) for part in case.args(tmp_path, monkeypatch)]
    result = CliRunner().invoke(cli, args)
    output = result.output.replace(str(tmp_path), "DIR")
    assert "Traceback" not in output and not isinstance(result.exception, (AssertionError, TypeError, KeyError))
    lines = [line for line in output.splitlines() if line.strip()]
    if case.fails:
        assert result.exit_code != 0
        assert lines[-1] == f"Error: {case.message}", output
        out = tmp_path / "out"
        leftovers = [p.name for p in out.rglob("*")] if out.exists() else []
        assert not [name for name in leftovers if name.endswith((".safetensors", ".tmp", ".partial"))], leftovers
    else:
        assert result.exit_code == 0, output
        assert case.message in lines, output


def test_readme_table_lists_every_hard_input():
    readme = (ROOT / "README.md").read_text()
    assert table() in readme, "README's Hard inputs table is out of date; paste:\n" + table()
