"""The store contract: one test suite every store backend must pass.

Why a mixin class: a backend joins by subclassing ``StoreContract`` in a
``Test...`` class and defining a ``store`` fixture that builds a fresh, empty
store with the given ``clock`` (see test_store_backends.py). SQL backends
subclass ``SQLStoreContract`` instead and also define ``reopen`` and
``raw_sql`` (migrations and corrupt-row tests need to reach under the API).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

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
    schema_migrations,
    timers_key,
    workflow_key,
)

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


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_record(store: Store, workflow_id: str = "wf-1", **changes: object) -> WorkflowRecord:
    script = store.put_script(str(changes.pop("script_name", "greet")), SOURCE)
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
    record, created = store.create_workflow(new_record(store, workflow_id, **changes))
    assert created
    return record


def timer(wait_id: int, seconds: float, **changes: object) -> PendingWait:
    return replace(
        PendingWait(wait_id=wait_id, function_name="sleep", kind="sleep", resume_at=at(seconds)),
        **changes,  # type: ignore[arg-type]
    )


class StoreContract:
    """Behaviour shared by every backend. Subclasses provide the ``store`` fixture."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    # -- scripts -------------------------------------------------------------
    def test_scripts_are_content_addressed(self, store: Store, clock: FakeClock) -> None:
        first = store.put_script("greet", SOURCE)
        assert first.hash == hashlib.sha256(SOURCE.encode()).hexdigest()
        assert first.created_at == T0
        clock.advance(5)
        again = store.put_script("greet", SOURCE)
        assert again == first
        assert store.list_scripts() == [first]

    def test_latest_script_version(self, store: Store, clock: FakeClock) -> None:
        v1 = store.put_script("greet", SOURCE)
        clock.advance(1)
        v2 = store.put_script("greet", SOURCE + "\n// v2")
        store.put_script("other", SOURCE)
        assert v2.hash != v1.hash
        assert store.get_script("greet") == v2
        assert store.get_script("greet", v1.hash) == v1
        assert store.get_script("greet", "0" * 64) is None
        assert store.get_script("missing") is None
        assert store.list_scripts("greet") == [v1, v2]
        assert [s.name for s in store.list_scripts()] == ["greet", "greet", "other"]
        store.put_script("greet", SOURCE)  # re-registering the old source makes it latest
        assert store.get_script("greet") == v1

    # -- workflows -----------------------------------------------------------
    def test_create_is_idempotent_on_workflow_id(self, store: Store) -> None:
        record = new_record(store, metadata={"tenant": "a"}, result_json=None)
        stored, created = store.create_workflow(record)
        assert created and stored.version == 1
        assert stored == replace(record, version=1)
        other = replace(record, entry_point="other", state="{}")
        again, created = store.create_workflow(other)
        assert not created
        assert again == stored
        assert store.list_workflows() == [stored]

    def test_create_needs_a_stored_script(self, store: Store) -> None:
        record = replace(new_record(store), script_hash="f" * 64)
        with pytest.raises(UnknownScriptError) as info:
            store.create_workflow(record)
        assert info.value.name == "greet" and info.value.hash == "f" * 64
        assert store.get_workflow("wf-1") is None

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
        assert store.get_workflow("wf-1") == record
        assert store.get_workflow("nope") is None

    def test_save_bumps_version_and_checks_it(self, store: Store, clock: FakeClock) -> None:
        record = create(store)
        clock.advance(10)
        saved = store.save_workflow(replace(record, status="suspended", state='{"s":2}'))
        assert saved.version == 2 and saved.updated_at == at(10) and saved.created_at == T0
        assert store.get_workflow("wf-1") == saved
        with pytest.raises(ConcurrencyError) as info:
            store.save_workflow(replace(record, status="completed"))  # stale: version 1
        assert (info.value.workflow_id, info.value.expected, info.value.actual) == ("wf-1", 1, 2)
        assert store.get_workflow("wf-1") == saved
        third = store.save_workflow(replace(saved, status="completed"), expected_version=2)
        assert third.version == 3

    def test_save_keeps_identity_fields(self, store: Store) -> None:
        record = create(store)
        saved = store.save_workflow(replace(record, script_name="x", created_at=at(99)))
        assert saved.script_name == "greet" and saved.created_at == T0
        assert store.get_workflow("wf-1") == saved

    def test_save_unknown_or_invalid(self, store: Store) -> None:
        record = new_record(store, "ghost", version=1)
        with pytest.raises(UnknownWorkflowError) as info:
            store.save_workflow(record)
        assert info.value.workflow_id == "ghost"
        created = create(store)
        with pytest.raises(ValueError):
            store.save_workflow(replace(created, status="exploded"))
        with pytest.raises(ValueError):
            store.save_workflow(replace(created, result_json="{not json"))
        with pytest.raises(UnknownScriptError):
            store.save_workflow(replace(created, script_hash="e" * 64))
        assert store.get_workflow("wf-1") == created

    def test_list_filters(self, store: Store) -> None:
        a = create(store, "a", created_at=at(1), status="running")
        b = create(store, "b", created_at=at(2), status="suspended")
        c = create(store, "c", created_at=at(3), status="completed", script_name="other")
        d = create(store, "d", created_at=at(3), status="suspended")
        assert store.list_workflows() == [a, b, c, d]
        assert store.list_workflows(status="suspended") == [b, d]
        assert store.list_workflows(status=["running", "completed"]) == [a, c]
        assert store.list_workflows(status=[]) == []
        assert store.list_workflows(script_name="other") == [c]
        assert store.list_workflows(created_after=at(2)) == [b, c, d]
        assert store.list_workflows(created_before=at(2)) == [a]
        assert store.list_workflows(created_after=at(2), created_before=at(3)) == [b]
        assert store.list_workflows(limit=2) == [a, b]
        assert store.list_workflows(limit=2, offset=2) == [c, d]
        assert store.list_workflows(status="suspended", script_name="greet", offset=1) == [d]

    def test_page_workflows_newest_first_with_keyset(self, store: Store) -> None:
        a = create(store, "a", created_at=at(1), status="running")
        b = create(store, "b", created_at=at(2), status="suspended")
        c = create(store, "c", created_at=at(3), status="completed", script_name="other")
        d = create(store, "d", created_at=at(3), status="suspended")
        assert store.page_workflows(WorkflowPageQuery()) == [d, c, b, a]
        assert store.page_workflows(WorkflowPageQuery(limit=2)) == [d, c]
        assert store.page_workflows(WorkflowPageQuery(before=(at(3), "d"))) == [c, b, a]
        assert store.page_workflows(WorkflowPageQuery(before=(at(3), "c"), limit=1)) == [b]
        assert store.page_workflows(WorkflowPageQuery(before=(at(1), "a"))) == []
        assert store.page_workflows(WorkflowPageQuery(statuses=("suspended",))) == [d, b]
        assert store.page_workflows(WorkflowPageQuery(statuses=())) == []
        assert store.page_workflows(WorkflowPageQuery(script_name="other")) == [c]
        assert store.page_workflows(WorkflowPageQuery(created_after=at(2), created_before=at(3))) == [b]

    def test_page_workflows_by_wait_kind_and_id_search(self, store: Store) -> None:
        a = create(store, "Order-1_x", created_at=at(1), status="suspended")
        b = create(store, "order-2%", created_at=at(2), status="suspended")
        create(store, "other", created_at=at(3))
        store.replace_waits("Order-1_x", [timer(1, 10, kind="sleep")])
        store.replace_waits("order-2%", [PendingWait(wait_id=1, function_name="approve", kind="hook")])
        assert store.page_workflows(WorkflowPageQuery(wait_kinds=("sleep", "retry"))) == [a]
        assert store.page_workflows(WorkflowPageQuery(wait_kinds=("hook", "sleep"))) == [b, a]
        assert store.page_workflows(WorkflowPageQuery(wait_kinds=())) == []
        assert store.page_workflows(WorkflowPageQuery(id_contains="ORDER-")) == [b, a]
        assert store.page_workflows(WorkflowPageQuery(id_contains="-2%")) == [b]
        assert store.page_workflows(WorkflowPageQuery(id_contains="1_")) == [a]
        assert store.page_workflows(WorkflowPageQuery(id_contains="r_")) == []

    def test_count_workflows_by_status(self, store: Store) -> None:
        assert store.count_workflows_by_status() == {}
        create(store, "a", status="running")
        create(store, "b", status="suspended")
        create(store, "c", status="suspended")
        assert store.count_workflows_by_status() == {"running": 1, "suspended": 2}

    # -- history -------------------------------------------------------------
    def test_history_is_append_only_and_ordered(self, store: Store, clock: FakeClock) -> None:
        create(store)
        first = store.append_history("wf-1", "started", {"args": [1, "x"]})
        clock.advance(1)
        second = store.append_history("wf-1", "suspended", at=at(30))
        third = store.append_history("wf-1", "resumed")
        assert (first.seq, second.seq, third.seq) == (1, 2, 3)
        assert (first.at, second.at, third.at) == (T0, at(30), at(1))
        assert store.list_history("wf-1") == [first, second, third]
        assert store.list_history("wf-1", after_seq=2) == [third]
        assert first.detail == {"args": [1, "x"]} and second.detail == {}
        with pytest.raises(UnknownWorkflowError):
            store.append_history("nope", "started")
        assert store.list_history("nope") == []

    def test_history_and_journal_pages(self, store: Store) -> None:
        create(store)
        events = [store.append_history("wf-1", f"k{i}") for i in range(5)]
        assert store.list_history_page("wf-1", limit=2) == events[:2]
        assert store.list_history_page("wf-1", after_seq=2, limit=2) == events[2:4]
        assert store.list_history_page("wf-1", after_seq=4, limit=2) == events[4:]
        assert store.list_history_page("wf-1", after_seq=5) == []
        assert store.list_history_page("nope") == []
        with store.transaction() as tx:
            for seq in range(5):
                tx.append_journal("wf-1", seq, f'{{"n": {seq}}}')
        assert store.read_journal_page("wf-1", 0, 2) == [(0, '{"n": 0}'), (1, '{"n": 1}')]
        assert store.read_journal_page("wf-1", 3, 10) == [(3, '{"n": 3}'), (4, '{"n": 4}')]
        assert store.read_journal_page("wf-1", 5, 10) == []
        assert store.read_journal_page("nope", 0, 10) == []

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
        store.replace_waits("wf-1", [retry, event_wait, hook])
        assert store.list_waits("wf-1") == [event_wait, retry, hook]
        store.replace_waits("wf-1", [timer(5, 10)])
        assert store.list_waits("wf-1") == [timer(5, 10)]
        store.replace_waits("wf-1", [])
        assert store.list_waits("wf-1") == []
        with pytest.raises(UnknownWorkflowError):
            store.replace_waits("nope", [timer(1, 1)])
        with pytest.raises(ValueError):
            store.replace_waits("wf-1", [timer(1, 1), timer(1, 2)])

    def test_claim_due_timers_once(self, store: Store) -> None:
        create(store, "a")
        create(store, "b")
        store.replace_waits("a", [timer(1, 10), timer(2, 30), PendingWait(3, "approval")])
        store.replace_waits("b", [timer(1, 20)])
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
        store.replace_waits("wf-1", [timer(i, 100 - i) for i in range(1, 8)])
        first = store.claim_due_timers(at(200), 3, "w", 60)
        assert [c.wait.wait_id for c in first] == [7, 6, 5]
        rest = store.claim_due_timers(at(200), 100, "w", 60)
        assert [c.wait.wait_id for c in rest] == [4, 3, 2, 1]
        assert store.claim_due_timers(at(200), 0, "w", 60) == []

    def test_expired_lease_is_claimable_again(self, store: Store) -> None:
        create(store)
        store.replace_waits("wf-1", [timer(1, 10)])
        assert len(store.claim_due_timers(at(10), 5, "crashed", 30)) == 1
        assert store.next_due_time() == at(40)
        assert store.claim_due_timers(at(39), 5, "w2", 30) == []
        reclaimed = store.claim_due_timers(at(40), 5, "w2", 30)
        assert [(c.worker_id, c.lease_expires_at) for c in reclaimed] == [("w2", at(70))]
        assert store.release_claim("wf-1", 1, "crashed") is False
        assert store.complete_claim("wf-1", 1, "crashed") is False

    def test_release_and_complete_claim(self, store: Store) -> None:
        create(store)
        store.replace_waits("wf-1", [timer(1, 10), timer(2, 10)])
        store.claim_due_timers(at(10), 5, "w", 600)
        assert store.release_claim("wf-1", 1, "w") is True
        assert [c.wait.wait_id for c in store.claim_due_timers(at(10), 5, "x", 600)] == [1]
        assert store.complete_claim("wf-1", 2, "w") is True
        assert [w.wait_id for w in store.list_waits("wf-1")] == [1]
        store.replace_waits("wf-1", [timer(1, 10)])  # drops the claim
        assert len(store.claim_due_timers(at(10), 5, "y", 600)) == 1
        store.replace_waits("wf-1", [])
        assert store.next_due_time() is None

    def test_threads_claim_each_timer_once(self, store: Store) -> None:
        for n in range(10):
            create(store, f"wf-{n}")
            store.replace_waits(f"wf-{n}", [timer(i, i) for i in range(20)])
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
        store.save_workflow(fresh)  # written just now: not stale
        taken = store.claim_stale_runs(at(50), 10)
        assert [(r.workflow_id, r.version, r.updated_at) for r in taken] == [("a", 2, at(100))]
        assert store.get_workflow("a") == taken[0]
        assert store.claim_stale_runs(at(50), 10) == []  # re-stamped: no longer stale
        with pytest.raises(ConcurrencyError):
            store.save_workflow(old)  # the previous owner is fenced off
        assert store.claim_stale_runs(at(200), 0) == []

    def test_append_journal_checked_is_fenced(self, store: Store) -> None:
        create(store)
        store.append_journal_checked("wf-1", 1, 0, '{"a":1}')
        assert store.bump_workflow("wf-1", 1) == 2  # taken over
        with pytest.raises(ConcurrencyError):
            store.append_journal_checked("wf-1", 1, 1, '{"b":2}')  # the old owner adds nothing
        with pytest.raises(UnknownWorkflowError):
            store.append_journal_checked("nope", 1, 0, "{}")
        assert store.read_journal("wf-1") == ['{"a":1}']

    def test_changes_wake_waiters(self, store: Store) -> None:
        mark = store.change_marker()
        record = create(store)
        store.enqueue_event("wf-1", "a", "1")
        assert store.wait_for_change(0, workflow_key("wf-1"), since=mark)
        assert not store.wait_for_change(0, timers_key(), since=mark)
        store.replace_waits("wf-1", [timer(1, 10)])  # due soon
        assert store.wait_for_change(0, timers_key(), since=mark)
        later = store.change_marker()
        store.replace_waits("wf-1", [timer(1, 10**6)])  # due in days: no worker needs waking
        assert not store.wait_for_change(0, timers_key(), since=later)
        saver = threading.Timer(0.05, lambda: store.save_workflow(replace(record, status="suspended")))
        saver.start()
        assert store.wait_for_change(10, workflow_key("wf-1"), since=later)
        saver.join()
        assert not store.wait_for_change(0.01, workflow_key("other"))

    # -- inbox ---------------------------------------------------------------
    def test_inbox_is_fifo_per_name(self, store: Store) -> None:
        create(store)
        ids = [
            store.enqueue_event("wf-1", name, f'{{"n":{i}}}')
            for i, name in enumerate(["a", "b", "a", "c", "a"])
        ]
        assert ids == sorted(ids) and len(set(ids)) == 5
        pending_a = store.pending_events("wf-1", ["a"])
        assert [e.payload_json for e in pending_a] == ['{"n":0}', '{"n":2}', '{"n":4}']
        assert [e.name for e in store.pending_events("wf-1")] == ["a", "b", "a", "c", "a"]
        assert [e.name for e in store.pending_events("wf-1", ["c", "b"])] == ["b", "c"]
        assert store.pending_events("wf-1", []) == []
        delivered = store.mark_event_delivered(pending_a[0].event_id, 7)
        assert delivered.wait_id == 7 and delivered.delivered_at == T0
        assert [e.payload_json for e in store.pending_events("wf-1", ["a"])] == ['{"n":2}', '{"n":4}']
        assert store.get_event(pending_a[0].event_id) == delivered

    def test_inbox_refusals(self, store: Store) -> None:
        with pytest.raises(UnknownWorkflowError) as info:
            store.enqueue_event("ghost", "a", "null")
        assert info.value.workflow_id == "ghost"
        create(store)
        with pytest.raises(ValueError):
            store.enqueue_event("wf-1", "a", "{not json")
        event_id = store.enqueue_event("wf-1", "a", "1")
        store.mark_event_delivered(event_id, 1)
        with pytest.raises(InboxError) as twice:
            store.mark_event_delivered(event_id, 2)
        assert (twice.value.event_id, twice.value.reason) == (event_id, "delivered")
        with pytest.raises(InboxError) as unknown:
            store.mark_event_delivered(event_id + 100, 2)
        assert unknown.value.reason == "unknown"
        assert store.get_event(event_id + 100) is None

    # -- tokens --------------------------------------------------------------
    def test_token_is_single_use(self, store: Store) -> None:
        create(store)
        digest = hash_token(new_token())
        put = store.put_token(digest, "wf-1", 3, expires_at=at(60), metadata={"args": [1]})
        assert (put.workflow_id, put.wait_id, put.kind, put.used_at) == ("wf-1", 3, "hook", None)
        assert store.get_token(digest) == put
        used = store.consume_token(digest, now=at(10))
        assert used.used_at == at(10) and used.metadata == {"args": [1]}
        with pytest.raises(TokenUsedError) as info:
            store.consume_token(digest, now=at(11))
        assert (info.value.token_hash, info.value.workflow_id, info.value.wait_id) == (
            digest,
            "wf-1",
            3,
        )
        assert info.value.used_at == at(10)
        assert store.get_token(digest) == used

    def test_token_expiry_and_unknown(self, store: Store) -> None:
        create(store)
        digest = hash_token("expiring")
        store.put_token(digest, "wf-1", 1, expires_at=at(60), kind="suspend")
        with pytest.raises(TokenExpiredError) as info:
            store.consume_token(digest, now=at(60))
        assert info.value.expires_at == at(60) and info.value.wait_id == 1
        assert store.get_token(digest).used_at is None  # type: ignore[union-attr]
        forever = hash_token("forever")
        store.put_token(forever, "wf-1", 2, expires_at=None)
        assert store.consume_token(forever, now=at(10**8)).used_at == at(10**8)
        with pytest.raises(TokenNotFoundError) as missing:
            store.consume_token(hash_token("never issued"))
        assert missing.value.token_hash == hash_token("never issued")
        assert store.get_token(hash_token("never issued")) is None

    def test_token_refusals(self, store: Store) -> None:
        create(store)
        with pytest.raises(ValueError):
            store.put_token(new_token(), "wf-1", 1, expires_at=None)  # a raw token
        with pytest.raises(UnknownWorkflowError):
            store.put_token(hash_token("x"), "ghost", 1, expires_at=None)
        store.put_token(hash_token("x"), "wf-1", 1, expires_at=None)
        with pytest.raises(StoreError):
            store.put_token(hash_token("x"), "wf-1", 2, expires_at=None)

    # -- transactions --------------------------------------------------------
    def test_transaction_commits_together(self, store: Store) -> None:
        record = create(store)
        event_id = store.enqueue_event("wf-1", "go", '"payload"')
        with store.transaction() as tx:
            saved = tx.save_workflow(replace(record, status="suspended"))
            tx.replace_waits("wf-1", [timer(1, 10)])
            tx.mark_event_delivered(event_id, 1)
            tx.append_history("wf-1", "event_received", {"event_id": event_id})
            assert tx.get_workflow("wf-1") == saved
        assert store.get_workflow("wf-1") == saved
        assert store.list_waits("wf-1") == [timer(1, 10)]
        assert store.pending_events("wf-1") == []
        assert [h.kind for h in store.list_history("wf-1")] == ["event_received"]

    def test_transaction_rolls_back_everything(self, store: Store) -> None:
        record = create(store)
        store.replace_waits("wf-1", [timer(9, 9)])
        event_id = store.enqueue_event("wf-1", "go", "1")
        digest = hash_token("tok")
        store.put_token(digest, "wf-1", 9, expires_at=None)
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
        assert store.get_workflow("wf-1") == record
        assert store.get_workflow("wf-2") is None
        assert store.get_script("new") is None
        assert store.list_waits("wf-1") == [timer(9, 9)]
        assert [e.event_id for e in store.pending_events("wf-1")] == [event_id]
        assert store.list_history("wf-1") == []
        assert store.get_token(digest).used_at is None  # type: ignore[union-attr]

    def test_conflict_inside_transaction_rolls_back(self, store: Store) -> None:
        record = create(store)
        store.save_workflow(record)  # someone else advanced it: version 2
        with pytest.raises(ConcurrencyError), store.transaction() as tx:
            tx.append_history("wf-1", "resumed")
            tx.replace_waits("wf-1", [timer(1, 1)])
            tx.save_workflow(replace(record, status="completed"))
        assert store.list_history("wf-1") == [] and store.list_waits("wf-1") == []

    def test_transactions_do_not_nest_and_end(self, store: Store) -> None:
        with store.transaction() as tx:
            with pytest.raises(StoreError):
                store.get_workflow("x")
            with pytest.raises(StoreError), store.transaction():
                pass
            tx.put_script("s", "x")
        with pytest.raises(StoreClosedError):
            tx.get_script("s")
        assert store.get_script("s") is not None

    def test_closed_store_refuses_work(self, store: Store) -> None:
        store.close()
        store.close()
        with pytest.raises(StoreClosedError):
            store.get_workflow("x")
        with pytest.raises(StoreClosedError):
            store.claim_due_timers(T0, 1, "w", 1)

    # -- retention -----------------------------------------------------------
    def test_delete_workflows_only_finished_with_their_rows(self, store: Store) -> None:
        create(store, "done", status="completed")
        create(store, "failed", status="faulted")
        live = create(store, "live", status="suspended")
        for wid in ("done", "live"):
            store.append_history(wid, "started")
            store.replace_waits(wid, [timer(1, 10)])
            store.enqueue_event(wid, "ping", "{}")
            store.put_token(hash_token(f"t-{wid}"), wid, 1, expires_at=None)
            store.append_journal(wid, 0, "{}")
            store.set_requirements(wid, ["step"])
            store.note_recovery(wid)
            store.enqueue_event_once(wid, "ping", "{}", "key-1")
        deleted = store.delete_workflows(["live", "done", "ghost", "failed", "done"])
        assert deleted == ["done", "failed"]
        assert store.get_workflow("done") is None and store.get_workflow("failed") is None
        assert store.list_history("done") == [] and store.list_waits("done") == []
        assert store.pending_events("done") == [] and store.get_token(hash_token("t-done")) is None
        assert store.get_workflow("live") == live and len(store.list_history("live")) == 1
        assert len(store.list_waits("live")) == 1 and len(store.pending_events("live")) == 2
        assert store.get_token(hash_token("t-live")) is not None
        assert store.read_journal("done") == [] and store.get_requirements("done") == []
        assert store.read_journal("live") == ["{}"] and store.get_requirements("live") == ["step"]
        assert [c.workflow_id for c in store.claim_due_timers(at(20), 10, "w", 30)] == ["live"]
        assert store.delete_workflows([]) == []
        many = [create(store, f"m{i}", status="cancelled").workflow_id for i in range(450)]
        assert store.delete_workflows(many) == many


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
        assert again.get_workflow("wf-1") == record
        again.close()

    def test_only_missing_migrations_are_applied(self, store: SQLStore) -> None:
        store.close()
        old = self.reopen(store, fresh=True, migrations=MIGRATIONS[:1])
        assert old.schema_version() == 1
        create(old)
        upgraded = self.reopen(old)
        assert upgraded.schema_version() == len(MIGRATIONS)
        assert upgraded.get_workflow("wf-1") is not None
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
        store.replace_waits("wf-1", [timer(1, 1, event_names=("a",))])
        store.append_history("wf-1", "started")
        store.enqueue_event("wf-1", "a", "{}")
        store.put_token(hash_token("t"), "wf-1", 1, expires_at=None)
        self.raw_sql(store, sql)
        readers = {
            "get": lambda: store.get_workflow("wf-1"),
            "list": lambda: store.list_workflows(),
            "waits": lambda: store.list_waits("wf-1"),
            "history": lambda: store.list_history("wf-1"),
            "inbox": lambda: store.pending_events("wf-1"),
            "token": lambda: store.get_token(hash_token("t")),
        }
        with pytest.raises(CorruptRecordError) as info:
            readers[read]()
        assert info.value.table in sql and info.value.reason
