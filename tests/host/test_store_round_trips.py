"""The stores' fewer-statement forms give the same answers as the plain ones.

``get_workflow_header`` (one SELECT on PostgreSQL), ``replace_waits`` (one
statement with CTEs on PostgreSQL) and ``Store.read`` running a one-statement
read without BEGIN/COMMIT are each checked against what the generic
statements store and return, on every backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Backend

from jsflow.host.store import (
    PendingWait,
    PostgresStore,
    Store,
    StoreError,
    WorkflowRecord,
    open_store,
    workflow_key,
)
from jsflow.testing import at, create, each, timer


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    target = backend("rt")
    opened = target if isinstance(target, Store) else open_store(target)
    yield opened
    if opened is not target:
        opened.close()


def event_wait(wait_id: int, *names: str) -> PendingWait:
    return PendingWait(wait_id=wait_id, function_name="waitForEvent", kind="event", event_names=names)


def test_header_is_the_row_its_waits_and_requirements(store: Store) -> None:
    create(store, "wf-1")
    assert each(store).get_workflow_header("wf-1") == (each(store).get_workflow("wf-1"), [], [])
    waits = [
        timer(1, 10, detail_json='{"where":"a.js:1"}'),
        event_wait(2, "b", "a"),
        PendingWait(3, "approve", "hook", token_hash="f" * 64, arguments_json="[1, {}]", is_retry=True),
    ]
    each(store).replace_waits("wf-1", waits)
    each(store).set_requirements("wf-1", ["step_b", "step_a"])
    record, got, requirements = each(store).get_workflow_header("wf-1")
    assert record == each(store).get_workflow("wf-1")
    assert got == each(store).list_waits("wf-1") and [w.wait_id for w in got] == [1, 2, 3]
    assert got[1].event_names == ("b", "a") and got[2].is_retry and got[0].resume_at == at(10)
    assert requirements == ["step_a", "step_b"]
    assert each(store).get_workflow_header("nope") is None


def test_replace_waits_keeps_an_id_with_new_names_and_drops_its_claim(store: Store) -> None:
    create(store, "wf-1")
    each(store).replace_waits("wf-1", [event_wait(1, "a"), event_wait(2, "b"), timer(3, -5)])
    assert [c.wait.wait_id for c in store.claim_due_timers(at(0), 10, "w1", 60)] == [3]
    each(store).enqueue_event("wf-1", "a", "1")
    each(store).enqueue_event("wf-1", "c", "2")
    with store.transaction() as tx:
        record = tx.get_workflow("wf-1")
        assert record is not None
        tx.save_workflow(replace(record, status="suspended"))
    later = datetime.now(UTC) + timedelta(hours=1)  # events are stamped by the store's (real) clock
    assert each(store).stranded_workflows(later, 10) == ["wf-1"]  # "a" is listened for

    # wait 1 now listens for "c" only, 2 is gone, 3 is kept (its claim dropped), 4 is new
    each(store).replace_waits("wf-1", [event_wait(1, "c"), timer(3, -5), event_wait(4, "d")])
    assert [(w.wait_id, w.event_names) for w in each(store).list_waits("wf-1")] == [
        (1, ("c",)),
        (3, None),
        (4, ("d",)),
    ]
    assert [c.wait.wait_id for c in store.claim_due_timers(at(0), 10, "w2", 60)] == [3]
    assert each(store).stranded_workflows(later, 10) == ["wf-1"]  # now by "c"
    each(store).replace_waits("wf-1", [event_wait(1, "x"), event_wait(4, "d")])
    assert each(store).stranded_workflows(later, 10) == []  # neither "a" nor "c" is listened for
    each(store).replace_waits("wf-1", [])
    assert each(store).list_waits("wf-1") == [] and each(store).stranded_workflows(later, 10) == []


def test_a_read_of_several_statements_or_a_write_runs_once_in_a_transaction(store: Store) -> None:
    create(store, "wf-1")
    each(store).replace_waits("wf-1", [timer(1, 10)])

    def two(tx: object) -> tuple[object, object]:
        return tx.get_workflow("wf-1"), tx.list_waits("wf-1")  # type: ignore[attr-defined]

    for _ in range(2):  # the second time the call site is known to need a transaction
        record, waits = store.read(two)
        assert record == each(store).get_workflow("wf-1") and waits == each(store).list_waits("wf-1")
    # a write inside read() is never run outside a transaction, so never twice
    assert store.read(lambda tx: tx.note_recovery("wf-1")) == 1
    assert store.read(lambda tx: tx.recovery_attempts("wf-1")) == 1
    assert store.read(lambda tx: tx.get_workflow("nope")) is None
    with store.transaction(), pytest.raises(StoreError, match="do not nest"):
        store.read(lambda t: t.get_workflow("wf-1"))


def test_requirements_of_a_new_instance_and_a_replacement(store: Store) -> None:
    many = [f"step_{i:04d}" for i in range(450)]  # more than one INSERT's worth of rows
    script = each(store).put_script("greet", "async function main() {}")
    record = WorkflowRecord("wf-1", script.name, script.hash, state="{}", created_at=at(0), updated_at=at(0))
    with store.transaction() as tx:  # created here: nothing to delete first
        assert tx.create_workflow(record)[1]
        tx.set_requirements("wf-1", many)
    assert each(store).get_requirements("wf-1") == many
    each(store).set_requirements("wf-1", ["b", "a", "a"])
    assert each(store).get_requirements("wf-1") == ["a", "b"]
    each(store).set_requirements("wf-1", [])
    assert each(store).get_requirements("wf-1") == []


def test_deferred_writes_are_read_back_in_their_transaction(store: Store) -> None:
    create(store, "wf-1")
    with store.transaction() as tx:
        tx.append_journal("wf-1", 0, '{"a":1}')
        tx.replace_waits("wf-1", [timer(1, 10)])
        tx.append_history("wf-1", "note")  # a history append does not need them sent
        assert tx.read_journal("wf-1") == ['{"a":1}']
        assert [w.wait_id for w in tx.list_waits("wf-1")] == [1]
        tx.append_journal("wf-1", 1, '{"b":2}')
        tx.clear_recoveries("wf-1")
    assert each(store).read_journal("wf-1") == ['{"a":1}', '{"b":2}']
    assert [e.kind for e in each(store).list_history("wf-1")] == ["note"]


def test_a_failing_deferred_write_rolls_the_whole_transaction_back(store: Store) -> None:
    create(store, "wf-1")
    each(store).append_journal("wf-1", 0, '{"a":1}')
    with pytest.raises((StoreError, ValueError)), store.transaction() as tx:
        tx.append_history("wf-1", "lost")
        tx.replace_waits("wf-1", [timer(1, 10)])
        tx.append_journal("wf-1", 0, '{"again":1}')  # the row exists: the commit fails
    assert each(store).read_journal("wf-1") == ['{"a":1}']
    assert each(store).list_history("wf-1") == [] and each(store).list_waits("wf-1") == []
    with store.transaction() as tx:  # the connection is usable again
        tx.append_journal("wf-1", 1, '{"b":2}')
    assert each(store).read_journal("wf-1") == ['{"a":1}', '{"b":2}']


def test_another_process_hears_a_change_when_it_commits(pg_schema: Callable[[], str]) -> None:
    url = pg_schema()
    with PostgresStore(url) as writer, PostgresStore(url) as other:
        create(writer, "wf-1")
        mark = other.change_marker()
        started = time.monotonic()
        with writer.transaction() as tx:
            tx.enqueue_event("wf-1", "go", "1")
        assert other.wait_for_change(10, workflow_key("wf-1"), since=mark)
        assert time.monotonic() - started < 5
        assert [e.name for e in each(other).pending_events("wf-1")] == ["go"]


def test_history_of_an_instance_created_in_the_transaction_is_numbered_in_order(store: Store) -> None:
    script = each(store).put_script("greet", "async function main() {}")
    record = WorkflowRecord("wf-1", script.name, script.hash, state="{}", created_at=at(0), updated_at=at(0))
    with store.transaction() as tx:
        assert tx.create_workflow(record)[1]
        assert [tx.append_history("wf-1", k).seq for k in ("started", "note")] == [1, 2]
        assert [e.kind for e in tx.list_history("wf-1")] == ["started", "note"]
        assert tx.append_history("wf-1", "third", {"n": 3}).seq == 3
    assert each(store).append_history("wf-1", "later").seq == 4
    assert [(e.seq, e.kind) for e in each(store).list_history("wf-1")] == [
        (1, "started"),
        (2, "note"),
        (3, "third"),
        (4, "later"),
    ]


NASTY = ['a"b', "c\\d", "{x,y}", "it's", "NULL", "sp ace", "é✓", "%s", "?", "$1", "a;COMMIT"]


def test_waits_and_journal_keep_any_text_exactly(store: Store) -> None:
    create(store, "wf-1")
    waits = [
        PendingWait(
            wait_id=i + 1,
            function_name=name,
            kind="event",
            event_names=(name, "plain"),
            arguments_json=json.dumps([name]),
            detail_json=json.dumps({"where": name}),
            token_hash=None,
        )
        for i, name in enumerate(NASTY)
    ]
    with store.transaction() as tx:
        tx.replace_waits("wf-1", waits)
        tx.append_journal("wf-1", 0, json.dumps({"text": NASTY}))
        tx.append_history("wf-1", "note", {"text": NASTY})
    assert each(store).list_waits("wf-1") == waits
    assert json.loads(each(store).read_journal("wf-1")[0]) == {"text": NASTY}
    assert each(store).list_history("wf-1")[0].detail == {"text": NASTY}
    head = each(store).get_workflow_header("wf-1")
    assert head is not None and head[1] == waits
