"""Paged reads: ``list_page`` (newest first, keyset cursors, wait-kind filters,
id search), ``history_page`` and ``count_by_status``, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from _host_helpers import FakeClock, open_host, sqlite_url

from jsflow.host import InstancePage, InvalidCursorError, WorkflowHost

SCRIPTS = {
    "sleeper": "async function main() { await sleep('1d'); }",
    "waiter": "async function main() { return await waitForEvent('go'); }",
    "hooked": "async function main() { const h = await createHook(); return await h.wait(); }",
    "approver": "async function main() { return await approve(1); }",
    "plain": "async function main() { return await manual(); }",
    "done": "function main() { return 1; }",
}


def _host(tmp_path: Path, clock: FakeClock) -> WorkflowHost:
    host = open_host(sqlite_url(tmp_path / "q.db"), clock)
    host.register_suspend_function("approve", before_suspend=lambda token, expires_at, args: None)
    host.engine.register_suspend_function("manual")
    for name, source in SCRIPTS.items():
        host.register_script(name, source)
    return host


def _ids(page: InstancePage) -> list[str]:
    return [i.workflow_id for i in page.items]


def test_list_page_filters_and_waiting_on(tmp_path: Path) -> None:
    clock = FakeClock()
    with _host(tmp_path, clock) as host:
        for name in SCRIPTS:
            host.start(name, workflow_id=f"id-{name}")
            clock.advance(seconds=1)
        assert _ids(host.list_page()) == [f"id-{n}" for n in reversed(SCRIPTS)]
        assert _ids(host.list_page(waiting_on="timer")) == ["id-sleeper"]
        assert _ids(host.list_page(waiting_on="event")) == ["id-waiter"]
        assert _ids(host.list_page(waiting_on="token")) == ["id-approver", "id-hooked"]
        assert _ids(host.list_page(waiting_on="suspend")) == ["id-plain"]
        assert _ids(host.list_page(waiting_on=["timer", "event"])) == ["id-waiter", "id-sleeper"]
        assert _ids(host.list_page(status="completed")) == ["id-done"]
        assert _ids(host.list_page(script="waiter", status=["suspended"])) == ["id-waiter"]
        assert _ids(host.list_page(search="ID-S")) == ["id-sleeper"]
        assert host.count_by_status()["suspended"] == 5
        assert host.count_by_status()["completed"] == 1
        assert host.count_by_status()["faulted"] == 0
        with pytest.raises(ValueError, match="waiting_on"):
            host.list_page(waiting_on="nap")
        with pytest.raises(ValueError, match="status"):
            host.list_page(status="sleeping")
        with pytest.raises(ValueError, match="limit"):
            host.list_page(limit=0)


def test_list_page_cursor_walks_every_instance_once(tmp_path: Path) -> None:
    clock = FakeClock()
    with _host(tmp_path, clock) as host:
        for i in range(25):
            host.start("done", workflow_id=f"w{i:02}")
            if i % 3 == 0:  # several instances share a created_at: the id breaks ties
                clock.advance(seconds=1)
        seen: list[str] = []
        cursor = None
        while True:
            page = host.list_page(limit=4, cursor=cursor)
            seen += _ids(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [f"w{i:02}" for i in reversed(range(25))]
        # a page boundary stays put while newer instances are created
        first = host.list_page(limit=5)
        host.start("done", workflow_id="zz-new")
        assert _ids(host.list_page(limit=5, cursor=first.next_cursor)) == ["w19", "w18", "w17", "w16", "w15"]
        for bad in ("garbage!", "eyJrIjoiaCJ9", ""):
            with pytest.raises(InvalidCursorError):
                host.list_page(cursor=bad)


def _all_pages(host: WorkflowHost, workflow_id: str, limit: int) -> list:
    items, cursor = [], None
    while True:
        page = host.history_page(workflow_id, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 1000])
def test_history_pages_equal_the_full_timeline(tmp_path: Path, limit: int) -> None:
    """Lifecycle events and journal entries interleave the same way paged or not:
    events, timers, buffered events, a createHook (its token never shown), a retry."""
    clock = FakeClock()
    source = """
    async function main() {
      const a = await waitForEvent('go');
      await sleep('1m');
      const h = await createHook();
      const b = await h.wait();
      const c = await flaky();
      return [a, b, c, await waitForEvent('end')];
    }"""
    with _host(tmp_path, clock) as host:
        calls = {"n": 0}

        def flaky() -> int:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("once")
            return calls["n"]

        host.register_step_function("flaky", flaky)
        host.register_script("mixed", source)
        inst = host.start("mixed", workflow_id="m")
        host.send_event("m", "end", 9)  # buffered
        host.send_event("m", "go", 1)
        clock.advance(minutes=2)
        host.run_due()
        [wait] = host.get("m").waits
        assert wait.kind == "hook"
        hook_token = host.hooks.derive_token("m", str(wait.arguments[0]))
        assert host.resume_with_token(hook_token, {"ok": True}).status == "faulted"
        assert host.retry("m").status == "completed"
        full = host.history("m")
        assert len(full) > 10 and inst.workflow_id == "m"
        assert _all_pages(host, "m", limit) == full
        assert hook_token not in repr(full)


def test_history_page_of_a_long_journal(tmp_path: Path) -> None:
    source = "async function main(n) { for (let i = 0; i < n; i++) { await tick(i); } return n; }"
    with _host(tmp_path, FakeClock()) as host:
        host.register_step_function("tick", lambda i: i)
        host.register_script("long", source)
        host.start("long", 1500, workflow_id="long")
        full = host.history("long")
        assert _all_pages(host, "long", 100) == full
        page = host.history_page("long", limit=5)
        for _ in range(3):
            page = host.history_page("long", limit=5, cursor=page.next_cursor)
        assert page.items == full[15:20]


def test_history_page(tmp_path: Path) -> None:
    clock = FakeClock()
    source = "async function main() { for (let i = 0; i < 30; i++) { await tick(i); } return 1; }"
    with _host(tmp_path, clock) as host:
        host.register_step_function("tick", lambda i: i)
        host.register_script("ticker", source)
        host.start("ticker", workflow_id="t")
        host.start("done", workflow_id="other")
        full = host.history("t")
        pages, cursor = [], None
        while True:
            page = host.history_page("t", limit=7, cursor=cursor)
            pages += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == full
        second = host.history_page("t", limit=7).next_cursor
        with pytest.raises(InvalidCursorError):
            host.history_page("other", cursor=second)
        with pytest.raises(InvalidCursorError):
            host.list_page(cursor=second)


def test_history_page_of_a_corrupt_state_says_so(tmp_path: Path) -> None:
    import sqlite3

    with _host(tmp_path, FakeClock()) as host:
        host.start("waiter", workflow_id="c")
        with sqlite3.connect(tmp_path / "q.db") as conn:
            conn.execute("UPDATE workflows SET state = 'not json' WHERE workflow_id = 'c'")
        full = host.history("c")
        assert full[-1].kind == "corrupt_state"
        assert _all_pages(host, "c", 1) == full
