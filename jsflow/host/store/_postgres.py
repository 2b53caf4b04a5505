"""PostgreSQL dialect of the SQL store: many worker processes on many machines.

Why it differs from SQLite only in hooks: the SQL is the same (``_sql``,
``_sql_session``); what changes is that writers no longer exclude each other.
Transactions run at READ COMMITTED (read-only ones at REPEATABLE READ, one
consistent snapshot, which never fails a read), and every place that was
safe only because SQLite has one writer is made safe here:

- numbering: history ``seq`` is ``MAX()+1 ... ON CONFLICT DO NOTHING``, run
  again when a concurrent appender took the number (see ``_sql_session``);
  script ``registered_seq`` (rare writes) takes a transaction advisory lock
  first, so concurrent registrations number in turn (the statement after the
  lock sees the other's committed row);
- fencing: every write of an instance is ``save_workflow`` with the version
  check, or a journal row inserted only while the version holds
  (``append_journal_checked``, whose check takes ``FOR SHARE`` on the
  instance row here: without it a takeover's version bump committing during
  the insert would go unseen at READ COMMITTED); a worker whose lease (timer
  claim or stale-run claim) was taken over finds the version moved and gets
  ``ConcurrencyError``; nothing it does after that commits;
- conflicts: deadlocks (40P01) and serialization failures (40001) become
  ``TransactionConflictError`` (a ``ConcurrencyError``, so the host's retry
  loop re-runs the advance); store-wide claims retry it themselves;
- claims: due timers and stale runs are taken with one statement each,
  ``FOR UPDATE SKIP LOCKED`` in bounded batches (``MAX_CLAIM_BATCH``), so
  workers never wait on each other's rows;
- migrations: one advisory lock, so processes starting together on an empty
  database do not race creating tables.

Indexes used by the claim queries (no ``count(*)`` on any hot path):

- due timers (``claim_due_timers``, ``next_due_time``): ``waits_due`` on
  ``waits (resume_at) WHERE resume_at IS NOT NULL``;
- stale runs (``claim_stale_runs``): ``workflows_updated`` on
  ``(status, updated_at)`` (migration 3);
- capability filters: ``requirements`` by primary key;
- inbox delivery: ``inbox_pending`` on ``(workflow_id, event_id) WHERE
  delivered_at IS NULL``.

Round trips: every statement is one, so the hot paths use fewer (see
``_pg_session``): writes whose results nobody reads (journal rows, the
waits, recoveries) are deferred and sent together with COMMIT as one simple
query (``commit``), and a one-statement read runs without BEGIN/COMMIT
(``SQLStore.read``).

Wake-ups: a writing transaction that changed keys (see ``_changes``) sends
them with ``pg_notify`` in its own COMMIT round trip, so other processes hear
of a change exactly when it commits, with no transaction or WAL flush of its
own. (NOTIFY takes a global lock at commit, which serialises notifying
commits; the change keys are few, so that costs less than a second
transaction per change.) Keys changed outside a transaction (a claim) are
posted to the in-process board and queued for a notifier thread that sends
them with one ``pg_notify`` per batch on its own autocommit transaction. A
listener thread (started by the first ``change_marker``/``wait_for_change``)
LISTENs and posts what other processes sent. Channel: ``jsflow:<schema>``, so
stores in different schemas of one database do not wake each other. If
notifications fail, waiters fall back to their timeout (polling).

psycopg is imported only here, and this module only when a
``postgresql://`` URL is opened: ``import jsflow`` never loads it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql

from ._codec import Clock, RowDecoder, normalize_time, to_ms
from ._errors import StoreClosedError, StoreError, StoreUnavailableError, TransactionConflictError
from ._pg_session import PostgresSession
from ._records import TimerClaim, WorkflowRecord
from ._sql import SQLStore
from ._sql_durable import capability_clause
from ._sql_rows import WAIT_COLUMNS, WORKFLOW_COLUMNS, wait_from_row, workflow_from_row
from ._sql_session import SQLSession

log = logging.getLogger("jsflow.store")
T = TypeVar("T")
DEFAULT_POOL_SIZE = 10
MAX_CLAIM_BATCH = 1000
CONFLICT_RETRIES = 5
PAYLOAD_LIMIT = 7000  # bytes per pg_notify payload (the server's limit is 8000)
CONFLICT_STATES = ("40001", "40P01")
#: SQLSTATE classes of transient trouble: connection exception, insufficient
#: resources, operator intervention (shutdown, cannot connect now), system error
TRANSIENT_CLASSES = frozenset({"08", "53", "57", "58"})
#: seconds to wait for a pooled connection before the retry loop takes over
POOL_TIMEOUT = 5.0
IDLE_IN_TRANSACTION_MS = 60_000
LISTEN_LOG_EVERY = 60.0  # seconds between reminders while the LISTEN connection stays down

# {caps}: the capability filter (``capability_clause``), or nothing. Ordered by
# resume_at alone, so the scan follows waits_due and stops at the batch size even
# with a large backlog of due timers (ties are broken after the claim, in Python)
CLAIM_DUE_SQL = (
    "WITH due AS MATERIALIZED (SELECT workflow_id AS wid, wait_id AS wno FROM waits "
    "WHERE resume_at IS NOT NULL AND resume_at <= ? AND (claimed_by IS NULL OR claim_expires_at <= ?){caps} "
    "ORDER BY resume_at LIMIT ? FOR UPDATE SKIP LOCKED) "
    "UPDATE waits SET claimed_by = ?, claim_expires_at = ? FROM due "
    f"WHERE waits.workflow_id = due.wid AND waits.wait_id = due.wno RETURNING workflow_id, {WAIT_COLUMNS}"
)
CLAIM_STALE_SQL = (
    "WITH stale AS MATERIALIZED (SELECT workflow_id AS sid FROM workflows "
    "WHERE status = 'running' AND updated_at < ?{caps} ORDER BY updated_at LIMIT ? "
    "FOR UPDATE SKIP LOCKED) "
    "UPDATE workflows SET updated_at = ?, version = version + 1 FROM stale "
    f"WHERE workflows.workflow_id = stale.sid RETURNING {WORKFLOW_COLUMNS}"
)
# the earliest unclaimed resume_at, and the claimed rows that could become
# claimable before it: both are index range scans over due rows only
NEXT_DUE_SQL = (
    "WITH u AS (SELECT resume_at FROM waits WHERE resume_at IS NOT NULL AND claimed_by IS NULL "
    "ORDER BY resume_at LIMIT 1) "
    "SELECT LEAST((SELECT resume_at FROM u), (SELECT MIN(GREATEST(resume_at, claim_expires_at)) "
    "FROM waits WHERE resume_at IS NOT NULL AND claimed_by IS NOT NULL "
    "AND resume_at <= COALESCE((SELECT resume_at FROM u), 9223372036854775807)))"
)


class PostgresStore(SQLStore):
    """A store in one PostgreSQL database (schema: the connection's ``search_path``)."""

    backend_name = "postgresql"
    placeholder = "%s"
    claim_lock_suffix = " FOR UPDATE SKIP LOCKED"
    row_lock_suffix = " FOR UPDATE"
    share_lock_suffix = " FOR SHARE"
    numbering_lock_sql = "SELECT pg_advisory_xact_lock(hashtextextended(?, 7))"
    migration_lock_sql = "SELECT pg_advisory_xact_lock(7428001)"
    ddl_types = {
        "id_pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "bigint": "BIGINT",
        "json_items": "jsonb_array_elements_text(w.event_names::jsonb) AS j(value)",
    }
    driver_errors = (psycopg.Error, psycopg_pool.PoolTimeout)
    supports_returning = True
    session_class = PostgresSession
    defers_writes = True

    def __init__(self, url: str, *, clock: Clock | None = None, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.url = url
        self._origin = uuid.uuid4().hex[:12]
        try:  # one direct attempt first: a wrong URL fails at once, with libpq's reason
            psycopg.connect(url, autocommit=True).close()
        except psycopg.OperationalError as exc:
            reason = f"cannot connect to PostgreSQL at {_redact(url)}: {exc}"
            raise StoreUnavailableError("postgresql", reason) from exc
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {_redact(url)}: {exc}") from exc
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "application_name": "jsflow"},
            configure=_configure,
            open=False,
            name="jsflow",
        )
        try:
            self._pool.open(wait=True, timeout=15)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {_redact(url)}: {exc}") from exc
        self._wake = _Wakeups(self, self._origin, self._pool)
        try:
            super().__init__(clock=clock)
            self.channel = f"jsflow:{self._scalar('SELECT current_schema()')}"[:63]
        except BaseException:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({_redact(self.url)!r})"

    # -- dialect hooks -------------------------------------------------------
    def checkout(self) -> Any:
        if self._closed:
            raise StoreClosedError("store is closed")
        try:
            return self._pool.getconn(timeout=min(POOL_TIMEOUT, max(self.transient_retry_seconds, 0.1)))
        except psycopg_pool.PoolClosed as exc:
            raise StoreClosedError("store is closed") from exc
        except self.driver_errors as exc:
            raise self.translate(exc) from exc

    def checkin(self, conn: Any, healthy: bool) -> None:
        if not healthy or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()  # the pool replaces a closed connection
        try:
            self._pool.putconn(conn)
        except psycopg_pool.PoolClosed:
            conn.close()

    def begin_sql(self, write: bool) -> str:
        if write:
            return "BEGIN ISOLATION LEVEL READ COMMITTED"
        return "BEGIN ISOLATION LEVEL REPEATABLE READ"

    def _translate_error(self, exc: BaseException) -> StoreError:
        state = getattr(exc, "sqlstate", None)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if state in CONFLICT_STATES:
            return TransactionConflictError(state, message)
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return StoreUnavailableError(
                "postgresql", f"no connection free within the pool timeout: {message}"
            )
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) or (
            state is not None and state[:2] in TRANSIENT_CLASSES
        ):
            # connection lost or refused, server shutting down or starting, lock or
            # statement timeout: nothing about the request itself
            return StoreUnavailableError("postgresql", f"[{state or 'connection'}] {message}")
        return StoreError(f"postgresql error [{state}]: {message}")

    def _scalar(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        with self.transaction() as tx:
            assert isinstance(tx, SQLSession)
            return tx.query(query, params)[0][0]

    def _retrying(self, op: Callable[[], T]) -> T:
        """Run a store-wide operation again when the database aborted it for a conflict."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return op()
            except TransactionConflictError:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.001 * 2**attempt)
        raise AssertionError("unreachable")

    # -- claims --------------------------------------------------------------
    def claim_due_timers(
        self,
        now: datetime,
        limit: int,
        worker_id: str,
        lease_seconds: float,
        capabilities: Collection[str] | None = None,
    ) -> list[TimerClaim]:
        now_ms = to_ms(now)
        lease_end = normalize_time(now + timedelta(seconds=lease_seconds))
        batch = min(max(int(limit), 0), MAX_CLAIM_BATCH)
        if batch == 0:
            return self._single(lambda _: [])  # still refuses a closed store

        caps, names = capability_clause("waits", capabilities)
        query = CLAIM_DUE_SQL.replace("{caps}", caps)

        params = (now_ms, now_ms, *names, batch, worker_id, to_ms(lease_end))

        def claim() -> list[TimerClaim]:  # one statement: autocommit, one round trip
            rows = self._single(lambda s: s.query(query, params))
            claims = [TimerClaim(r[0], wait_from_row(r[0], r[1:]), worker_id, lease_end) for r in rows]
            claims.sort(key=lambda c: (c.wait.resume_at, c.workflow_id, c.wait.wait_id))
            return claims

        return self._retrying(claim)

    def claim_stale_runs(
        self, updated_before: datetime, limit: int, capabilities: Collection[str] | None = None
    ) -> list[WorkflowRecord]:
        batch = min(max(int(limit), 0), MAX_CLAIM_BATCH)
        caps, names = capability_clause("workflows", capabilities)
        query = CLAIM_STALE_SQL.replace("{caps}", caps)

        def claim() -> list[WorkflowRecord]:  # one statement: autocommit, one round trip
            params = (to_ms(updated_before), *names, batch, to_ms(self.clock()))
            rows = self._single(lambda s: s.query(query, params))
            return sorted((workflow_from_row(r) for r in rows), key=lambda r: (r.updated_at, r.workflow_id))

        return self._retrying(claim) if batch else []

    def complete_claim(self, workflow_id: str, wait_id: int, worker_id: str) -> bool:
        complete = super().complete_claim
        return self._retrying(lambda: complete(workflow_id, wait_id, worker_id))

    def next_due_time(self) -> datetime | None:
        value = self._single(lambda s: s.query(NEXT_DUE_SQL)[0][0])
        return None if value is None else RowDecoder("waits", "next_due").time("resume_at", value)

    # -- commits -------------------------------------------------------------
    def commit(self, conn: Any, session: SQLSession) -> None:
        """The deferred writes, the change notification and COMMIT in one simple
        query: one round trip. Parameters are bound client-side (libpq's
        escaping) because only the simple protocol takes several statements.
        A failing statement skips the rest, COMMIT included: the transaction
        is then rolled back, as when a statement fails inside it."""
        parts = []
        if session.deferred:
            binder = psycopg.ClientCursor(conn)
            parts = [binder.mogrify(self.q(sql), params) for sql, params in session.deferred]
            session.deferred = []
        if session.changed:
            # NOTIFY inside the transaction: delivered exactly at commit, with no
            # transaction (and WAL flush) of its own and no notifier thread hop
            parts.append(self._wake.notify_sql(sorted(session.changed), conn))
            session.published = True
        if not parts:
            self.run_sql(conn, "COMMIT")
            return
        parts.append("COMMIT")
        self.run_sql(conn, ";\n".join(parts))

    def announce(self, session: SQLSession) -> None:
        if session.published:
            self.changes.post(session.changed)  # other processes heard it at commit
        else:
            super().announce(session)

    # -- wake-ups ------------------------------------------------------------
    def notify(self, *keys: str) -> None:
        super().notify(*keys)
        if keys:
            self._wake.send(keys)

    def change_marker(self) -> int:
        self._wake.listen()
        return super().change_marker()

    def wait_for_change(self, timeout: float, *keys: str, since: int | None = None) -> bool:
        self._wake.listen()
        return super().wait_for_change(timeout, *keys, since=since)

    def close(self) -> None:
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
        self._wake.stop()
        self._pool.close()


class _Wakeups:
    """The notifier and listener threads of one store (see the module doc)."""

    def __init__(self, store: PostgresStore, origin: str, pool: psycopg_pool.ConnectionPool) -> None:
        self.store = store
        self.origin = origin  # marks our own notifications, which the listener ignores
        self.pool = pool
        self._cond = threading.Condition()
        self._outbox: set[str] = set()
        self._sender: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._stopped = False

    # -- sending -------------------------------------------------------------
    def send(self, keys: tuple[str, ...]) -> None:
        with self._cond:
            if self._stopped:
                return
            self._outbox.update(keys)
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_loop, name="jsflow-notify", daemon=True)
                self._sender.start()
            self._cond.notify_all()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._outbox and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                keys, self._outbox = self._outbox, set()
            try:
                self._publish(sorted(keys))
            except Exception:  # waiters fall back to polling
                log.warning("PostgreSQL NOTIFY failed; workers fall back to polling", exc_info=True)
                time.sleep(0.1)

    def _payloads(self, keys: list[str]) -> list[str]:
        payloads: list[str] = []
        current: list[str] = [self.origin]
        size = len(current[0])
        for key in keys:
            if size + len(key) + 1 > PAYLOAD_LIMIT and len(current) > 1:
                payloads.append("\n".join(current))
                current, size = [self.origin], len(self.origin)
            current.append(key)
            size += len(key.encode("utf-8")) + 1
        payloads.append("\n".join(current))
        return payloads

    def notify_sql(self, keys: list[str], conn: psycopg.Connection[Any]) -> str:
        """``SELECT pg_notify(...)`` for ``keys``, with the values inlined."""
        channel = sql.Literal(self.store.channel).as_string(conn)
        calls = (f"pg_notify({channel}, {sql.Literal(p).as_string(conn)})" for p in self._payloads(keys))
        return f"SELECT {', '.join(calls)}"

    def _publish(self, keys: list[str]) -> None:
        payloads = self._payloads(keys)
        calls = ", ".join("pg_notify(%s, %s)" for _ in payloads)
        params = [part for payload in payloads for part in (self.store.channel, payload)]
        with self.pool.connection() as conn:  # autocommit: one statement, one round trip
            conn.execute(f"SELECT {calls}", params)

    # -- listening -----------------------------------------------------------
    def listen(self) -> None:
        """Start the listener once; wait (briefly) until LISTEN is in effect."""
        if self._listening.is_set():
            return
        with self._cond:
            if self._listener is None and not self._stopped:
                self._listener = threading.Thread(target=self._listen_loop, name="jsflow-listen", daemon=True)
                self._listener.start()
        self._listening.wait(5)

    def _listen_loop(self) -> None:
        # During an outage the loop retries with a growing pause (0.5 s up to
        # 5 s) and logs the loss once, then a reminder every LISTEN_LOG_EVERY
        # seconds, not a traceback per attempt; the reconnection is logged too.
        failures, last_log, pause = 0, 0.0, 0.5
        while not self._stopped:
            try:
                url = self.store.url
                with psycopg.connect(url, autocommit=True, application_name="jsflow-listen") as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.store.channel)))
                    if self._listening.is_set():
                        self.store.changes.post(())  # reconnected: changes may have been missed
                    if failures:
                        log.info("PostgreSQL LISTEN connection back after %d failed attempts", failures)
                    failures, pause = 0, 0.5
                    self._listening.set()
                    while not self._stopped:
                        for note in conn.notifies(timeout=0.25):
                            self._heard(note.payload)
            except psycopg.Error as exc:
                if self._stopped:
                    return
                failures += 1
                now = time.monotonic()
                if failures == 1:
                    log.warning("PostgreSQL LISTEN connection lost; reconnecting", exc_info=True)
                    last_log = now
                elif now - last_log >= LISTEN_LOG_EVERY:
                    log.warning("PostgreSQL LISTEN still reconnecting (%d attempts): %s", failures, exc)
                    last_log = now
                self._listening.set()  # do not make waiters wait for us: they poll meanwhile
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _heard(self, payload: str) -> None:
        origin, _, rest = payload.partition("\n")
        if origin != self.origin and rest:
            self.store.changes.post(rest.split("\n"))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in (self._sender, self._listener):
            if thread is not None:
                thread.join(timeout=2)


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Per pooled connection: a transaction left open by a stopped or hung process
    (SIGSTOP, a debugger) is ended by the server, releasing its row locks, instead
    of blocking the other workers for as long as the process stays stopped. The
    store's own transactions never idle (no work runs inside them)."""
    conn.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"
