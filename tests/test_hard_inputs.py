"""Hard inputs: each gives one line naming the problem and a non-zero exit, never a traceback or a
half-written artifact. README's "Hard inputs" table is rendered from CASES (hard_inputs.py) and checked here."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from hard_inputs import CASES, table

from scdd.cli import cli

ROOT = Path(__file__).resolve().parents[1]


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
