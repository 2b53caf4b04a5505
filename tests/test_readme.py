"""Every code block in README.md runs.

Conventions (keep them when editing the README):

- ```python blocks are self-contained: each is exec'd in a fresh namespace,
  with a fresh temporary directory as the working directory. A comment on a
  ``print(...)`` line (``print(x)  # 42``) is the expected output: it must
  appear in what the block prints.
- ```sh blocks run in order, as ONE bash session (``set -e``), against the
  installed ``jsflow`` binary: same temporary working directory (with
  ``samples/`` linked in) and ``JSFLOW_DB`` for all of them, so later blocks
  see what earlier ones created. A command expected to fail must say so in
  shell (``! jsflow ...``). ``$PORT`` is a free port on 127.0.0.1 (for the
  HTTP API section's server, which that block stops again).
- ```js blocks are loaded by ``jsflow check`` (syntax only: they are
  fragments, so the entry point is not checked).
- A block preceded by ``<!-- readme-test: skip (why) -->`` is not run; the
  reason is required (today: ``make demo``/``make test``, which build the venv
  and run this very suite, and the PostgreSQL set-up, which needs root and a
  server).
- A ```python block preceded by ``<!-- readme-test: postgresql -->`` runs
  like the others, with ``JSFLOW_DB`` naming a fresh schema on the test
  PostgreSQL server (see tests/host/conftest.py).
- Any other fence language fails this test, so nothing slips through untested.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jsflow import WorkflowEngine

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: ``print(...)  # text`` in a python block: ``text`` must appear in what the block prints
PRINT_COMMENT = re.compile(r"^\s*print\(.*\)  # (.+)$", re.M)
FENCE = re.compile(
    r"(?P<marker><!-- readme-test: (?:skip \((?P<why>[^)]+)\)|(?P<pg>postgresql)) -->\n)?"
    r"```(?P<lang>\w*)\n(?P<body>.*?)```",
    re.S,
)
#: what a skipped block may contain: make targets, and the PostgreSQL set-up shown to users
SKIPPABLE = ("make ", "apt-get install postgresql", "export JSFLOW_DB=postgresql://", "jsflow worker ")


def blocks() -> list[tuple[str, str, str | None, int]]:
    """(language, body, skip reason, line) of every fenced block; PostgreSQL blocks have
    language ``python-postgresql``."""
    text = README.read_text(encoding="utf-8")
    return [
        (m["lang"] + ("-postgresql" if m["pg"] else ""), m["body"], m["why"], _line(text, m.start()))
        for m in FENCE.finditer(text)
    ]


def _line(text: str, offset: int) -> int:
    return text[:offset].count("\n") + 1


def test_every_block_has_a_known_language() -> None:
    for lang, _, skip, line in blocks():
        assert skip or lang in ("python", "python-postgresql", "sh", "js"), f"README line {line}: {lang!r}"


def test_skipped_blocks_are_only_make_targets() -> None:
    for _, body, skip, line in blocks():
        if skip:
            assert all(ln.startswith(SKIPPABLE) for ln in body.splitlines() if ln.strip()), line


@pytest.mark.parametrize(
    "body",
    [b for lang, b, skip, _ in blocks() if lang == "python" and not skip],
    ids=lambda b: b.split("\n")[0],
)
def test_python_block(
    body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JSFLOW_DB", raising=False)
    exec(compile(body, str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    for expected in PRINT_COMMENT.findall(body):
        assert expected.strip() in printed, f"README promises {expected!r}; printed:\n{printed}"


@pytest.mark.parametrize("body", [b for lang, b, skip, _ in blocks() if lang == "python-postgresql"])
def test_python_block_on_postgresql(
    body: str,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JSFLOW_DB", pg_url)
    exec(compile(body, str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    for expected in PRINT_COMMENT.findall(body):
        assert expected.strip() in printed, f"README promises {expected!r}; printed:\n{printed}"


@pytest.mark.parametrize("body", [b for lang, b, skip, _ in blocks() if lang == "js" and not skip])
def test_js_block_parses(body: str) -> None:
    first = re.search(r"function\s+(\w+)", body)
    result = WorkflowEngine().check(body, first.group(1) if first else "main")
    assert getattr(result.error, "js_name", None) != "SyntaxError", str(result.error)


def _jsflow_bin() -> Path:
    exe = Path(sys.executable).with_name("jsflow")
    if exe.exists():
        return exe.parent
    pytest.skip("the jsflow console script is not installed (pip install -e .)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sh_blocks_as_one_session(tmp_path: Path) -> None:
    script = "\n".join(b for lang, b, skip, _ in blocks() if lang == "sh" and not skip)
    assert "jsflow " in script
    (tmp_path / "samples").symlink_to(REPO / "samples")
    env = {k: v for k, v in os.environ.items() if k not in ("JSFLOW_APP", "JSFLOW_DEBUG")}
    env["PATH"] = f"{_jsflow_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["JSFLOW_DB"] = f"sqlite:///{tmp_path / 'readme.db'}"
    env["PORT"] = str(_free_port())  # the HTTP API section's server
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.run(
        [bash, "-e", "-x", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
