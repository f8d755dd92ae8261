"""Writes that survive a power loss (file and folder flushed around the rename), progress that cannot be
reused said in one line, and a file scdd may not read told apart from a damaged one."""

from __future__ import annotations

import os
import warnings

import click
import pytest
import torch
from click.testing import CliRunner

import scdd.artifacts
from scdd.artifacts import export_image_folder, load_tensors, save_tensors
from scdd.cli import cli
from scdd.errors import ArtifactError, ProgressNotReused
from scdd.labels.store import ShardWriter
from scdd.published.reading import load_checkpoint
from scdd.resume.units import UnitStore
from scdd.training.checkpoint import EpochCheckpoint


@pytest.fixture
def disk_events(monkeypatch):
    """Every fsync (the path its descriptor names) and rename, in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source, target):
        events.append(("rename", f"{source} -> {target}"))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_an_atomic_file_is_flushed_before_its_rename_and_its_folder_after(tmp_path, disk_events):
    path = save_tensors(tmp_path / "new" / "a.safetensors", {"x": torch.ones(3)}, {"kind": "test"})
    kinds = [kind for kind, _ in disk_events]
    renamed = kinds.index("rename")
    source = disk_events[renamed][1].split(" -> ")[0]
    assert ("fsync", source) in disk_events[:renamed]  # the data, before the name points at it
    assert disk_events[renamed + 1 :] == [("fsync", str(tmp_path / "new"))]  # the new name itself
    assert ("fsync", str(tmp_path)) in disk_events[:renamed]  # the folder the write created
    assert load_tensors(path)[0]["x"].tolist() == [1, 1, 1]


def test_an_image_folder_is_flushed_whole_before_its_rename(tmp_path, disk_events):
    export_image_folder(torch.rand(4, 1, 8, 8), torch.tensor([0, 0, 1, 1]), ("a", "b"), tmp_path / "images")
    renamed = [kind for kind, _ in disk_events].index("rename")
    flushed = {os.path.basename(path) for _, path in disk_events[:renamed]}
    assert {"00000.png", "00001.png", "a", "b"} <= flushed
    assert disk_events[-1] == ("fsync", str(tmp_path))


def test_soft_label_shards_flush_their_folder_after_the_renames(tmp_path, disk_events):
    writer = ShardWriter(tmp_path, {"kind": "soft_labels"}, total_epochs=2, epochs_per_shard=1)
    for _ in range(2):
        writer.add({"x": torch.zeros(2)})
    del disk_events[:]
    writer.commit()
    assert [kind for kind, _ in disk_events] == ["rename", "rename", "fsync"] and disk_events[-1][1] == str(tmp_path)


def _checkpoint(path, epochs: int, width: int = 3) -> EpochCheckpoint:
    return EpochCheckpoint(path, identity={"epochs": epochs, "steps": 4}, modules={"m": torch.nn.Linear(width, 2)})


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda path: path.write_bytes(b"\0\1 not safetensors"), "is unreadable (Error while deserializing header"),
        (lambda path: _checkpoint(path, epochs=9).save(2), "was saved with other settings (epochs)"),
        (lambda path: _checkpoint(path, epochs=5, width=4).save(2), "holds m.m.weight of shape (2, 4), the loop's is (2, 3)"),
    ],
    ids=["unreadable", "other settings", "other shapes"],
)
def test_a_checkpoint_that_cannot_be_reused_is_said_in_one_warning(tmp_path, damage, reason):
    path = tmp_path / "train-x.safetensors"
    damage(path)
    with pytest.warns(ProgressNotReused) as caught:
        assert _checkpoint(path, epochs=5).restore() == (0, [], {})
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{path} {reason}") and message.endswith("; this training loop starts again from its first epoch")


def test_a_unit_made_with_other_settings_is_said_in_one_warning(tmp_path):
    UnitStore(tmp_path, {"iterations": 20, "seed": 0}).save("batch-0", {"x": torch.ones(1)})
    with pytest.warns(
        ProgressNotReused, match=r"batch-0\.safetensors was saved with other settings \(iterations\); this unit is computed again"
    ):
        assert UnitStore(tmp_path, {"iterations": 21, "seed": 0}).load("batch-0") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the matching unit is reused without a word
        assert UnitStore(tmp_path, {"iterations": 20, "seed": 0}).load("batch-0") is not None


def test_the_cli_prints_such_a_warning_as_one_line(monkeypatch):
    @click.command("warn-once")
    def warn_once():
        warnings.warn(ProgressNotReused("DIR/x.safetensors is unreadable (bad\nheader); this unit is computed again"), stacklevel=2)

    monkeypatch.setitem(cli.commands, "warn-once", warn_once)
    result = CliRunner().invoke(cli, ["warn-once"])
    assert result.exit_code == 0
    assert result.output.splitlines() == ["warning: DIR/x.safetensors is unreadable (bad header); this unit is computed again"]


def test_permission_denied_is_not_called_corruption(tmp_path, monkeypatch):
    path = save_tensors(tmp_path / "a.safetensors", {"x": torch.ones(1)}, {"kind": "test"})
    denied = PermissionError(13, "Permission denied")
    monkeypatch.setattr(scdd.artifacts, "safe_open", lambda *a, **k: (_ for _ in ()).throw(denied))
    with pytest.raises(ArtifactError, match=r"a\.safetensors: permission denied \(scdd cannot read it"):
        load_tensors(path)
    torch.save({"w": torch.zeros(1)}, tmp_path / "c.pth")
    monkeypatch.setattr(torch, "load", lambda *a, **k: (_ for _ in ()).throw(denied))
    with pytest.raises(ArtifactError, match=r"c\.pth: permission denied") as raised:
        load_checkpoint(tmp_path / "c.pth")
    assert "corrupt" not in str(raised.value)


def test_equal_artifacts_are_equal_files(tmp_path):
    """safetensors orders the metadata at random on every write; scdd's artifacts sort it, so a
    rerun writes the same bytes (and SHA-256, which soft labels and stage records keep)."""
    metadata = {f"key{index}": index for index in range(8)}
    paths = [save_tensors(tmp_path / f"{index}.safetensors", {"b": torch.ones(2), "a": torch.zeros(3)}, metadata) for index in range(5)]
    assert len({path.read_bytes() for path in paths}) == 1
    tensors, read = load_tensors(paths[0])
    assert read == {"format_version": 1, **metadata} and torch.equal(tensors["a"], torch.zeros(3))
