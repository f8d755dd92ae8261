"""The example plugin package (plugins/examples/scdd-simclr) installs with pip and works through the CLI.

pip installs it with ``--target`` into a folder of its own, which the CLI subprocesses get on their
``PYTHONPATH``: entry points are found through ``sys.path`` exactly as in site-packages, while this
test process, other pytest-xdist workers and the environment itself never see the package, so tests
that count plugins are unaffected and nothing is left installed if a run is interrupted.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scdd.artifacts import load_tensors

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "plugins" / "examples" / "scdd-simclr"
PLUGIN_ENV = ("SCDD_PLUGINS", "SCDD_DISABLE_PLUGINS")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A folder holding the installed example package (its code and dist-info with entry points)."""
    work = tmp_path_factory.mktemp("simclr")
    source, site = work / "source", work / "site"
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(source)]
    if importlib.util.find_spec("setuptools") is not None:
        command.insert(4, "--no-build-isolation")  # no index needed when the build backend is at hand
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (site / "scdd_simclr" / "simclr.py").is_file()
    return site


def _scdd(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in PLUGIN_ENV}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "scdd.cli", *args], capture_output=True, text=True, env=environment, timeout=600)


def test_installed_plugin_is_listed_with_its_package(plugin_site):
    result = _scdd(plugin_site, "plugins", "--kind", "pretrainer")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.strip("│ ").startswith("simclr "))
    assert "scdd-simclr" in row and "0.1.0" in row and "loaded" in row
    assert "SimCLR: NT-Xent" in result.stdout


def test_plugin_command_runs(plugin_site):
    result = _scdd(plugin_site, "simclr-info")
    assert result.returncode == 0, result.stderr
    assert "scdd-simclr 0.1.0" in result.stdout
    assert "temperature = 0.5" in result.stdout and "hidden_dim = 2048" in result.stdout


def test_plugin_can_be_disabled_or_left_out(plugin_site):
    disabled = _scdd(plugin_site, "plugins", SCDD_DISABLE_PLUGINS="simclr")
    assert disabled.returncode == 0 and "scdd-simclr" not in disabled.stdout and "moco-v3" in disabled.stdout
    restricted = _scdd(plugin_site, "simclr-info", SCDD_PLUGINS="architectures,datasets,pretrainers")
    assert restricted.returncode != 0 and "No such command 'simclr-info'" in restricted.stderr
    unknown = _scdd(plugin_site, "run", "--pretrainer", "simclr", "--out", "unused", SCDD_DISABLE_PLUGINS="simclr")
    assert unknown.returncode != 0 and "unknown pretrainer 'simclr'" in unknown.stderr


def test_run_with_plugin_pretrainer(plugin_site, tmp_path):
    """`scdd run --pretrainer simclr` end to end, tiny budgets: one squeeze epoch over a 500-image
    training split (held-out 4,500) with the strided stem, which is cheap at 28 px."""
    out = tmp_path / "run"
    settings = {
        "dataset_options.held_out_per_class": 450,
        "squeeze.architecture_options.small_input_stem": "no",
        "squeeze.pretrainer_options.epochs": 1,
        "squeeze.pretrainer_options.batch_size": 100,
        "align.aligner_options.epochs": 3,
        "recover.iterations": 10,
        "posttrain.epochs": 2,
    }
    options = [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]
    result = _scdd(plugin_site, "run", "--pretrainer", "SimCLR", "--ipc", "1", "--out", str(out), "--quiet", "--device", "cpu", *options)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["squeeze"]["pretrainer"] == "SimCLR"
    assert manifest["config"]["squeeze"]["pretrainer_options"]["temperature"] == 0.2  # the mnist5k preset's
    assert all(stage["status"] == "done" for stage in manifest["stages"].values())
    (loss,) = manifest["stages"]["squeeze"]["metrics"]["loss_per_epoch"]
    # NT-Xent over 2·100 views starts near log(2·100 - 1) = 5.29 (MoCo v3's loss is on another scale).
    assert abs(loss - math.log(199)) < 0.5
    _, metadata = load_tensors(out / "squeeze" / "backbone.safetensors", "backbone")
    assert metadata["pretrainer"] == "simclr"  # the canonical name of the plugin's component
    assert manifest["metrics"]["teacher"]["top1"] > 20.0  # chance is 10%
