"""Every code block in README.md and docs/**/*.md runs.

Conventions (keep them when editing the README or a docs page):

- ```python blocks are self-contained: each is exec'd in a fresh namespace,
  with a fresh temporary directory as the working directory. A comment on a
  ``print(...)`` line (``print(x)  # 42``) is the expected output: it must
  appear in what the block prints.
- ```sh blocks of one file run in order, as ONE bash session (``set -e``),
  against the installed ``jsflow`` binary: same temporary working directory
  (with ``samples/`` linked in) and ``JSFLOW_DB`` for all of them, so later
  blocks see what earlier ones created. Each file is its own session. A
  command expected to fail must say so in shell (``! jsflow ...``). ``$PORT``
  is a free port on 127.0.0.1 (for a block that starts a server, which that
  block stops again).
- ```js blocks are loaded by ``jsflow check`` (syntax only: they are
  fragments, so the entry point is not checked).
- ```json blocks must parse as JSON.
- A block preceded by ``<!-- readme-test: skip (why) -->`` (``docs-test:``
  works too) is not run; the reason is required (today: ``make`` targets,
  which build the venv and run this very suite, pip installs into your own
  project, and the PostgreSQL set-up, which needs root and a server).
- A ```python block preceded by ``<!-- readme-test: postgresql -->`` runs
  like the others, with ``JSFLOW_DB`` naming a fresh schema on the test
  PostgreSQL server (see tests/host/conftest.py).
- Any other fence language fails this test, so nothing slips through untested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from jsflow import WorkflowEngine

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
#: ``print(...)  # text`` in a python block: ``text`` must appear in what the block prints
PRINT_COMMENT = re.compile(r"^\s*print\(.*\)  # (.+)$", re.M)
FENCE = re.compile(
    r"(?P<marker><!-- (?:readme|docs)-test: (?:skip \((?P<why>[^)]+)\)|(?P<pg>postgresql)) -->\n)?"
    r"^(?P<indent>[ \t]*)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```",
    re.S | re.M,
)
#: what a skipped block may contain: make targets, installs into your own project, the PostgreSQL set-up
SKIPPABLE = (
    "make ",
    "apt-get install postgresql",
    "export JSFLOW_DB=postgresql://",
    "jsflow worker ",
    "pip install ",
    "python3 -m venv ",
    "python -m venv ",
    "source ",
    ". ",
    "cd ",
    "git clone ",
    "#",
)
LANGS = ("python", "python-postgresql", "sh", "js", "json")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language (``python-postgresql`` for the marked ones), body,
    skip reason, file and line."""

    lang: str
    body: str
    skip: str | None
    page: Path
    line: int

    def __str__(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(
            m["lang"] + ("-postgresql" if m["pg"] else ""),
            textwrap.dedent(m["body"]),
            m["why"],
            page,
            text[: m.start("lang")].count("\n") + 1,
        )
        for m in FENCE.finditer(text)
    ]


ALL = [b for page in PAGES for b in blocks(page)]


def _of(lang: str) -> list[Block]:
    return [b for b in ALL if b.lang == lang and not b.skip]


def test_every_block_has_a_known_language() -> None:
    for block in ALL:
        assert block.skip or block.lang in LANGS, f"{block}: {block.lang!r}"


def test_skipped_blocks_are_only_set_up_commands() -> None:
    for block in ALL:
        if block.skip:
            lines = [ln for ln in block.body.splitlines() if ln.strip()]
            assert all(ln.startswith(SKIPPABLE) for ln in lines), str(block)


def test_every_fence_is_found() -> None:
    """A fence the pattern misses (a typo in the marker, an odd indent) would go untested."""
    for page in PAGES:
        opened = sum(
            1 for ln in page.read_text(encoding="utf-8").splitlines() if ln.strip().startswith("```")
        )
        assert opened == 2 * len(blocks(page)), page


def _exec(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block.body, str(block.page), "exec"), {"__name__": "docs"})
    printed = capsys.readouterr().out
    for expected in PRINT_COMMENT.findall(block.body):
        assert expected.strip() in printed, f"{block} promises {expected!r}; printed:\n{printed}"


@pytest.mark.parametrize("block", _of("python"), ids=str)
def test_python_block(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JSFLOW_DB", raising=False)
    _exec(block, capsys)


@pytest.mark.parametrize("block", _of("python-postgresql"), ids=str)
def test_python_block_on_postgresql(
    block: Block,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JSFLOW_DB", pg_url)
    _exec(block, capsys)


@pytest.mark.parametrize("block", _of("js"), ids=str)
def test_js_block_parses(block: Block) -> None:
    first = re.search(r"function\s+(\w+)", block.body)
    result = WorkflowEngine().check(block.body, first.group(1) if first else "main")
    assert getattr(result.error, "js_name", None) != "SyntaxError", f"{block}: {result.error}"


@pytest.mark.parametrize("block", _of("json"), ids=str)
def test_json_block_parses(block: Block) -> None:
    json.loads(block.body)


def _jsflow_bin() -> Path:
    exe = Path(sys.executable).with_name("jsflow")
    if exe.exists():
        return exe.parent
    pytest.skip("the jsflow console script is not installed (pip install -e .)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SH_PAGES = [page for page in PAGES if any(b.lang == "sh" and not b.skip for b in blocks(page))]


@pytest.mark.parametrize("page", SH_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_sh_blocks_as_one_session(page: Path, tmp_path: Path) -> None:
    script = "\n".join(b.body for b in blocks(page) if b.lang == "sh" and not b.skip)
    (tmp_path / "samples").symlink_to(REPO / "samples")
    env = {k: v for k, v in os.environ.items() if k not in ("JSFLOW_APP", "JSFLOW_DEBUG")}
    env["PATH"] = f"{_jsflow_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["JSFLOW_DB"] = f"sqlite:///{tmp_path / 'docs.db'}"
    env["PORT"] = str(_free_port())  # for a block that starts a server
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.run(
        [bash, "-e", "-x", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
