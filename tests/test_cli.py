import subprocess
import sys

import pytest
from click.testing import CliRunner

from scdd.cli import cli


def _scdd(*args):
    return subprocess.run([sys.executable, "-m", "scdd.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_import_does_not_import_torch():
    code = "import sys, scdd.cli; scdd.cli.main.__module__; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--pretrainer", "moco_v4"], "unknown pretrainer 'moco_v4'. Did you mean 'moco-v3'?"),
        (["run", "--matcher", "imbalanced"], "unknown matcher 'imbalanced'"),
        (["run", "--ipc", "0"], "0 is not in the range x>=1"),
        (["run", "--data-root", "/no/such/folder"], "--data-root /no/such/folder does not exist"),
        (["run", "--set", "recover.nonsense=1"], "has no setting 'nonsense'"),
        (["run", "--device", "tpu9"], "unknown device 'tpu9'"),
    ],
)
def test_bad_input_gives_one_line_error(args, message, tmp_path):
    result = _scdd(*args, "--out", str(tmp_path / "out"))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 3  # usage line + error
    assert not (tmp_path / "out").exists()


def test_existing_run_folder_is_not_overwritten(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    result = CliRunner().invoke(cli, ["run", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code != 0 and "already holds a run" in result.output
    assert (tmp_path / "manifest.json").read_text() == "{}"


def test_plugins_command_lists_components_and_packages():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    for name in ("moco-v3", "linear-probe", "imbalanced-bn", "resnet10-slim", "mnist5k", "scdd"):
        assert name in result.output


def test_help_for_every_command():
    for command in ("run", "squeeze", "align", "recover", "relabel", "posttrain", "evaluate", "plugins"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_stage_commands_chain(tmp_path):
    """squeeze → align → recover → relabel → posttrain → evaluate through the CLI, tiny budgets."""
    tiny = ["--device", "cpu", "--quiet"]
    steps = [
        ["squeeze", "--out", tmp_path / "s", "--set", "squeeze.pretrainer_options.epochs=1"],
        ["align", tmp_path / "s/backbone.safetensors", "--out", tmp_path / "a", "--set", "align.aligner_options.epochs=2"],
        ["recover", tmp_path / "a/classifier.safetensors", "--out", tmp_path / "r", "--ipc", "1", "--set", "recover.iterations=5"],
        ["relabel", tmp_path / "a/classifier.safetensors", tmp_path / "r/distilled.safetensors", "--out", tmp_path / "l", "--epochs", "2"],
        [
            "posttrain",
            tmp_path / "r/distilled.safetensors",
            "--soft-labels",
            tmp_path / "l/soft_labels.safetensors",
            "--out",
            tmp_path / "p",
        ],
    ]
    for step in steps:
        result = CliRunner().invoke(cli, [str(part) for part in step] + tiny)
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "p/student-resnet10-slim.safetensors"), "--quiet"])
    assert result.exit_code == 0 and "top1=" in result.output


def test_corrupt_artifact_is_reported(tmp_path):
    bad = tmp_path / "backbone.safetensors"
    bad.write_bytes(b"\x00\x01 not a safetensors file")
    result = CliRunner().invoke(cli, ["align", str(bad), "--out", str(tmp_path / "a"), "--quiet"])
    assert result.exit_code != 0 and "not a readable safetensors file" in result.output
