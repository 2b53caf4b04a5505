"""Fixtures for CLI tests: a CliRunner bound to a temp SQLite db and a scripts dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import APPROVAL, RACE, Invoke
from click.testing import CliRunner, Result

from jsflow.cli import cli


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    d = tmp_path / "scripts"
    d.mkdir()
    (d / "approval.js").write_text(APPROVAL)
    (d / "race.js").write_text(RACE)
    return d


@pytest.fixture
def jsflow(db: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run ``jsflow ARGS`` in-process against the temp db (via $JSFLOW_DB)."""
    monkeypatch.setenv("JSFLOW_DB", f"sqlite:///{db}")
    monkeypatch.delenv("JSFLOW_APP", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, ok: bool = True) -> Result:
        result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.stderr}"
        return result

    return invoke
