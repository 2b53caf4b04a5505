"""The store contract suite (see ``jsflow.testing``)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jsflow.host import hash_token, new_token
from jsflow.host.store import (
    ConcurrencyError,
    CorruptRecordError,
    InboxError,
    PendingWait,
    SchemaVersionError,
    SQLStore,
    Store,
    StoreClosedError,
    StoreError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    UnknownScriptError,
    UnknownWorkflowError,
    WorkflowPageQuery,
    WorkflowRecord,
    timers_key,
    workflow_key,
)
from jsflow.host.store.backend import schema_migrations

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SOURCE = "export async function main(x) { return x; }"


MIGRATIONS = schema_migrations()


class FakeClock:
    """A settable clock: tests move time explicitly."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


_READS = ("get_", "list_", "read_", "pending_", "count_", "page_", "recovery_", "stranded_")


class _EachOperation:
    """A store seen as one-shot operations, each in a transaction of its own."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Callable[..., Any]:
        write = not name.startswith(_READS)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._store.transaction(write=write) as tx:
                return getattr(tx, name)(*args, **kwargs)

        return call


def each(store: Store) -> Any:
    """``each(store).get_workflow(wid)``: one session operation in its own transaction."""
    return _EachOperation(store)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_record(store: Store, workflow_id: str = "wf-1", **changes: object) -> WorkflowRecord:
    script = each(store).put_script(str(changes.pop("script_name", "greet")), SOURCE)
    record = WorkflowRecord(
        workflow_id=workflow_id,
        script_name=script.name,
        script_hash=script.hash,
        state='{"version":1}',
        created_at=T0,
        updated_at=T0,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def create(store: Store, workflow_id: str = "wf-1", **changes: object) -> WorkflowRecord:
    record, created = each(store).create_workflow(new_record(store, workflow_id, **changes))
    assert created
    return record


def timer(wait_id: int, seconds: float, **changes: object) -> PendingWait:
    return replace(
        PendingWait(wait_id=wait_id, function_name="sleep", kind="sleep", resume_at=at(seconds)),
        **changes,  # type: ignore[arg-type]
    )


class StoreContract:
    """Behaviour shared by every backend. Subclasses override ``make_store`` (or
    the ``store`` fixture)."""

    def make_store(self, clock: FakeClock) -> Store:
        """A fresh, empty store that stamps records with ``clock``."""
        raise NotImplementedError("override make_store(clock) or the store fixture")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, clock: FakeClock) -> Iterator[Store]:
        store = self.make_store(clock)
        yield store
        store.close()

    # -- scripts -------------------------------------------------------------
    def test_scripts_are_content_addressed(self, store: Store, clock: FakeClock) -> None:
        first = each(store).put_script("greet", SOURCE)
        assert first.hash == hashlib.sha256(SOURCE.encode()).hexdigest()
        assert first.created_at == T0
        clock.advance(5)
        again = each(store).put_script("greet", SOURCE)
        assert again == first
        assert each(store).list_scripts() == [first]

    def test_latest_script_version(self, store: Store, clock: FakeClock) -> None:
        v1 = each(store).put_script("greet", SOURCE)
        clock.advance(1)
        v2 = each(store).put_script("greet", SOURCE + "\n// v2")
        each(store).put_script("other", SOURCE)
        assert v2.hash != v1.hash
        assert each(store).get_script("greet") == v2
        assert each(store).get_script("greet", v1.hash) == v1
        assert each(store).get_script("greet", "0" * 64) is None
        assert each(store).get_script("missing") is None
        assert each(store).list_scripts("greet") == [v1, v2]
        assert [s.name for s in each(store).list_scripts()] == ["greet", "greet", "other"]
        each(store).put_script("greet", SOURCE)  # re-registering the old source makes it latest
        assert each(store).get_script("greet") == v1

    # -- workflows -----------------------------------------------------------
    def test_create_is_idempotent_on_workflow_id(self, store: Store) -> None:
        record = new_record(store, metadata={"tenant": "a"}, result_json=None)
        stored, created = each(store).create_workflow(record)
        assert created and stored.version == 1
        assert stored == replace(record, version=1)
        other = replace(record, entry_point="other", state="{}")
        again, created = each(store).create_workflow(other)
        assert not created
        assert again == stored
        assert each(store).list_workflows() == [stored]

    def test_create_needs_a_stored_script(self, store: Store) -> None:
        record = replace(new_record(store), script_hash="f" * 64)
        with pytest.raises(UnknownScriptError) as info:
            each(store).create_workflow(record)
        assert info.value.name == "greet" and info.value.hash == "f" * 64
        assert each(store).get_workflow("wf-1") is None

    def test_record_round_trips(self, store: Store) -> None:
        record = create(
            store,
            status="faulted",
            result_json='{"a":[1,2]}',
            error_json='{"name":"E"}',
            cancel_reason="why",
            metadata={"k": "v", "ü": "ß"},
            entry_point="run",
        )
        assert each(store).get_workflow("wf-1") == record
        assert each(store).get_workflow("nope") is None

    def test_save_bumps_version_and_checks_it(self, store: Store, clock: FakeClock) -> None:
        record = create(store)
        clock.advance(10)
        saved = each(store).save_workflow(replace(record, status="suspended", state='{"s":2}'))
        assert saved.version == 2 and saved.updated_at == at(10) and saved.created_at == T0
        assert each(store).get_workflow("wf-1") == saved
        with pytest.raises(ConcurrencyError) as info:
            each(store).save_workflow(replace(record, status="completed"))  # stale: version 1
        assert (info.value.workflow_id, info.value.expected, info.value.actual) == ("wf-1", 1, 2)
        assert each(store).get_workflow("wf-1") == saved
        third = each(store).save_workflow(replace(saved, status="completed"), expected_version=2)
        assert third.version == 3

    def test_save_keeps_identity_fields(self, store: Store) -> None:
        record = create(store)
        saved = each(store).save_workflow(replace(record, script_name="x", created_at=at(99)))
        assert saved.script_name == "greet" and saved.created_at == T0
        assert each(store).get_workflow("wf-1") == saved

    def test_save_unknown_or_invalid(self, store: Store) -> None:
        record = new_record(store, "ghost", version=1)
        with pytest.raises(UnknownWorkflowError) as info:
            each(store).save_workflow(record)
        assert info.value.workflow_id == "ghost"
        created = create(store)
        with pytest.raises(ValueError):
            each(store).save_workflow(replace(created, status="exploded"))
        with pytest.raises(ValueError):
            each(store).save_workflow(replace(created, result_json="{not json"))
        with pytest.raises(UnknownScriptError):
            each(store).save_workflow(replace(created, script_hash="e" * 64))
        assert each(store).get_workflow("wf-1") == created

    def test_list_filters(self, store: Store) -> None:
        a = create(store, "a", created_at=at(1), status="running")
        b = create(store, "b", created_at=at(2), status="suspended")
        c = create(store, "c", created_at=at(3), status="completed", script_name="other")
        d = create(store, "d", created_at=at(3), status="suspended")
        assert each(store).list_workflows() == [a, b, c, d]
        assert each(store).list_workflows(status="suspended") == [b, d]
        assert each(store).list_workflows(status=["running", "completed"]) == [a, c]
        assert each(store).list_workflows(status=[]) == []
        assert each(store).list_workflows(script_name="other") == [c]
        assert each(store).list_workflows(created_after=at(2)) == [b, c, d]
        assert each(store).list_workflows(created_before=at(2)) == [a]
        assert each(store).list_workflows(created_after=at(2), created_before=at(3)) == [b]
        assert each(store).list_workflows(limit=2) == [a, b]
        assert each(store).list_workflows(limit=2, offset=2) == [c, d]
        assert each(store).list_workflows(status="suspended", script_name="greet", offset=1) == [d]

    def test_page_workflows_newest_first_with_keyset(self, store: Store) -> None:
        a = create(store, "a", created_at=at(1), status="running")
        b = create(store, "b", created_at=at(2), status="suspended")
        c = create(store, "c", created_at=at(3), status="completed", script_name="other")
        d = create(store, "d", created_at=at(3), status="suspended")
        assert each(store).page_workflows(WorkflowPageQuery()) == [d, c, b, a]
        assert each(store).page_workflows(WorkflowPageQuery(limit=2)) == [d, c]
        assert each(store).page_workflows(WorkflowPageQuery(before=(at(3), "d"))) == [c, b, a]
        assert each(store).page_workflows(WorkflowPageQuery(before=(at(3), "c"), limit=1)) == [b]
        assert each(store).page_workflows(WorkflowPageQuery(before=(at(1), "a"))) == []
        assert each(store).page_workflows(WorkflowPageQuery(statuses=("suspended",))) == [d, b]
        assert each(store).page_workflows(WorkflowPageQuery(statuses=())) == []
        assert each(store).page_workflows(WorkflowPageQuery(script_name="other")) == [c]
        assert each(store).page_workflows(WorkflowPageQuery(created_after=at(2), created_before=at(3))) == [b]

    def test_page_workflows_by_wait_kind_and_id_search(self, store: Store) -> None:
        a = create(store, "Order-1_x", created_at=at(1), status="suspended")
        b = create(store, "order-2%", created_at=at(2), status="suspended")
        create(store, "other", created_at=at(3))
        each(store).replace_waits("Order-1_x", [timer(1, 10, kind="sleep")])
        each(store).replace_waits("order-2%", [PendingWait(wait_id=1, function_name="approve", kind="hook")])
        assert each(store).page_workflows(WorkflowPageQuery(wait_kinds=("sleep", "retry"))) == [a]
        assert each(store).page_workflows(WorkflowPageQuery(wait_kinds=("hook", "sleep"))) == [b, a]
        assert each(store).page_workflows(WorkflowPageQuery(wait_kinds=())) == []
        assert each(store).page_workflows(WorkflowPageQuery(id_contains="ORDER-")) == [b, a]
        assert each(store).page_workflows(WorkflowPageQuery(id_contains="-2%")) == [b]
        assert each(store).page_workflows(WorkflowPageQuery(id_contains="1_")) == [a]
        assert each(store).page_workflows(WorkflowPageQuery(id_contains="r_")) == []

    def test_count_workflows_by_status(self, store: Store) -> None:
        assert each(store).count_workflows_by_status() == {}
        create(store, "a", status="running")
        create(store, "b", status="suspended")
        create(store, "c", status="suspended")
        assert each(store).count_workflows_by_status() == {"running": 1, "suspended": 2}

    # -- history -------------------------------------------------------------
    def test_history_is_append_only_and_ordered(self, store: Store, clock: FakeClock) -> None:
        create(store)
        first = each(store).append_history("wf-1", "started", {"args": [1, "x"]})
        clock.advance(1)
        second = each(store).append_history("wf-1", "suspended", at=at(30))
        third = each(store).append_history("wf-1", "resumed")
        assert (first.seq, second.seq, third.seq) == (1, 2, 3)
        assert (first.at, second.at, third.at) == (T0, at(30), at(1))
        assert each(store).list_history("wf-1") == [first, second, third]
        assert each(store).list_history("wf-1", after_seq=2) == [third]
        assert first.detail == {"args": [1, "x"]} and second.detail == {}
        with pytest.raises(UnknownWorkflowError):
            each(store).append_history("nope", "started")
        assert each(store).list_history("nope") == []

    def test_history_and_journal_pages(self, store: Store) -> None:
        create(store)
        events = [each(store).append_history("wf-1", f"k{i}") for i in range(5)]
        assert each(store).list_history_page("wf-1", limit=2) == events[:2]
        assert each(store).list_history_page("wf-1", after_seq=2, limit=2) == events[2:4]
        assert each(store).list_history_page("wf-1", after_seq=4, limit=2) == events[4:]
        assert each(store).list_history_page("wf-1", after_seq=5) == []
        assert each(store).list_history_page("nope") == []
        with store.transaction() as tx:
            for seq in range(5):
                tx.append_journal("wf-1", seq, f'{{"n": {seq}}}')
        assert each(store).read_journal_page("wf-1", 0, 2) == [(0, '{"n": 0}'), (1, '{"n": 1}')]
        assert each(store).read_journal_page("wf-1", 3, 10) == [(3, '{"n": 3}'), (4, '{"n": 4}')]
        assert each(store).read_journal_page("wf-1", 5, 10) == []
        assert each(store).read_journal_page("nope", 0, 10) == []

    # -- waits and timers ----------------------------------------------------
    def test_replace_waits(self, store: Store) -> None:
        create(store)
        event_wait = PendingWait(
            wait_id=2,
            function_name="waitForEvent",
            kind="event",
            resume_at=at(60),
            event_names=("approve", "reject"),
            arguments_json='["approve"]',
        )
        retry = timer(3, 5, function_name="charge", kind="retry", is_retry=True)
        hook = PendingWait(wait_id=4, function_name="approval", kind="hook", token_hash=hash_token("t"))
        each(store).replace_waits("wf-1", [retry, event_wait, hook])
        assert each(store).list_waits("wf-1") == [event_wait, retry, hook]
        each(store).replace_waits("wf-1", [timer(5, 10)])
        assert each(store).list_waits("wf-1") == [timer(5, 10)]
        each(store).replace_waits("wf-1", [])
        assert each(store).list_waits("wf-1") == []
        with pytest.raises(UnknownWorkflowError):
            each(store).replace_waits("nope", [timer(1, 1)])
        with pytest.raises(ValueError):
            each(store).replace_waits("wf-1", [timer(1, 1), timer(1, 2)])

    def test_claim_due_timers_once(self, store: Store) -> None:
        create(store, "a")
        create(store, "b")
        each(store).replace_waits("a", [timer(1, 10), timer(2, 30), PendingWait(3, "approval")])
        each(store).replace_waits("b", [timer(1, 20)])
        assert store.next_due_time() == at(10)
        assert store.claim_due_timers(at(5), 10, "w1", 60) == []
        claims = store.claim_due_timers(at(25), 10, "w1", 60)
        assert [(c.workflow_id, c.wait.wait_id) for c in claims] == [("a", 1), ("b", 1)]
        assert claims[0].wait == timer(1, 10)
        assert claims[0].worker_id == "w1" and claims[0].lease_expires_at == at(85)
        assert store.claim_due_timers(at(25), 10, "w2", 60) == []
        assert store.next_due_time() == at(30)
        later = store.claim_due_timers(at(40), 1, "w2", 60)
        assert [(c.workflow_id, c.wait.wait_id) for c in later] == [("a", 2)]

    def test_claim_limit_and_order(self, store: Store) -> None:
        create(store)
        each(store).replace_waits("wf-1", [timer(i, 100 - i) for i in range(1, 8)])
        first = store.claim_due_timers(at(200), 3, "w", 60)
        assert [c.wait.wait_id for c in first] == [7, 6, 5]
        rest = store.claim_due_timers(at(200), 100, "w", 60)
        assert [c.wait.wait_id for c in rest] == [4, 3, 2, 1]
        assert store.claim_due_timers(at(200), 0, "w", 60) == []

    def test_expired_lease_is_claimable_again(self, store: Store) -> None:
        create(store)
        each(store).replace_waits("wf-1", [timer(1, 10)])
        assert len(store.claim_due_timers(at(10), 5, "crashed", 30)) == 1
        assert store.next_due_time() == at(40)
        assert store.claim_due_timers(at(39), 5, "w2", 30) == []
        reclaimed = store.claim_due_timers(at(40), 5, "w2", 30)
        assert [(c.worker_id, c.lease_expires_at) for c in reclaimed] == [("w2", at(70))]
        assert store.complete_claim("wf-1", 1, "crashed") is False

    def test_complete_claim(self, store: Store) -> None:
        create(store)
        each(store).replace_waits("wf-1", [timer(1, 10), timer(2, 10)])
        assert len(store.claim_due_timers(at(10), 5, "w", 600)) == 2
        assert store.complete_claim("wf-1", 2, "x") is False  # not the holder
        assert store.complete_claim("wf-1", 2, "w") is True
        assert [w.wait_id for w in each(store).list_waits("wf-1")] == [1]
        each(store).replace_waits("wf-1", [timer(1, 10)])  # drops the claim
        assert len(store.claim_due_timers(at(10), 5, "y", 600)) == 1
        each(store).replace_waits("wf-1", [])
        assert store.next_due_time() is None

    def test_threads_claim_each_timer_once(self, store: Store) -> None:
        for n in range(10):
            create(store, f"wf-{n}")
            each(store).replace_waits(f"wf-{n}", [timer(i, i) for i in range(20)])
        claimed: list[tuple[str, int]] = []
        lock = threading.Lock()

        def work(worker: str) -> None:
            while batch := store.claim_due_timers(at(100), 7, worker, 600):
                with lock:
                    claimed.extend((c.workflow_id, c.wait.wait_id) for c in batch)

        threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(claimed) == 200 and len(set(claimed)) == 200

    def test_claim_stale_runs_restamps_and_fences(self, store: Store, clock: FakeClock) -> None:
        old = create(store, "a", status="running")
        fresh = create(store, "b", status="running")
        create(store, "c", status="suspended")
        clock.advance(100)
        each(store).save_workflow(fresh)  # written just now: not stale
        taken = store.claim_stale_runs(at(50), 10)
        assert [(r.workflow_id, r.version, r.updated_at) for r in taken] == [("a", 2, at(100))]
        assert each(store).get_workflow("a") == taken[0]
        assert store.claim_stale_runs(at(50), 10) == []  # re-stamped: no longer stale
        with pytest.raises(ConcurrencyError):
            each(store).save_workflow(old)  # the previous owner is fenced off
        assert store.claim_stale_runs(at(200), 0) == []

    def test_append_journal_checked_is_fenced(self, store: Store) -> None:
        create(store)
        store.append_journal_checked("wf-1", 1, 0, '{"a":1}')
        assert each(store).bump_workflow("wf-1", 1) == 2  # taken over
        with pytest.raises(ConcurrencyError):
            store.append_journal_checked("wf-1", 1, 1, '{"b":2}')  # the old owner adds nothing
        with pytest.raises(UnknownWorkflowError):
            store.append_journal_checked("nope", 1, 0, "{}")
        assert each(store).read_journal("wf-1") == ['{"a":1}']

    def test_changes_wake_waiters(self, store: Store) -> None:
        mark = store.change_marker()
        record = create(store)
        each(store).enqueue_event("wf-1", "a", "1")
        assert store.wait_for_change(0, workflow_key("wf-1"), since=mark)
        assert not store.wait_for_change(0, timers_key(), since=mark)
        each(store).replace_waits("wf-1", [timer(1, 10)])  # due soon
        assert store.wait_for_change(0, timers_key(), since=mark)
        later = store.change_marker()
        each(store).replace_waits("wf-1", [timer(1, 10**6)])  # due in days: no worker needs waking
        assert not store.wait_for_change(0, timers_key(), since=later)
        saver = threading.Timer(0.05, lambda: each(store).save_workflow(replace(record, status="suspended")))
        saver.start()
        assert store.wait_for_change(10, workflow_key("wf-1"), since=later)
        saver.join()
        assert not store.wait_for_change(0.01, workflow_key("other"))

    # -- inbox ---------------------------------------------------------------
    def test_inbox_is_fifo_per_name(self, store: Store) -> None:
        create(store)
        ids = [
            each(store).enqueue_event("wf-1", name, f'{{"n":{i}}}')
            for i, name in enumerate(["a", "b", "a", "c", "a"])
        ]
        assert ids == sorted(ids) and len(set(ids)) == 5
        pending_a = each(store).pending_events("wf-1", ["a"])
        assert [e.payload_json for e in pending_a] == ['{"n":0}', '{"n":2}', '{"n":4}']
        assert [e.name for e in each(store).pending_events("wf-1")] == ["a", "b", "a", "c", "a"]
        assert [e.name for e in each(store).pending_events("wf-1", ["c", "b"])] == ["b", "c"]
        assert each(store).pending_events("wf-1", []) == []
        delivered = each(store).mark_event_delivered(pending_a[0].event_id, 7)
        assert delivered.wait_id == 7 and delivered.delivered_at == T0
        assert [e.payload_json for e in each(store).pending_events("wf-1", ["a"])] == ['{"n":2}', '{"n":4}']
        assert each(store).get_event(pending_a[0].event_id) == delivered

    def test_inbox_refusals(self, store: Store) -> None:
        with pytest.raises(UnknownWorkflowError) as info:
            each(store).enqueue_event("ghost", "a", "null")
        assert info.value.workflow_id == "ghost"
        create(store)
        with pytest.raises(ValueError):
            each(store).enqueue_event("wf-1", "a", "{not json")
        event_id = each(store).enqueue_event("wf-1", "a", "1")
        each(store).mark_event_delivered(event_id, 1)
        with pytest.raises(InboxError) as twice:
            each(store).mark_event_delivered(event_id, 2)
        assert (twice.value.event_id, twice.value.reason) == (event_id, "delivered")
        with pytest.raises(InboxError) as unknown:
            each(store).mark_event_delivered(event_id + 100, 2)
        assert unknown.value.reason == "unknown"
        assert each(store).get_event(event_id + 100) is None

    # -- tokens --------------------------------------------------------------
    def test_token_is_single_use(self, store: Store) -> None:
        create(store)
        digest = hash_token(new_token())
        put = each(store).put_token(digest, "wf-1", 3, expires_at=at(60), metadata={"args": [1]})
        assert (put.workflow_id, put.wait_id, put.kind, put.used_at) == ("wf-1", 3, "hook", None)
        assert each(store).get_token(digest) == put
        used = each(store).consume_token(digest, now=at(10))
        assert used.used_at == at(10) and used.metadata == {"args": [1]}
        with pytest.raises(TokenUsedError) as info:
            each(store).consume_token(digest, now=at(11))
        assert (info.value.token_hash, info.value.workflow_id, info.value.wait_id) == (
            digest,
            "wf-1",
            3,
        )
        assert info.value.used_at == at(10)
        assert each(store).get_token(digest) == used

    def test_token_expiry_and_unknown(self, store: Store) -> None:
        create(store)
        digest = hash_token("expiring")
        each(store).put_token(digest, "wf-1", 1, expires_at=at(60), kind="suspend")
        with pytest.raises(TokenExpiredError) as info:
            each(store).consume_token(digest, now=at(60))
        assert info.value.expires_at == at(60) and info.value.wait_id == 1
        assert each(store).get_token(digest).used_at is None  # type: ignore[union-attr]
        forever = hash_token("forever")
        each(store).put_token(forever, "wf-1", 2, expires_at=None)
        assert each(store).consume_token(forever, now=at(10**8)).used_at == at(10**8)
        with pytest.raises(TokenNotFoundError) as missing:
            each(store).consume_token(hash_token("never issued"))
        assert missing.value.token_hash == hash_token("never issued")
        assert each(store).get_token(hash_token("never issued")) is None

    def test_token_refusals(self, store: Store) -> None:
        create(store)
        with pytest.raises(ValueError):
            each(store).put_token(new_token(), "wf-1", 1, expires_at=None)  # a raw token
        with pytest.raises(UnknownWorkflowError):
            each(store).put_token(hash_token("x"), "ghost", 1, expires_at=None)
        each(store).put_token(hash_token("x"), "wf-1", 1, expires_at=None)
        with pytest.raises(StoreError):
            each(store).put_token(hash_token("x"), "wf-1", 2, expires_at=None)

    # -- transactions --------------------------------------------------------
    def test_transaction_commits_together(self, store: Store) -> None:
        record = create(store)
        event_id = each(store).enqueue_event("wf-1", "go", '"payload"')
        with store.transaction() as tx:
            saved = tx.save_workflow(replace(record, status="suspended"))
            tx.replace_waits("wf-1", [timer(1, 10)])
            tx.mark_event_delivered(event_id, 1)
            tx.append_history("wf-1", "event_received", {"event_id": event_id})
            assert tx.get_workflow("wf-1") == saved
        assert each(store).get_workflow("wf-1") == saved
        assert each(store).list_waits("wf-1") == [timer(1, 10)]
        assert each(store).pending_events("wf-1") == []
        assert [h.kind for h in each(store).list_history("wf-1")] == ["event_received"]

    def test_transaction_rolls_back_everything(self, store: Store) -> None:
        record = create(store)
        each(store).replace_waits("wf-1", [timer(9, 9)])
        event_id = each(store).enqueue_event("wf-1", "go", "1")
        digest = hash_token("tok")
        each(store).put_token(digest, "wf-1", 9, expires_at=None)
        second = new_record(store, "wf-2")
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.put_script("new", "function main() {}")
            tx.save_workflow(replace(record, status="completed", result_json="42"))
            tx.replace_waits("wf-1", [timer(1, 10)])
            tx.mark_event_delivered(event_id, 1)
            tx.append_history("wf-1", "completed")
            tx.consume_token(digest)
            tx.enqueue_event("wf-1", "late", "2")
            tx.create_workflow(second)
            raise RuntimeError("crash mid-advance")
        assert each(store).get_workflow("wf-1") == record
        assert each(store).get_workflow("wf-2") is None
        assert each(store).get_script("new") is None
        assert each(store).list_waits("wf-1") == [timer(9, 9)]
        assert [e.event_id for e in each(store).pending_events("wf-1")] == [event_id]
        assert each(store).list_history("wf-1") == []
        assert each(store).get_token(digest).used_at is None  # type: ignore[union-attr]

    def test_conflict_inside_transaction_rolls_back(self, store: Store) -> None:
        record = create(store)
        each(store).save_workflow(record)  # someone else advanced it: version 2
        with pytest.raises(ConcurrencyError), store.transaction() as tx:
            tx.append_history("wf-1", "resumed")
            tx.replace_waits("wf-1", [timer(1, 1)])
            tx.save_workflow(replace(record, status="completed"))
        assert each(store).list_history("wf-1") == [] and each(store).list_waits("wf-1") == []

    def test_transactions_do_not_nest_and_end(self, store: Store) -> None:
        with store.transaction() as tx:
            with pytest.raises(StoreError):
                each(store).get_workflow("x")
            with pytest.raises(StoreError), store.transaction():
                pass
            tx.put_script("s", "x")
        with pytest.raises(StoreClosedError):
            tx.get_script("s")
        assert each(store).get_script("s") is not None

    def test_closed_store_refuses_work(self, store: Store) -> None:
        store.close()
        store.close()
        with pytest.raises(StoreClosedError):
            each(store).get_workflow("x")
        with pytest.raises(StoreClosedError):
            store.claim_due_timers(T0, 1, "w", 1)

    # -- retention -----------------------------------------------------------
    def test_delete_workflows_only_finished_with_their_rows(self, store: Store) -> None:
        create(store, "done", status="completed")
        create(store, "failed", status="faulted")
        live = create(store, "live", status="suspended")
        for wid in ("done", "live"):
            each(store).append_history(wid, "started")
            each(store).replace_waits(wid, [timer(1, 10)])
            each(store).enqueue_event(wid, "ping", "{}")
            each(store).put_token(hash_token(f"t-{wid}"), wid, 1, expires_at=None)
            each(store).append_journal(wid, 0, "{}")
            each(store).set_requirements(wid, ["step"])
            each(store).note_recovery(wid)
            each(store).enqueue_event_once(wid, "ping", "{}", "key-1")
        deleted = each(store).delete_workflows(["live", "done", "ghost", "failed", "done"])
        assert deleted == ["done", "failed"]
        assert each(store).get_workflow("done") is None and each(store).get_workflow("failed") is None
        assert each(store).list_history("done") == [] and each(store).list_waits("done") == []
        assert (
            each(store).pending_events("done") == [] and each(store).get_token(hash_token("t-done")) is None
        )
        assert each(store).get_workflow("live") == live and len(each(store).list_history("live")) == 1
        assert len(each(store).list_waits("live")) == 1 and len(each(store).pending_events("live")) == 2
        assert each(store).get_token(hash_token("t-live")) is not None
        assert each(store).read_journal("done") == [] and each(store).get_requirements("done") == []
        assert each(store).read_journal("live") == ["{}"] and each(store).get_requirements("live") == ["step"]
        assert [c.workflow_id for c in store.claim_due_timers(at(20), 10, "w", 30)] == ["live"]
        assert each(store).delete_workflows([]) == []
        many = [create(store, f"m{i}", status="cancelled").workflow_id for i in range(450)]
        assert each(store).delete_workflows(many) == many


class SQLStoreContract(StoreContract):
    """Extra checks for SQL backends: migrations, corrupt rows. Subclasses add ``reopen``."""

    def reopen(self, store: SQLStore, **kwargs: object) -> SQLStore:
        raise NotImplementedError

    def raw_sql(self, store: SQLStore, sql: str, params: tuple[object, ...] = ()) -> None:
        with store.transaction() as tx:
            tx.execute(sql, params)  # type: ignore[attr-defined]

    def test_fresh_database_gets_every_migration(self, store: SQLStore) -> None:
        assert store.schema_version() == len(MIGRATIONS)
        with store.transaction() as tx:
            rows = tx.query("SELECT version FROM schema_version ORDER BY version")  # type: ignore[attr-defined]
        assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))

    def test_reopen_is_a_no_op(self, store: SQLStore) -> None:
        record = create(store)
        with store.transaction() as tx:
            before = tx.query("SELECT version, applied_at FROM schema_version")  # type: ignore[attr-defined]
        again = self.reopen(store)
        with again.transaction() as tx:
            after = tx.query("SELECT version, applied_at FROM schema_version")  # type: ignore[attr-defined]
        assert after == before
        assert each(again).get_workflow("wf-1") == record
        again.close()

    def test_only_missing_migrations_are_applied(self, store: SQLStore) -> None:
        store.close()
        old = self.reopen(store, fresh=True, migrations=MIGRATIONS[:1])
        assert old.schema_version() == 1
        create(old)
        upgraded = self.reopen(old)
        assert upgraded.schema_version() == len(MIGRATIONS)
        assert each(upgraded).get_workflow("wf-1") is not None
        upgraded.close()
        old.close()

    def test_newer_schema_is_refused(self, store: SQLStore) -> None:
        self.raw_sql(store, "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)")
        with pytest.raises(SchemaVersionError) as info:
            self.reopen(store)
        assert (info.value.found, info.value.supported) == (99, len(MIGRATIONS))
        assert "newer" in str(info.value)

    @pytest.mark.parametrize(
        ("sql", "read"),
        [
            ("UPDATE workflows SET metadata = '{oops'", "get"),
            ("UPDATE workflows SET status = 'exploded'", "list"),
            ("UPDATE workflows SET created_at = 'yesterday'", "get"),
            ("UPDATE workflows SET result_json = 'nope'", "get"),
            ("UPDATE waits SET event_names = '[1, 2]'", "waits"),
            ("UPDATE waits SET resume_at = 'soon'", "waits"),
            ("UPDATE history SET detail = '[]'", "history"),
            ("UPDATE inbox SET payload_json = '{'", "inbox"),
            ("UPDATE tokens SET metadata = 'x'", "token"),
        ],
    )
    def test_corrupt_rows_raise_corrupt_record_error(self, store: SQLStore, sql: str, read: str) -> None:
        create(store)
        each(store).replace_waits("wf-1", [timer(1, 1, event_names=("a",))])
        each(store).append_history("wf-1", "started")
        each(store).enqueue_event("wf-1", "a", "{}")
        each(store).put_token(hash_token("t"), "wf-1", 1, expires_at=None)
        self.raw_sql(store, sql)
        if read == "list":  # a listing shows the damaged row as "corrupt" and goes on
            for listed in (each(store).list_workflows(), each(store).page_workflows(WorkflowPageQuery())):
                assert [(r.workflow_id, r.status) for r in listed] == [("wf-1", "corrupt")]
                assert "CorruptRecordError" in (listed[0].error_json or "")
            assert each(store).count_workflows_by_status() == {"corrupt": 1}
            read = "get"
        readers = {
            "get": lambda: each(store).get_workflow("wf-1"),
            "waits": lambda: each(store).list_waits("wf-1"),
            "history": lambda: each(store).list_history("wf-1"),
            "inbox": lambda: each(store).pending_events("wf-1"),
            "token": lambda: each(store).get_token(hash_token("t")),
        }
        with pytest.raises(CorruptRecordError) as info:
            readers[read]()
        assert info.value.table in sql and info.value.reason
