"""The Makefile's promises: `make demo` installs only what running jsflow needs (fast on a
fresh machine), `make test` adds the test and docs extras and builds the docs site strictly,
`make docs` builds it. Checked with `make -n` (prints the commands, runs none)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _plan(target: str, tmp_path: Path) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"  # an empty place: make plans the whole set-up
    proc = subprocess.run(
        [make, "-n", target, f"VENV={venv}"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo_installs_only_the_runtime(tmp_path: Path) -> None:
    plan = _plan("demo", tmp_path)
    assert "install" in plan and "-e ." in plan
    assert "[test]" not in plan and "[docs]" not in plan
    assert "samples/demo.py" in plan


def test_test_installs_the_extras_and_builds_the_docs(tmp_path: Path) -> None:
    plan = _plan("test", tmp_path)
    assert "-e '.[test]'" in plan
    assert "mkdocs build --strict" in plan
    assert "pytest" in plan


def test_docs_installs_the_docs_extra_and_builds_strict(tmp_path: Path) -> None:
    plan = _plan("docs", tmp_path)
    assert "-e '.[docs]'" in plan and "[test]" not in plan
    assert "mkdocs build --strict" in plan
