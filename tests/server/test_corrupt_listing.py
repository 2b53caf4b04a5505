"""One damaged row never takes a listing down: it is listed with status "corrupt"
and its error, in the host, the HTTP API, the CLI and the web view (SQLite and
PostgreSQL; the memory store cannot hold a damaged row)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from _server_helpers import ADMIN, serve
from click.testing import CliRunner

from jsflow.cli import cli
from jsflow.host import InstanceStatus, WorkflowHost
from jsflow.host.store import PostgresStore, SQLiteStore, Store

NEVER = "async function main() { await waitForEvent('never'); }"
DAMAGE = [
    "UPDATE workflows SET metadata = '{oops' WHERE workflow_id = 'bad'",
    "UPDATE workflows SET status = 'exploded' WHERE workflow_id = 'bad'",
    "UPDATE workflows SET result_json = 'nope' WHERE workflow_id = 'bad'",
]


def _damaged(store: Store, sql: str) -> None:
    with store.transaction() as tx:
        tx.execute(sql)  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    make: Callable[[], str] = request.getfixturevalue("pg_schema")
    return make()


@pytest.mark.parametrize("sql", DAMAGE)
def test_a_corrupt_row_is_listed_as_corrupt(url: str, sql: str) -> None:
    with WorkflowHost(url, hook_secret="s") as host:
        host.register_script("never", NEVER)
        for wid in ("good-1", "bad", "good-2"):
            host.start("never", workflow_id=wid)
        store = (
            SQLiteStore(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else PostgresStore(url)
        )
        _damaged(store, sql)
        store.close()

        page = host.list_page()
        by_id = {i.workflow_id: i for i in page.items}
        assert set(by_id) == {"good-1", "bad", "good-2"}
        assert by_id["bad"].status == InstanceStatus.CORRUPT == "corrupt"
        assert by_id["bad"].error is not None and by_id["bad"].error["type"] == "CorruptRecordError"
        assert by_id["good-1"].status == "suspended"
        assert {i.workflow_id: i.status for i in host.list()}["bad"] == "corrupt"

        with serve(host) as served, served.client() as client:
            reply = client.get("/v1/workflows")
            assert reply.status_code == 200, reply.text
            listed = {w["workflow_id"]: w for w in reply.json()["items"]}
            assert listed["bad"]["status"] == "corrupt" and listed["good-2"]["status"] == "suspended"
            assert "CorruptRecordError" in str(listed["bad"]["error"])
        with serve(host) as served, served.client(key=None, follow_redirects=True) as browser:
            form = browser.get("/ui/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert csrf is not None
            signed_in = browser.post("/ui/login", data={"key": ADMIN, "csrf_token": csrf.group(1)})
            assert signed_in.status_code == 200, signed_in.text[:500]
            for page in ("/ui/", "/ui/scripts"):
                shown = browser.get(page)
                assert shown.status_code == 200, (page, shown.text[:500])
            listing = browser.get("/ui/").text
            assert "corrupt" in listing and "good-1" in listing and "good-2" in listing

    result = CliRunner().invoke(cli, ["list", "--json"], env={"JSFLOW_DB": url}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert '"corrupt"' in result.output and "good-1" in result.output
