"""The hard inputs of test_hard_inputs.py: each case's command line (made in a test's folder), the one
line the user must see, and README's "Hard inputs" table rendered from them."""

import argparse
import errno
import importlib.metadata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import scdd.artifacts
from scdd.artifacts import load_tensors, save_tensors
from scdd.data.base import DatasetInfo
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model
from scdd.registry import reset_plugins


@dataclass
class Case:
    name: str  # the README's "input" column
    args: Callable  # (dir, monkeypatch) -> command-line arguments, after setting up the input under dir
    message: str  # the line the user sees, with the test folder written as DIR
    fails: bool = True  # False: a warning, the command succeeds
    check: Callable | None = None  # (dir) -> None: asserts what the command did (or left alone)


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
    return save_tensors(
        path, {"images": images, "labels": labels}, {"kind": "distilled", "dataset": asdict(_info()), "ipc": 2, "source": "test"}
    )


def _nan_distilled(path: Path) -> Path:
    tensors, metadata = load_tensors(_distilled(path.with_name("whole.safetensors")))
    tensors["images"][0, 0, 0, :2] = torch.tensor([float("nan"), float("inf")])
    return save_tensors(path, tensors, metadata)


def _reshaped_folder(root: Path, empty_train: str | None = None, extra_val: str | None = None) -> Path:
    """A 3-class image folder with one training class emptied, or a validation class the training split lacks."""
    _image_folder(root, classes=3)
    for path in (root / "train" / str(empty_train)).glob("*.png"):
        path.unlink()
    if extra_val:
        (root / "val" / extra_val).mkdir()
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "val" / extra_val / "0.png")
    return root


def _denied(monkeypatch, path: Path) -> Path:
    path.write_bytes(b"unreadable for this user")
    monkeypatch.setattr(
        scdd.artifacts, "safe_open", lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied"))
    )
    return path


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


def _cli(command: str, *paths) -> list:
    """``command`` split into words, each ``{}`` replaced by the next of ``paths``."""
    fill = iter(paths)
    return [next(fill) if word == "{}" else word for word in command.split()]


CASES = [
    Case(
        "dataset folder missing",
        lambda d, m: _cli("squeeze --dataset imagefolder --data-root {} --out {}", d / "nothing", d / "out"),
        "--data-root DIR/nothing does not exist or is not a folder",
    ),
    Case(
        "dataset folder empty",
        lambda d, m: (d / "empty").mkdir() or _cli("squeeze --dataset imagefolder --data-root {} --out {}", d / "empty", d / "out"),
        "DIR/empty/train: folder missing",
    ),
    Case(
        "class folders without images",
        lambda d, m: (
            (d / "data/train/c0").mkdir(parents=True)
            or _cli("squeeze --dataset imagefolder --data-root {} --out {}", d / "data", d / "out")
        ),
        "DIR/data/train: no image files (.jpg, .jpeg, .png, .ppm, ...)",
    ),
    Case(
        "image that cannot be decoded, `--strict`",
        lambda d, m: _cli("squeeze --strict --dataset imagefolder --data-root {} --out {}", _image_folder(d / "data", bad=True), d / "out"),
        "DIR/data/train/c0/0.png: cannot decode image (UnidentifiedImageError: cannot identify image file 'DIR/data/train/c0/0.png')",
    ),
    Case(
        "image that cannot be decoded (default: skipped, counted in the manifest)",
        lambda d, m: _cli(
            "evaluate {} --dataset imagefolder --quiet --data-root {}",
            _classifier(d / "model.safetensors"),
            _image_folder(d / "data", bad=True),
        ),
        "warning: skipped 1 image file(s) that could not be decoded (first: DIR/data/train/c0/0.png: cannot decode image (UnidentifiedImageError: cannot identify image file 'DIR/data/train/c0/0.png')); --strict makes this an error",
        fails=False,
    ),
    Case(
        "checkpoint with another class count than the dataset",
        lambda d, m: _cli(
            "evaluate {} --dataset imagefolder --data-root {}", _classifier(d / "model.safetensors"), _image_folder(d / "data", classes=3)
        ),
        "DIR/model.safetensors: model has 10 classes, dataset 'imagefolder' has 3",
    ),
    Case(
        "teacher and distilled set with other class counts",
        lambda d, m: _cli(
            "relabel {} {} --out {}", _classifier(d / "model.safetensors", classes=3), _distilled(d / "distilled.safetensors"), d / "out"
        ),
        "teacher has 3 classes, distilled set 10",
    ),
    Case("IPC 0", lambda d, m: _cli("run --ipc 0 --out {}", d / "out"), "Invalid value for '--ipc': 0 is not in the range x>=1."),
    Case(
        "IPC below 1 through `--set`", lambda d, m: _cli("run --set recover.ipc=-1 --out {}", d / "out"), "ipc must be at least 1, got -1"
    ),
    Case(
        "coreset IPC above a class's real image count",
        lambda d, m: _cli("coreset --ipc 4 --dataset imagefolder --data-root {} --out {}", _image_folder(d / "data"), d / "out"),
        "class 'c0' has 3 training images, fewer than ipc 4",
    ),
    Case(
        "`scdd run --method coreset-random` with IPC above a class's image count (checked before any training)",
        lambda d, m: _cli(
            "run --method coreset-random --ipc 4 --dataset imagefolder --data-root {} --out {}", _image_folder(d / "data"), d / "out"
        ),
        "class 'c0' has 3 training images, fewer than ipc 4",
    ),
    Case(
        "unknown component name",
        lambda d, m: _cli("run --matcher imbalanced --out {}", d / "out"),
        "unknown matcher 'imbalanced'. Did you mean 'imbalanced-bn'? Registered matchers: bn, class-aware-bn, imbalanced-bn",
    ),
    Case(
        "plugin that fails to import (the others keep working; `scdd plugins` lists it as broken)",
        lambda d, m: _broken_plugin(m) or _cli("plugins --kind matcher"),
        "warning: plugin 'broken' is broken: ModuleNotFoundError: No module named 'scdd_no_such_module_xyz'",
        fails=False,
    ),
    Case(
        "NaN or infinite loss",
        lambda d, m: _cli(
            "posttrain {} --hard-labels --students resnet10-slim --epochs 1 --set posttrain.lr=inf --set posttrain.batch_size=8 --device cpu --out {}",
            _distilled(d / "distilled.safetensors"),
            d / "out",
        ),
        "posttrain resnet10-slim: loss became nan at step 1; stopping",
    ),
    Case(
        "full disk while writing an artifact",
        lambda d, m: (
            _full_disk(m) or _cli("coreset --ipc 1 --dataset imagefolder --data-root {} --out {}", _image_folder(d / "data"), d / "out")
        ),
        "DIR/out/distilled.safetensors: no space left on device while writing it; the partial file was removed",
    ),
    Case(
        "artifact that is not a safetensors file",
        lambda d, m: (
            (d / "backbone.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
            and _cli("align {} --out {}", d / "backbone.safetensors", d / "out")
        ),
        "DIR/backbone.safetensors: not a readable safetensors file (Error while deserializing header: header too large)",
    ),
    Case(
        "truncated safetensors artifact",
        lambda d, m: (
            (d / "c.safetensors").write_bytes(_classifier(d / "whole.safetensors").read_bytes()[:5000])
            and _cli("recover {} --out {}", d / "c.safetensors", d / "out")
        ),
        "DIR/c.safetensors: not a readable safetensors file (Error while deserializing header: invalid header length)",
    ),
    Case(
        "pickle checkpoint that needs full unpickling",
        lambda d, m: _cli("import-checkpoint {} --format torchvision --out {}", _pickle_checkpoint(d / "full.pth"), d / "out"),
        "DIR/full.pth: the file pickles Python objects (argparse.Namespace), and unpickling can run arbitrary code; pass --trust-pickle only if you trust where the file came from",
    ),
    Case(
        "truncated pickle checkpoint",
        lambda d, m: _cli(
            "import-checkpoint {} --format torchvision --out {}", _pickle_checkpoint(d / "cut.pth", truncate=True), d / "out"
        ),
        "DIR/cut.pth: corrupt or truncated checkpoint (PytorchStreamReader failed reading zip archive: failed finding central directory)",
    ),
    Case(
        "NaN or infinite pixels in a distilled set",
        lambda d, m: _cli(
            "posttrain {} --hard-labels --students resnet10-slim --epochs 1 --device cpu --out {}",
            _nan_distilled(d / "nan.safetensors"),
            d / "out",
        ),
        "DIR/nan.safetensors: 2 pixel value(s) are NaN or infinite; the distilled set is damaged",
    ),
    Case(
        "a training class folder without images beside others",
        lambda d, m: _cli(
            "squeeze --dataset imagefolder --data-root {} --out {}", _reshaped_folder(d / "data", empty_train="c1"), d / "out"
        ),
        "DIR/data/train/c1: class folder holds no image files; every class needs training images",
    ),
    Case(
        "validation classes that differ from the training classes",
        lambda d, m: _cli("squeeze --dataset imagefolder --data-root {} --out {}", _reshaped_folder(d / "data", extra_val="c9"), d / "out"),
        "DIR/data/val: class folder 'c9' is not among the training classes",
    ),
    Case(
        "artifact scdd may not read (permission denied)",
        lambda d, m: _cli("align {} --out {}", _denied(m, d / "backbone.safetensors"), d / "out"),
        "DIR/backbone.safetensors: permission denied (scdd cannot read it; check its owner and mode)",
    ),
    Case(
        "`--out` folder holding other files",
        lambda d, m: (d / "out").mkdir() or ((d / "out" / "notes.txt").write_text("mine") and _cli("run --out {}", d / "out")),
        "--out DIR/out already holds other files; choose another folder or pass --overwrite",
    ),
]


def table(cases=CASES) -> str:
    """README's "Hard inputs" table."""
    rows = ["| input | what the user sees | exit |", "|---|---|---|"]
    for case in cases:
        shown = (f"`Error: {case.message}`" if case.fails else f"`{case.message}`").replace("|", "\\|")
        rows.append(f"| {case.name} | {shown} | {'1' if case.fails else '0'} |")
    return "\n".join(rows)
