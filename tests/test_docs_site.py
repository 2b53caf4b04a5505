"""The docs site's shape: the README stays a front page that links into every page of
the site, the generated HTTP reference covers every route and status code, and the
limits the docs quote are the ones the code enforces (so neither can drift alone)."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from jsflow import MAX_WORKFLOW_ID_LENGTH, Limits
from jsflow.cli import cli
from jsflow.host import InvalidWorkflowIdError, WorkflowHost
from jsflow.server import ERROR_STATUS, ServerSettings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = REPO / "docs"
#: the pages that quote the limits
LIMIT_PAGES = [REPO / "README.md", DOCS / "workflows.md"]


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may hold ``!!python/name`` tags (emoji and the like): read them as text."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)


def _nav_pages() -> list[str]:
    config = yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)
    pages: list[str] = []

    def walk(item: object) -> None:
        if isinstance(item, str):
            pages.append(item)
        elif isinstance(item, dict):
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(config["nav"])
    return pages


def test_readme_is_a_front_page() -> None:
    assert len(README.splitlines()) <= 250


def test_readme_links_to_every_page_of_the_site() -> None:
    pages = _nav_pages()
    assert "reference/http.md" in pages and "workflows.md" in pages
    for page in pages:
        assert (DOCS / page).is_file(), page
        if page != "index.md":
            assert f"(docs/{page})" in README, f"README does not link to docs/{page}"


def test_every_docs_page_is_in_the_nav() -> None:
    pages = set(_nav_pages())
    for path in DOCS.rglob("*.md"):
        assert str(path.relative_to(DOCS)) in pages, path


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "tools" / "docs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_http_reference_lists_every_route_and_status_code() -> None:
    hooks = _hooks()
    schema = hooks.app_schema()
    text = hooks.render_http_reference(schema)
    sections = re.split(r"^### ", text, flags=re.M)
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            section = next(s for s in sections if s.startswith(f"`{method.upper()} {path}`"))
            for status in op["responses"]:
                assert re.search(rf"^\| {status} \|", section, re.M), (method, path, status)
    assert "{#schema-errorbody}" in text
    page = (DOCS / "reference" / "http.md").read_text(encoding="utf-8")
    assert hooks.MARKER in page


def _quoted(pattern: str) -> set[str]:
    """What every limit page says for ``pattern`` (one group); each page must say it."""
    found = set()
    for page in LIMIT_PAGES:
        values = re.findall(pattern, " ".join(page.read_text(encoding="utf-8").split()))
        assert values, f"{page.name} does not quote {pattern!r}"
        found.update(values)
    return found


def test_the_quoted_id_length_is_the_constant_and_enforced() -> None:
    (quoted,) = _quoted(r"[Ww]orkflow ids are [^.]*?at most ([\d,]+) characters")
    limit = int(quoted.replace(",", ""))
    assert limit == MAX_WORKFLOW_ID_LENGTH
    with WorkflowHost("memory://") as host:
        host.register_script("s", "async function main() { return 1; }")
        assert host.start("s", workflow_id="x" * limit).value == 1
        with pytest.raises(InvalidWorkflowIdError):
            host.start("s", workflow_id="x" * (limit + 1))


def test_the_quoted_payload_limit_is_the_default() -> None:
    (quoted,) = _quoted(r"`Limits\.payload` \((\d+) MiB\)")
    assert Limits().payload == int(quoted) * 2**20


def test_the_quoted_rate_limit_is_the_default() -> None:
    text = (DOCS / "operating.md").read_text(encoding="utf-8")
    assert f"{ServerSettings().rate_limit} by default" in text


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``make docs`` builds it (strict: a broken link or a bad reference fails)."""
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_cli_reference_is_the_help_of_every_command(site: Path) -> None:
    text = _text(site / "reference" / "cli" / "index.html")
    for name, command in cli.commands.items():
        section = text.split(f"jsflow {name}¶", 1)
        assert len(section) == 2, f"no section for jsflow {name}"
        body = section[1]
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in body, f"jsflow {name}: {opt} missing from the CLI reference"


def test_http_reference_page_has_every_route(site: Path) -> None:
    text = _text(site / "reference" / "http" / "index.html")
    for path, ops in _hooks().app_schema()["paths"].items():
        for method in ops:
            assert f"{method.upper()} {path}" in text
    for error, status in ERROR_STATUS.items():  # the error types table
        assert re.search(rf"^{status}\n.*\b{error.__name__}\b", text, re.M), (status, error)


def test_readme_lists_every_error_status_of_the_api() -> None:
    listed = re.search(r"with status ((?:\d{3}, )+\d{3} or \d{3})", " ".join(README.split()))
    assert listed, "README: the HTTP section lists the error statuses"
    quoted = {int(n) for n in re.findall(r"\d{3}", listed.group(1))}
    schema = _hooks().app_schema()
    errors = {int(s) for ops in schema["paths"].values() for op in ops.values() for s in op["responses"]}
    assert quoted == {s for s in errors if s >= 400}
