"""Artifact files: safetensors tensors with JSON metadata, written atomically (temporary file + rename).

An atomic write is durable as well: the temporary file (or every file and folder of a staged folder)
is flushed to the disk (``fsync``) before the rename, and the folder holding it after, so what a
rename published survives a power loss or kernel crash, not only a killed process.

No pickle-based format is ever written. Model artifacts (a backbone or classifier that rebuilds
through the registry) are ``scdd.models.saved``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from scdd.data.base import DatasetInfo
from scdd.errors import ArtifactError, DiskFullError, os_reason

FORMAT_VERSION = "1"
IMAGE_METADATA_FILE = "metadata.jsonl"  # Hugging Face imagefolder's per-file metadata


def sync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to the disk (``fsync``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folder(folder: Path) -> None:
    """``mkdir -p`` whose new folders' entries are flushed to the disk, outermost first."""
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for new in reversed(created):
        sync_path(new.parent)


def _sync_tree(path: Path) -> None:
    if path.is_dir():
        for inner in sorted(path.rglob("*"), reverse=True):  # files before the folders that hold them
            sync_path(inner)
    sync_path(path)


@contextlib.contextmanager
def _staged(path: Path, staging: Path, remove: Callable[[Path], Any]) -> Iterator[Path]:
    """Yield ``staging``; on success flush it, rename it onto ``path`` and flush the folder holding
    it; on error ``remove`` it (a full disk is one line)."""
    try:
        yield staging
        _sync_tree(staging)
        os.replace(staging, path)
        sync_path(path.parent)
    except OSError as error:
        raise_if_disk_full(error, path)
        raise
    finally:
        if staging.exists():
            remove(staging)


def atomic_path(path: str | Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary path beside ``path``; on success it is renamed onto ``path``, on error removed."""
    path = Path(path)
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return _staged(path, Path(tmp), Path.unlink)


def raise_if_disk_full(error: OSError, path: str | Path) -> None:
    """A full disk (or quota) while writing ``path`` becomes a one-line ``DiskFullError``."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(f"{path}: no space left on device while writing it; the partial file was removed") from None


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> Path:
    """Save tensors (moved to CPU, made contiguous) with JSON-encoded metadata values."""
    flat = {key: value.detach().cpu().contiguous() for key, value in tensors.items()}
    meta = {"scdd.format_version": FORMAT_VERSION}
    meta.update({f"scdd.{key}": json.dumps(value) for key, value in metadata.items()})
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata=meta)
        _sort_header(tmp)
    return Path(path)


def _sort_header(path: Path) -> None:
    """Rewrite a safetensors file's JSON header in place with its keys sorted. safetensors writes the
    metadata in a random order (a Rust hash map), so the same tensors and metadata would give other
    bytes, and another SHA-256, every time; sorted, equal artifacts are equal files."""
    with open(path, "r+b") as handle:
        size = int.from_bytes(handle.read(8), "little")
        text = json.dumps(json.loads(handle.read(size)), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) <= size:  # the same JSON re-ordered: the same length (kept as written if escaping made it longer)
            handle.seek(8)
            handle.write(text.ljust(size, b" "))


def read_metadata(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Decoded ``scdd.*`` metadata of an artifact, without loading its tensors; a missing, corrupt or
    wrong-kind file raises ``ArtifactError``."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw_meta = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise _unreadable(path, error) from None
    try:
        metadata = {key[5:]: json.loads(value) for key, value in raw_meta.items() if key.startswith("scdd.")}
    except json.JSONDecodeError:
        raise ArtifactError(f"{path}: metadata is not valid JSON") from None
    if kind is not None and metadata.get("kind") != kind:
        raise ArtifactError(f"{path}: expected a {kind} artifact, found {metadata.get('kind') or 'no scdd kind'}")
    return metadata


def load_tensors(path: str | Path, kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load tensors and decoded metadata; a missing, corrupt or wrong-kind file raises ``ArtifactError``."""
    metadata = read_metadata(path, kind)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise _unreadable(path, error) from None
    return tensors, metadata


def _unreadable(path: Path | str, error: BaseException) -> ArtifactError:
    """A file the OS would not let scdd read is told apart from one whose content is damaged."""
    reason = os_reason(error)
    return ArtifactError(f"{path}: {reason}" if reason else f"{path}: not a readable safetensors file ({error})")


def dataset_info_from(metadata: Mapping[str, Any], path: Path | str) -> DatasetInfo:
    try:
        raw = dict(metadata["dataset"])
        for key in ("mean", "std", "class_names"):
            raw[key] = tuple(raw[key])
        return DatasetInfo(**raw)
    except (KeyError, TypeError) as error:
        raise ArtifactError(f"{path}: dataset description missing or malformed ({error})") from None


def export_image_folder(images: torch.Tensor, labels: torch.Tensor, class_names: tuple[str, ...], folder: str | Path) -> Path:
    """Write images (float pixels in [0, 1]) as PNGs, one folder per class, with ``metadata.jsonl`` naming each
    file's class index and name (so ``datasets.load_dataset("imagefolder", data_dir=folder)`` reads the labels);
    the folder appears whole or not at all."""
    folder = Path(folder)
    make_folder(folder.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))  # scdd.out_dir knows the name
    with _staged(folder, staging, shutil.rmtree):
        pixels = (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        counters: dict[int, int] = {}
        rows = []
        folders = class_folder_names(class_names)
        for image, label in zip(pixels, labels.tolist(), strict=False):
            index = counters.get(label, 0)
            counters[label] = index + 1
            class_dir = staging / folders[label]
            class_dir.mkdir(exist_ok=True)
            name = f"{class_dir.name}/{index:05d}.png"
            array = image.permute(1, 2, 0).numpy()
            Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(staging / name)
            rows.append(json.dumps({"file_name": name, "label": label, "class_name": class_names[label]}))
        (staging / IMAGE_METADATA_FILE).write_text("\n".join(rows) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
    return folder


_FOLDER_BYTES = 100  # a class folder name's length at most, in bytes of UTF-8 (file systems allow 255)


def class_folder_names(class_names: tuple[str, ...]) -> list[str]:
    """One safe, distinct folder name per class: characters other than letters, digits, ``-``, ``_``,
    ``.`` and space become ``_``; leading dots and spaces go (no ``.``, ``..`` or hidden folder); at most
    100 bytes; a name another class already has (compared case-insensitively) gets ``-<class index>``.
    ``metadata.jsonl`` keeps every class's original name."""
    names: list[str] = []
    taken: set[str] = set()
    for index, name in enumerate(class_names):
        cleaned = "".join(ch if ch.isalnum() or ch in "-_. " else "_" for ch in name).lstrip(". ").rstrip()
        cleaned = cleaned.encode()[:_FOLDER_BYTES].decode(errors="ignore").rstrip() or "class"
        while cleaned.casefold() in taken:
            cleaned = f"{cleaned}-{index}"
        taken.add(cleaned.casefold())
        names.append(cleaned)
    return names
