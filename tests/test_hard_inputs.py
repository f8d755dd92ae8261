"""Hard inputs: each gives one line naming the problem and a non-zero exit, never a traceback or a
half-written artifact, or are handled and checked. README's "Hard inputs" table is rendered from CASES
(hard_inputs.py) and MORE_CASES (hard_inputs_more.py) and checked here."""

import os
import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from hard_inputs import CASES, table
from hard_inputs_more import MORE_CASES

from scdd.cli import cli

ROOT = Path(__file__).resolve().parents[1]
ALL = CASES + MORE_CASES


def _shown(output: str, folder: Path) -> str:
    """``output`` with the test folder as DIR and a lock holder's PID, host and start time as words."""
    output = (
        output.replace(str(folder), "DIR").replace(f"pid {os.getpid()} ", "pid PID ").replace(f"host {socket.gethostname()},", "host HOST,")
    )
    return re.sub(r"since \d{4}-\d\d-\d\dT[\d:]+\+00:00\)", "since TIME)", output)


@pytest.mark.parametrize("case", ALL, ids=[case.name for case in ALL])
def test_hard_input_gives_one_named_line(case, tmp_path, monkeypatch):
    args = [str(part) for part in case.args(tmp_path, monkeypatch)]
    result = CliRunner().invoke(cli, args)
    output = _shown(result.output, tmp_path)
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
    if case.check is not None:
        case.check(tmp_path)


def test_readme_table_lists_every_hard_input():
    readme = (ROOT / "README.md").read_text()
    assert table(ALL) in readme, "README's Hard inputs table is out of date; paste:\n" + table(ALL)
