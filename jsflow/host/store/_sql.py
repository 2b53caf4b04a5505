"""The SQL store: every query written once, for any DB-API driver.

Why one generic class: SQLite (one machine) and PostgreSQL (several
machines) must behave identically, and two copies of the SQL would drift.
Dialects subclass ``SQLStore`` and supply only hooks:

- ``_connect()``: open and configure one DB-API connection in autocommit
  mode (transactions are begun explicitly with ``begin_sql``);
- ``placeholder``: the SQL is written once with DB-API ``?`` (qmark)
  parameters; a dialect with another style gets each statement compiled once
  by ``compile_placeholders`` (a small lexer: ``?`` outside string literals,
  quoted identifiers and comments becomes the dialect's mark, and a literal
  ``%`` is escaped for format-style drivers), never a blind text replace.
  So the generic SQL must not use a bare ``?`` operator (PostgreSQL's jsonb
  ``?``: use ``jsonb_exists``) nor dollar quoting;
- ``numbering_lock_sql``: run before the script registration order's
  ``MAX()+1`` with one key parameter, so concurrent registrations number in
  turn (PostgreSQL: a transaction advisory lock; SQLite needs none: its
  writer is single). History numbering needs no lock (see ``_sql_session``);
- ``migration_lock_sql``: serialises processes migrating one database;
- ``begin_sql(write)``: e.g. ``BEGIN IMMEDIATE`` so SQLite takes the write
  lock up front (no deadlock on lock upgrade);
- ``claim_lock_suffix`` / ``row_lock_suffix`` / ``share_lock_suffix``:
  ``FOR UPDATE SKIP LOCKED`` / ``FOR UPDATE`` / ``FOR SHARE`` on PostgreSQL,
  empty on SQLite (whose write lock is global);
- ``insert_ignore_sql``: insert-or-ignore spelling;
- ``insert_returning_id``: how to learn an auto-increment id;
- ``supports_returning``: whether ``INSERT/UPDATE ... RETURNING`` works (it
  saves a read after a write; without it the store reads back);
- ``ddl_types``: type spellings for the migrations (see ``_schema``);
- ``driver_errors`` and ``_translate_error``: the one boundary where driver
  exceptions become ``StoreError`` (chained with ``from``).

Connections come from a small pool, one per transaction, so any number of
threads can use one store. Transactions do not nest on a thread.

The fenced journal insert (``append_journal_checked``, the hot path of a
step) and the dialects' one-statement claims run without BEGIN/COMMIT: in
autocommit mode one statement is its own transaction, so a journal write is
one round trip instead of three; a failed insert may issue a read that
explains the failure, which needs no atomicity with it.

Writes whose results nobody reads go through ``SQLSession.defer``: a
dialect with ``defers_writes`` sends them with the commit (``commit``), the
others at once; any later statement that might read them sends them first.

Transient failures: a connection that fails to check out or to BEGIN, and a
one-statement operation that fails on a lost connection, are retried on a
fresh connection (``Store.retrying``); a failure at COMMIT is marked
``at_commit`` and never repeated blindly.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, suppress
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ._codec import Clock, RowDecoder, normalize_time, to_ms, utc_now
from ._errors import SchemaVersionError, StoreClosedError, StoreError, StoreUnavailableError
from ._records import TimerClaim, WorkflowRecord
from ._schema import MIGRATIONS, SCHEMA_VERSION_DDL, statements
from ._sql_durable import capability_clause
from ._sql_rows import WAIT_COLUMNS, wait_from_row
from ._sql_session import NeedsTransaction, SQLSession
from .backend import Store, StoreSession

MAX_IDLE_CONNECTIONS = 8
T = TypeVar("T")


class SQLStore(Store):
    """Generic SQL store; subclasses provide the dialect hooks listed in the module doc."""

    backend_name = "sql"
    placeholder = "?"
    claim_lock_suffix = ""
    row_lock_suffix = ""
    share_lock_suffix = ""
    numbering_lock_sql = ""
    migration_lock_sql = ""
    ddl_types: dict[str, str] = {
        "id_pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "bigint": "BIGINT",
        "json_items": "json_each(w.event_names) AS j",
    }
    driver_errors: tuple[type[BaseException], ...] = ()
    supports_returning = True
    migrations: tuple[str, ...] = MIGRATIONS
    session_class: type[SQLSession] = SQLSession
    #: whether ``SQLSession.defer`` holds writes until the commit (worth it where
    #: every statement is a round trip to a server)
    defers_writes = False

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._pool_lock = threading.Lock()
        self._idle: list[Any] = []
        self.thread_state = threading.local()
        self._closed = False
        self._sql_cache: dict[str, str] = {}
        # workflow_id -> (status, script_hash) last saved here: picks the cheaper
        # save statement (see _sql_session); never trusted for correctness
        self.status_hints: dict[str, tuple[str, str]] = {}
        self._hook_secret: str | None = None
        #: call sites of ``read`` seen to need more than one statement
        self._multi_statement_reads: set[Any] = set()
        self._migrate()

    # -- dialect hooks -------------------------------------------------------
    def _connect(self) -> Any:
        """Open one configured DB-API connection in autocommit mode."""
        raise NotImplementedError

    def begin_sql(self, write: bool) -> str:
        return "BEGIN"

    def insert_ignore_sql(self, table: str, columns: tuple[str, ...], conflict: str) -> str:
        marks = ", ".join("?" for _ in columns)
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT ({conflict}) DO NOTHING"
        )

    def insert_returning_id(self, cursor: Any, sql: str, params: tuple[Any, ...], key: str) -> int:
        cursor.execute(self.q(f"{sql} RETURNING {key}"), params)
        return int(cursor.fetchone()[0])

    def _translate_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"{self.backend_name} error: {exc}")

    def initial_hook_secret(self) -> str:
        """The hook secret to keep when the store has none yet (SQLite adopts the
        side file older versions kept next to the database)."""
        return secrets.token_hex(32)

    # -- plumbing shared by every dialect ------------------------------------
    def q(self, sql: str) -> str:
        """The dialect's spelling of a query written with ``?`` placeholders."""
        if self.placeholder == "?":
            return sql
        cached = self._sql_cache.get(sql)
        if cached is None:
            cached = self._sql_cache[sql] = compile_placeholders(sql, self.placeholder)
        return cached

    def lock_numbering(self, session: SQLSession, key: str) -> None:
        """Before a ``MAX()+1`` numbering in ``session``: wait for other writers numbering ``key``."""
        if self.numbering_lock_sql:
            session.query(self.numbering_lock_sql, (key,))

    def translate(self, exc: BaseException) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        error = self._translate_error(exc)
        error.__cause__ = exc
        return error

    def checkout(self) -> Any:
        with self._pool_lock:
            if self._closed:
                raise StoreClosedError("store is closed")
            if self._idle:
                return self._idle.pop()
        try:
            return self._connect()
        except self.driver_errors as exc:
            raise self.translate(exc) from exc

    def checkin(self, conn: Any, healthy: bool) -> None:
        with self._pool_lock:
            if healthy and not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        with suppress(*self.driver_errors):
            conn.close()

    def commit(self, conn: Any, session: SQLSession) -> None:
        """Send the session's deferred writes, then COMMIT (a dialect may send
        them all at once, with the change notification: see ``_postgres``)."""
        session.flush()
        self.run_sql(conn, "COMMIT")

    def announce(self, session: SQLSession) -> None:
        """After a commit: tell waiters which keys changed."""
        self.notify(*session.changed)

    def run_sql(self, conn: Any, sql: str) -> None:
        try:
            conn.cursor().execute(sql)
        except self.driver_errors as exc:
            raise self.translate(exc) from exc

    def rollback_quietly(self, conn: Any) -> bool:
        """Roll back; False when that failed too (the connection is then discarded)."""
        try:
            conn.cursor().execute("ROLLBACK")
        except self.driver_errors:
            return False
        return True

    def transaction(self, *, write: bool = True) -> AbstractContextManager[StoreSession]:
        return _Transaction(self, write)

    def read(self, op: Callable[[StoreSession], T]) -> T:
        """A read that turns out to be one statement runs in autocommit mode: one
        round trip instead of three (BEGIN, the statement, COMMIT), and one
        statement reads one snapshot anyway. The session refuses a second
        statement (or a write) in that mode; the read then runs again from the
        start in a transaction, and its call site (the op's code) goes straight
        to a transaction from then on. Reads are repeatable, so nothing is lost."""
        code = getattr(op, "__code__", None)
        if code is None or code in self._multi_statement_reads:
            return super().read(op)
        try:
            return self._single(lambda s: s.one_statement(op))
        except NeedsTransaction:
            self._multi_statement_reads.add(code)
        return super().read(op)

    def _single(self, op: Callable[[SQLSession], T]) -> T:
        """Run ``op`` on a session in autocommit mode (see the module doc), again
        on a fresh connection when the database was unavailable."""
        if getattr(self.thread_state, "active", False):
            raise StoreError("transactions do not nest: use the open transaction's session")
        return self.retrying(lambda: self._single_once(op))

    def _single_once(self, op: Callable[[SQLSession], T]) -> T:
        conn = self.checkout()
        self.thread_state.active = True
        session = self.session_class(self, conn)
        healthy = False
        try:
            result = op(session)
            session.flush()
            healthy = True
        except NeedsTransaction:  # nothing ran but a read: the connection is fine
            healthy = True
            raise
        except Exception as exc:  # a refusal (ConcurrencyError, ...) leaves the connection usable
            healthy = not isinstance(exc.__cause__, self.driver_errors)
            raise
        finally:
            session.done = True
            self.thread_state.active = False
            self.checkin(conn, healthy)
        if session.changed:
            self.notify(*session.changed)
        return result

    # -- the fenced journal insert (autocommit: one statement, one round trip) --
    def append_journal_checked(
        self, workflow_id: str, expected_version: int, seq: int, entry_json: str
    ) -> None:
        self._single(lambda s: s.append_journal_checked(workflow_id, expected_version, seq, entry_json))

    # -- schema --------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring the schema up to date: a cheap read first, the write lock only if needed."""
        supported = len(self.migrations)
        try:
            current = self.schema_version()
        except StoreError:
            current = -1  # no schema_version table yet (a fresh database) or unreadable
        if current > supported:
            raise SchemaVersionError(current, supported)
        if current == supported:
            return
        with self.transaction() as tx:
            assert isinstance(tx, SQLSession)
            if self.migration_lock_sql:
                tx.query(self.migration_lock_sql)
            tx.execute(SCHEMA_VERSION_DDL.format(**self.ddl_types))
            current = int(tx.query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])
            if current > supported:
                raise SchemaVersionError(current, supported)
            now = to_ms(utc_now())
            for version in range(current + 1, supported + 1):
                for statement in statements(self.migrations[version - 1], self.ddl_types):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, now),
                )

    def schema_version(self) -> int:
        """The highest migration applied to this database."""
        with self.transaction(write=False) as tx:
            assert isinstance(tx, SQLSession)
            return int(tx.query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])

    # -- settings --------------------------------------------------------------
    def _stored_hook_secret(self) -> str:
        """Read the store's hook secret, creating it once: insert-or-ignore, then read,
        so processes opening a new store together all keep the one that won."""
        read = "SELECT value FROM store_settings WHERE name = 'hook_secret'"
        with self.transaction(write=False) as tx:
            assert isinstance(tx, SQLSession)
            rows = tx.query(read)
        if not rows:
            with self.transaction() as tx:
                assert isinstance(tx, SQLSession)
                insert = self.insert_ignore_sql("store_settings", ("name", "value"), "name")
                tx.execute(insert, ("hook_secret", self.initial_hook_secret()))
                rows = tx.query(read)
        return str(RowDecoder("store_settings", "hook_secret").text("value", rows[0][0]))

    def hook_secret(self) -> str:
        if self._hook_secret is None:  # a race makes two reads of the same row: harmless
            self._hook_secret = self._stored_hook_secret()
        return self._hook_secret

    # -- timers --------------------------------------------------------------
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
        clause, names = capability_clause("waits", capabilities)
        with self.transaction() as tx:
            assert isinstance(tx, SQLSession)
            rows = tx.query(
                f"SELECT workflow_id, {WAIT_COLUMNS} FROM waits "
                "WHERE resume_at IS NOT NULL AND resume_at <= ? "
                f"AND (claimed_by IS NULL OR claim_expires_at <= ?){clause} "
                "ORDER BY resume_at, workflow_id, wait_id LIMIT ?" + self.claim_lock_suffix,
                (now_ms, now_ms, *names, max(int(limit), 0)),
            )
            if not rows:
                return []
            tx.executemany(
                "UPDATE waits SET claimed_by = ?, claim_expires_at = ? WHERE workflow_id = ? AND wait_id = ?",
                [(worker_id, to_ms(lease_end), row[0], row[1]) for row in rows],
            )
            return [TimerClaim(row[0], wait_from_row(row[0], row[1:]), worker_id, lease_end) for row in rows]

    def claim_stale_runs(
        self, updated_before: datetime, limit: int, capabilities: Collection[str] | None = None
    ) -> list[WorkflowRecord]:
        """Select, then re-stamp each with the version check: exclusive where the
        writer is single (SQLite); PostgreSQL overrides it with one
        ``FOR UPDATE SKIP LOCKED`` statement."""
        taken: list[WorkflowRecord] = []
        with self.transaction() as tx:
            assert isinstance(tx, SQLSession)
            for record in tx.list_stale(updated_before, limit, capabilities):
                version = tx.bump_workflow(record.workflow_id, record.version)
                taken.append(replace(record, version=version, updated_at=normalize_time(self.clock())))
        return taken

    def complete_claim(self, workflow_id: str, wait_id: int, worker_id: str) -> bool:
        with self.transaction() as tx:
            assert isinstance(tx, SQLSession)
            return (
                tx.execute(
                    "DELETE FROM waits WHERE workflow_id = ? AND wait_id = ? AND claimed_by = ?",
                    (workflow_id, wait_id, worker_id),
                )
                > 0
            )

    def next_due_time(self) -> datetime | None:
        with self.transaction(write=False) as tx:
            assert isinstance(tx, SQLSession)
            value = tx.query(
                "SELECT MIN(CASE WHEN claimed_by IS NOT NULL AND claim_expires_at > resume_at "
                "THEN claim_expires_at ELSE resume_at END) FROM waits "
                "WHERE resume_at IS NOT NULL"
            )[0][0]
            return None if value is None else tx.decoder("waits", "next_due").time("resume_at", value)

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with suppress(*self.driver_errors):
                conn.close()


class _Transaction:
    """One transaction on a pooled connection: BEGIN on enter; COMMIT, or ROLLBACK
    when the block raises, on exit. (A plain class: this runs once per journal
    write, and a generator-based context manager costs several times more.)"""

    __slots__ = ("conn", "session", "store", "write")

    def __init__(self, store: SQLStore, write: bool) -> None:
        self.store = store
        self.write = write

    def __enter__(self) -> SQLSession:
        store = self.store
        if getattr(store.thread_state, "active", False):
            raise StoreError("transactions do not nest: use the open transaction's session")
        # nothing has run yet: a connection that fails to check out or to BEGIN
        # (a dead pooled connection after a server restart, SQLite's write lock
        # held past the busy timeout) is retried on a fresh one
        self.conn = conn = store.retrying(self._begin)
        self.session = store.session_class(store, conn)
        return self.session

    def _begin(self) -> Any:
        store = self.store
        conn = store.checkout()
        store.thread_state.active = True
        try:
            store.run_sql(conn, store.begin_sql(self.write))
        except BaseException:
            store.thread_state.active = False
            store.checkin(conn, False)
            raise
        return conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        store, conn = self.store, self.conn
        self.session.done = True
        healthy = False
        try:
            if exc_type is not None:
                healthy = store.rollback_quietly(conn)
                return
            try:
                store.commit(conn, self.session)
            except StoreUnavailableError as error:
                error.at_commit = True  # it may have committed: never repeated blindly
                raise
            except StoreError:
                store.rollback_quietly(conn)
                raise
            healthy = True
        finally:
            store.thread_state.active = False
            store.checkin(conn, healthy)
        if self.session.changed:
            store.announce(self.session)


def compile_placeholders(sql: str, mark: str) -> str:
    """``sql`` written with ``?`` parameters, in a dialect whose parameter mark is ``mark``.

    A lexer, not a text replace: ``?`` inside '...' literals, "..." identifiers
    and comments is left alone. For format-style marks (``%s``) every literal
    ``%`` is doubled, as such drivers require.
    """
    percent = "%%" if mark.startswith("%") else "%"
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = _quoted_end(sql, i)
            out.append(sql[i:end].replace("%", percent))
            i = end
            continue
        closer = "\n" if sql.startswith("--", i) else "*/" if sql.startswith("/*", i) else None
        if closer is not None:
            found = sql.find(closer, i + 2)
            end = n if found < 0 else found + len(closer)
            out.append(sql[i:end].replace("%", percent))
            i = end
            continue
        out.append(mark if c == "?" else percent if c == "%" else c)
        i += 1
    return "".join(out)


def _quoted_end(sql: str, start: int) -> int:
    """Index just past the quoted text opening at ``start`` (a doubled quote escapes)."""
    quote, i = sql[start], start + 1
    while True:
        i = sql.find(quote, i)
        if i < 0:
            raise StoreError(f"unterminated {quote} in SQL: {sql[:80]!r}")
        if sql.startswith(quote * 2, i):
            i += 2
            continue
        return i + 1
