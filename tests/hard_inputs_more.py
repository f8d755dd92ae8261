"""More hard inputs for test_hard_inputs.py (README's "Hard inputs" table, after those of hard_inputs.py):
image files scdd must decode right, names and folders it must handle, and folders in other hands."""

import errno
import importlib.metadata
import json
import os
from pathlib import Path

import numpy as np
import torch
import torchvision
from hard_inputs import Case, _classifier, _cli, _distilled, _image_folder
from PIL import Image

from scdd.artifacts import load_tensors, save_tensors
from scdd.registry import reset_plugins
from scdd.run_lock import acquire
from scdd.stages.relabel import RelabelConfig, relabel

CORESET = "coreset --quiet --ipc 1 --dataset imagefolder --data-root {} --out {}"
WROTE = "DIR/out/distilled.safetensors"


def _class_images(root: Path, image: "callable", classes: int = 3) -> Path:
    """An image folder whose every image of class k is ``image(k)`` (a PIL image), two a class for training."""
    for split, count in (("train", 2), ("val", 1)):
        for label in range(classes):
            (root / split / f"c{label}").mkdir(parents=True, exist_ok=True)
            for index in range(count):
                image(label).save(root / split / f"c{label}" / f"{index}.png")
    return root


def _colour(label: int) -> tuple[int, int, int]:
    return (40 + 60 * label, 200 - 50 * label, 7 + label)


def _pixels(d: Path) -> torch.Tensor:
    """The coreset's images as uint8, ordered by class."""
    tensors, _ = load_tensors(d / "out" / "distilled.safetensors")
    return (tensors["images"][tensors["labels"].argsort()] * 255).round().to(torch.uint8)


def _rgba(label: int) -> Image.Image:
    return Image.new("RGBA", (16, 16), (*_colour(label), 30 * label))


def _palette(label: int) -> Image.Image:
    return Image.new("RGB", (16, 16), _colour(label)).quantize(colors=4)


def _sixteen_bit(label: int) -> Image.Image:
    return Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)  # 0 to 65535: exactly 0 to 255 in 8 bits


def _same_colours(d: Path) -> None:
    pixels = _pixels(d)
    assert pixels.shape[1] == 3  # a colour dataset: alpha dropped, palette applied
    for label in range(3):
        assert pixels[label].flatten(1).unique(dim=1).t().tolist() == [list(_colour(label))]


def _scaled_to_eight_bits(d: Path) -> None:
    pixels = _pixels(d)
    assert pixels.shape[1] == 1 and all(torch.equal(pixels[k, 0].flatten(), torch.arange(256, dtype=torch.uint8)) for k in range(3))


def _latin1_names(root: Path) -> Path:
    """A class folder and an image file whose names are Latin-1 bytes, not UTF-8."""
    _image_folder(root, classes=3)
    for split in ("train", "val"):
        os.rename(os.fsencode(root / split / "c2"), os.fsencode(root / split) + b"/caf\xe9")
    os.rename(os.fsencode(root / "train" / "c0" / "0.png"), os.fsencode(root / "train" / "c0") + b"/\xff.png")
    return root


def _readable_class_names(d: Path) -> None:
    tensors, metadata = load_tensors(d / "out" / "distilled.safetensors")
    assert metadata["dataset"]["class_names"] == ["c0", "c1", "caf\\xe9"] and len(tensors["labels"]) == 3


def _long_names(root: Path) -> Path:
    """A class folder and an image file with names of 255 bytes, the most a file system allows."""
    _image_folder(root, classes=3)
    for split in ("train", "val"):
        (root / split / "c2").rename(root / split / ("é" * 127 + "c"))
    (root / "train" / "c0" / "0.png").rename(root / "train" / "c0" / ("x" * 251 + ".png"))
    return root


def _long_class_name_kept(d: Path) -> None:
    assert load_tensors(d / "out" / "distilled.safetensors")[1]["dataset"]["class_names"][2] == "é" * 127 + "c"


def _newer_run(folder: Path) -> Path:
    folder.mkdir()
    record = {"scdd_manifest": 2, "versions": {"scdd": "9.0.0"}, "config": {}, "stages": {}}
    (folder / "manifest.json").write_text(json.dumps(record))
    return folder


def _read_only(monkeypatch, folder: Path) -> Path:
    """``folder`` as a folder without write permission shows itself to a non-root process: creating
    anything in it fails with EACCES (the tests may run as root, whom the mode would not stop)."""
    folder.mkdir()
    real_open, real_mkdir = os.open, os.mkdir

    def refused(path) -> bool:
        return Path(os.fsdecode(path)).parent == folder

    def guarded_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and refused(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if refused(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    return folder


def _interrupted_import(d: Path) -> Path:
    """A ResNet-50 checkpoint, and --out as an import killed mid-write leaves it: its lock file and
    the temporary of the backbone it was writing."""
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), d / "resnet50.pth")
    (d / "out").mkdir()
    (d / "out" / ".scdd.lock").write_text("{}")
    (d / "out" / ".backbone.safetensors.x1y2z3w4.tmp").write_bytes(b"\0" * 4096)
    return d / "resnet50.pth"


def _import_finished(d: Path) -> None:
    assert sorted(path.name for path in (d / "out").iterdir()) == [".scdd.lock", "backbone.safetensors", "classifier.safetensors"]


def _duplicate_plugin(d: Path, monkeypatch) -> None:
    """An installed plugin that registers a matcher under a name the built-ins already use."""
    (d / "dup_matcher_plugin.py").write_text(
        "from scdd.registry import hookimpl\n\n\n@hookimpl\ndef register_matchers(register):\n"
        "    register('bn', 'scdd.matchers.bn:build_uniform')\n"
    )
    monkeypatch.syspath_prepend(str(d))
    real = importlib.metadata.entry_points
    extra = importlib.metadata.EntryPoint("dup", "dup_matcher_plugin", "scdd")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None, **kw: [*real(group=group, **kw), extra])
    reset_plugins()


def _held(folder: Path) -> Path:
    """``folder`` locked by a run under way (this process stands in for it; the lock is per open file)."""
    _held.fds.append(acquire(folder))
    (folder / "manifest.json").write_text(json.dumps({"scdd_manifest": 1, "config": {}, "stages": {}}))
    return folder


_held.fds = []


def _first_run_untouched(d: Path) -> None:
    assert sorted(path.name for path in (d / "out").iterdir()) == [".scdd.lock", "manifest.json"]
    assert json.loads((d / "out" / "manifest.json").read_text())["stages"] == {}
    while _held.fds:
        os.close(_held.fds.pop())


def _other_labels(d: Path) -> Path:
    """Soft labels relabelled for one distilled set, and another set of the same size beside them."""
    relabel(
        RelabelConfig(epochs=1),
        _classifier(d / "teacher.safetensors"),
        _distilled(d / "labelled.safetensors"),
        d / "labels",
        device=torch.device("cpu"),
        seed=0,
    )
    tensors, metadata = load_tensors(d / "labelled.safetensors")
    save_tensors(d / "other.safetensors", {**tensors, "images": tensors["images"].flip(0)}, metadata)
    return d / "labels" / "soft_labels.safetensors"


MORE_CASES = [
    Case(
        "RGBA PNGs (alpha dropped, as torchvision's loader does)",
        lambda d, m: _cli(CORESET, _class_images(d / "data", _rgba), d / "out"),
        WROTE,
        fails=False,
        check=_same_colours,
    ),
    Case(
        "palette PNGs in colour (a colour dataset; a palette of grays stays grayscale)",
        lambda d, m: _cli(CORESET, _class_images(d / "data", _palette), d / "out"),
        WROTE,
        fails=False,
        check=_same_colours,
    ),
    Case(
        "16-bit grayscale PNGs (scaled to 8 bits, not clipped to white)",
        lambda d, m: _cli(CORESET, _class_images(d / "data", _sixteen_bit), d / "out"),
        WROTE,
        fails=False,
        check=_scaled_to_eight_bits,
    ),
    Case(
        "file and class folder names that are not UTF-8 (kept as `\\xNN` text)",
        lambda d, m: _cli(CORESET, _latin1_names(d / "data"), d / "out"),
        WROTE,
        fails=False,
        check=_readable_class_names,
    ),
    Case(
        "file and class folder names of 255 bytes",
        lambda d, m: _cli(CORESET, _long_names(d / "data"), d / "out"),
        WROTE,
        fails=False,
        check=_long_class_name_kept,
    ),
    Case(
        "run folder written by a newer scdd",
        lambda d, m: _cli("run --out {}", _newer_run(d / "out")),
        "--out DIR/out was written by a newer scdd (9.0.0, manifest format 2; this one reads format 1); upgrade scdd, or choose another folder",
    ),
    Case(
        "`--resume` of a run folder written by a newer scdd",
        lambda d, m: _cli("run --resume {}", _newer_run(d / "out")),
        "--resume DIR/out was written by a newer scdd (9.0.0, manifest format 2; this one reads format 1); upgrade scdd, or choose another folder",
    ),
    Case(
        "`--resume` of a folder that is not a run",
        lambda d, m: (d / "out").mkdir() or _cli("run --resume {}", d / "out"),
        "--resume DIR/out: no manifest.json there (not an scdd run folder)",
    ),
    Case(
        "run folder whose manifest is damaged",
        lambda d, m: (d / "out").mkdir() or ((d / "out" / "manifest.json").write_text('{"config": ') and _cli("run --out {}", d / "out")),
        "--out DIR/out: manifest.json is unreadable; choose another folder or pass --overwrite",
    ),
    Case(
        "`--out` that is a file",
        lambda d, m: (d / "out").write_text("mine") and _cli("run --out {}", d / "out"),
        "--out DIR/out exists and is not a folder",
    ),
    Case(
        "read-only `--out` folder",
        lambda d, m: _cli(CORESET, _image_folder(d / "data"), _read_only(m, d / "out")),
        "--out DIR/out: cannot create its lock file (Permission denied)",
    ),
    Case(
        "`--out` inside a read-only folder",
        lambda d, m: _cli(CORESET, _image_folder(d / "data"), _read_only(m, d / "ro") / "out"),
        "--out DIR/ro/out: cannot create it (Permission denied)",
    ),
    Case(
        "an interrupted `import-checkpoint` run again (its leftover temporary is removed)",
        lambda d, m: _cli("import-checkpoint {} --format torchvision --quiet --out {}", _interrupted_import(d), d / "out"),
        "DIR/out/backbone.safetensors",
        fails=False,
        check=_import_finished,
    ),
    Case(
        "a plugin registering a name another plugin has",
        lambda d, m: _duplicate_plugin(d, m) or _cli("run --out {}", d / "out"),
        "matcher 'bn' is registered by both plugin 'matchers' and plugin 'dup'",
    ),
    Case(
        "two runs on one folder (the second changes nothing)",
        lambda d, m: _cli("run --out {}", _held(d / "out")),
        "--out DIR/out is in use by another scdd run (pid PID on host HOST, since TIME); wait for it to end or choose another folder",
        check=_first_run_untouched,
    ),
    Case(
        "soft labels made for another distilled set of the same size",
        lambda d, m: _cli(
            "posttrain {} --soft-labels {} --students resnet10-slim --epochs 1 --device cpu --out {}",
            d / "other.safetensors",
            _other_labels(d),
            d / "out",
        ),
        "DIR/labels/soft_labels.safetensors: made for another distilled set than DIR/other.safetensors (SHA-256 differs)",
    ),
]
