"""What scdd makes from names it does not control: class folders of the PNG export (safe, distinct,
inside the export), class names read from folders that are not UTF-8, and which leftovers scdd deletes."""

import json
import os

import torch

from scdd.artifacts import class_folder_names, export_image_folder
from scdd.data.folders import readable_names
from scdd.out_dir import holds_files, remove_temporaries

AWKWARD = (".", "..", "a?", "a*", "A?", "a_-2", "x" * 300, "c\udcff", "  .hidden", "ordinary")


def test_class_folders_are_safe_and_distinct_and_keep_every_image(tmp_path):
    labels = torch.arange(len(AWKWARD)).repeat(2)
    folder = export_image_folder(torch.rand(len(labels), 1, 4, 4), labels, AWKWARD, tmp_path / "images")
    names = class_folder_names(AWKWARD)
    assert len({name.casefold() for name in names}) == len(AWKWARD)
    assert all(name and not name.startswith((".", " ")) and len(name.encode()) <= 100 for name in names)
    assert names[-1] == "ordinary" and names[2] == "a_" and names[3] == "a_-3"
    listed = sorted(path.name for path in folder.iterdir() if path.is_dir())
    assert listed == sorted(names)  # every class has its own folder, inside the export
    assert all(len(list((folder / name).glob("*.png"))) == 2 for name in names)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert {row["class_name"] for row in rows} == set(AWKWARD)  # the original names are kept
    assert sorted(path.name for path in tmp_path.iterdir()) == ["images"]  # nothing written beside it


def test_folder_names_that_are_not_utf8_become_readable_text():
    name = os.fsdecode(b"caf\xe9")  # Latin-1 bytes, as a folder from an older system has them
    assert readable_names([name, "plain"]) == ("caf\\xe9", "plain")
    assert readable_names([name])[0].encode("utf-8")  # valid UTF-8: JSON, HTML and fonts take it


def test_only_scdds_own_leftovers_are_deleted(tmp_path):
    (tmp_path / "stage").mkdir()
    leftovers = [tmp_path / ".manifest.json.k2j4h5g1.tmp", tmp_path / "stage" / ".classifier.safetensors.a_b9c0de.tmp"]
    for path in leftovers:
        path.write_bytes(b"partial")
    (tmp_path / ".images.q1w2e3r4.tmp").mkdir()  # a staged PNG folder
    kept = [tmp_path / "notes.tmp", tmp_path / ".notes.tmp", tmp_path / "stage" / ".x.TOOLONG123.tmp", tmp_path / "mine.txt"]
    for path in kept:
        path.write_text("the user's")
    removed = remove_temporaries(tmp_path)
    assert sorted(removed) == sorted([*leftovers, tmp_path / ".images.q1w2e3r4.tmp"])
    assert all(path.exists() for path in kept) and not any(path.exists() for path in leftovers)


def test_a_folder_holding_only_scdds_leftovers_holds_no_files(tmp_path):
    (tmp_path / ".backbone.safetensors.abcd1234.tmp").write_bytes(b"partial")
    (tmp_path / ".scdd.lock").write_text("{}")
    assert not holds_files(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    assert holds_files(tmp_path)
