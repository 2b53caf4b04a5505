"""The SQL of every per-instance operation, run inside one transaction.

Why separate from ``_sql``: ``SQLStore`` owns connections, transactions,
migrations and timer claims; this module owns the statements and the
row <-> record mapping. Every statement goes through ``execute``/``query``,
the single place where driver errors are translated. Every row read goes
through a ``RowDecoder``, so a damaged row raises ``CorruptRecordError``
naming the table and key instead of a ``TypeError`` deep in the host.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ._changes import TIMER_NOTIFY_HORIZON, TIMERS_KEY, workflow_key
from ._codec import (
    RowDecoder,
    ascii_lower,
    check_json_text,
    check_token_hash,
    dump_json,
    like_escape,
    normalize_time,
    to_ms,
)
from ._errors import (
    ConcurrencyError,
    InboxError,
    StoreClosedError,
    StoreError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    UnknownScriptError,
    UnknownWorkflowError,
)
from ._records import (
    TERMINAL_STATUSES,
    WORKFLOW_STATUSES,
    HistoryEvent,
    InboxEvent,
    InstanceStatus,
    PendingWait,
    ScriptVersion,
    TokenRecord,
    WorkflowPageQuery,
    WorkflowRecord,
    check_workflow,
    validate_wait,
    validate_workflow,
)
from ._schedules import SQLScheduleSession
from ._sql_durable import SQLDurableSession
from ._sql_rows import (
    CHILD_TABLES,
    EVENT_COLUMNS,
    SCRIPT_COLUMNS,
    TOKEN_COLUMNS,
    WAIT_COLUMNS,
    WORKFLOW_COLUMNS,
    event_from_row,
    history_from_row,
    listed_workflow_from_row,
    script_from_row,
    token_from_row,
    wait_from_row,
    wait_to_row,
    workflow_from_row,
)
from .backend import DEFAULT_LIST_LIMIT, StoreSession

if TYPE_CHECKING:
    from ._sql import SQLStore

# The optimistic save is one statement that checks the version. Its common
# form (a journal write) leaves status and script_hash alone, because naming an
# indexed or foreign-key column in SET costs index and key maintenance even
# when the value does not change; the WHERE clause checks they still hold.
# A status change on the same script version sets status only. The full form
# also checks that a new script version exists. Zero rows from
# the full form means "find out why" (the slow path).
_SAVE_SET = (
    "UPDATE workflows SET entry_point = ?, state = ?, result_json = ?, error_json = ?, "
    "updated_at = ?, version = ?, cancel_reason = ?, metadata = ?"
)
SAVE_SAME_STATUS_SQL = f"{_SAVE_SET} WHERE workflow_id = ? AND version = ? AND status = ? AND script_hash = ?"
SAVE_SAME_SCRIPT_SQL = f"{_SAVE_SET}, status = ? WHERE workflow_id = ? AND version = ? AND script_hash = ?"
SAVE_WORKFLOW_SQL = (
    f"{_SAVE_SET}, status = ?, script_hash = ? WHERE workflow_id = ? AND version = ? AND EXISTS "
    "(SELECT 1 FROM scripts WHERE scripts.name = workflows.script_name AND scripts.hash = ?)"
)
#: how many instances' last saved (status, script_hash) a store remembers
STATUS_HINTS = 4096
# seq = previous + 1, computed by the statement itself (one round trip). Where
# writers run concurrently (PostgreSQL, READ COMMITTED) two appenders can compute
# the same seq: the second waits for the first's commit, inserts nothing, and
# runs the statement again with a fresh snapshot. No lock, no error.
APPEND_HISTORY_SQL = (
    "INSERT INTO history (workflow_id, seq, at, kind, detail) "
    "SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM history WHERE workflow_id = ? "
    "ON CONFLICT (workflow_id, seq) DO NOTHING"
)
APPEND_HISTORY_RETURNING_SQL = APPEND_HISTORY_SQL + " RETURNING seq"
INSERT_HISTORY_SQL = "INSERT INTO history (workflow_id, seq, at, kind, detail) VALUES (?, ?, ?, ?, ?)"
#: statements that never read what ``defer`` postpones (journal, waits, recoveries)
_INDEPENDENT = frozenset({APPEND_HISTORY_SQL, APPEND_HISTORY_RETURNING_SQL})
MAX_NUMBERING_ATTEMPTS = 100
T = TypeVar("T")
MARK_DELIVERED_SQL = (
    "UPDATE inbox SET delivered_at = ?, wait_id = ? WHERE event_id = ? AND delivered_at IS NULL"
)


class NeedsTransaction(BaseException):
    """A read run in one-statement mode (``SQLStore.read``) issued a second
    statement or a write: it runs again in a transaction. A ``BaseException``
    so that a read's own ``except Exception`` cannot swallow it."""


def _refuse_nul(params: Sequence[Any]) -> None:
    """The same answer on every SQL database: PostgreSQL cannot hold NUL in text
    (a driver error, which would look like an outage), so no store takes it.
    The host refuses such input before it gets here; this is the backstop."""
    for value in params:
        if type(value) is list:  # an array parameter (PostgreSQL's one-statement forms)
            _refuse_nul(value)
        elif type(value) is str and "\x00" in value:
            raise ValueError("text contains a NUL character (U+0000), which no store can hold")


class SQLSession(SQLDurableSession, SQLScheduleSession, StoreSession):
    """A ``StoreSession`` over one DB-API connection inside an open transaction."""

    def __init__(self, store: SQLStore, conn: Any) -> None:
        self.store = store
        self.conn = conn
        self.done = False
        self._cur: Any = None
        # instances seen to exist in this transaction: no deletes happen inside
        # one, so later existence checks for them are skipped
        self._known: set[str] = set()
        # instances this transaction created (nothing of theirs to delete yet) and
        # script versions it read (they exist: versions are never deleted)
        self._created: set[str] = set()
        # history lines numbered so far for each instance created here: nobody
        # else can append to an instance before its creation commits
        self._fresh_history: dict[str, int] = {}
        self._scripts: set[tuple[str, str]] = set()
        #: change keys to announce after commit (see ``_changes``)
        self.changed: set[str] = set()
        #: one-statement mode (``SQLStore.read``): statements left before a
        #: transaction is needed; None outside that mode
        self._budget: int | None = None
        #: writes whose results nobody reads, sent with the commit where the
        #: dialect can (``SQLStore.defers_writes``); any later statement but a
        #: history append sends them first, so every read sees them
        self.deferred: list[tuple[str, tuple[Any, ...]]] = []
        #: the change keys went out with the commit itself (PostgreSQL)
        self.published = False

    def one_statement(self, op: Callable[[Any], T]) -> T:
        """Run the read ``op`` allowing one SELECT (see ``SQLStore.read``)."""
        self._budget = 1
        return op(self)

    # -- statement helpers (the error-translation boundary) ------------------
    def _cursor(self, sql: str = "") -> Any:
        if self.done:
            raise StoreClosedError("transaction already finished")
        if self._budget is not None:
            if self._budget == 0 or sql[:6].upper() != "SELECT":
                raise NeedsTransaction
            self._budget = 0
        if self.deferred and sql not in _INDEPENDENT:
            self.flush()
        cur = self._cur
        if cur is None:
            cur = self._cur = self.conn.cursor()
        return cur

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A write whose result is not needed: sent later (with the commit, on
        PostgreSQL: no round trip of its own), or now where nothing is gained.
        A failure then surfaces at commit and rolls the transaction back, as it
        would have here."""
        if not self.store.defers_writes or self._budget is not None:
            self.execute(sql, params)
            return
        _refuse_nul(params)
        if self.done:
            raise StoreClosedError("transaction already finished")
        self.deferred.append((sql, tuple(params)))

    def flush(self) -> None:
        """Send the deferred writes now (a statement that may read them follows)."""
        pending, self.deferred = self.deferred, []
        for sql, params in pending:
            self.execute(sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the affected row count."""
        _refuse_nul(params)
        cursor = self._cursor(sql)
        try:
            cursor.execute(self.store.q(sql), tuple(params))
            return int(cursor.rowcount)
        except self.store.driver_errors as exc:
            raise self.store.translate(exc) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            _refuse_nul(row)
        cursor = self._cursor(sql)
        try:
            cursor.executemany(self.store.q(sql), [tuple(r) for r in rows])
        except self.store.driver_errors as exc:
            raise self.store.translate(exc) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        _refuse_nul(params)
        cursor = self._cursor(sql)
        try:
            cursor.execute(self.store.q(sql), tuple(params))
            return [tuple(row) for row in cursor.fetchall()]
        except self.store.driver_errors as exc:
            raise self.store.translate(exc) from exc

    def insert_id(self, sql: str, params: Sequence[Any], key: str) -> int:
        _refuse_nul(params)
        cursor = self._cursor(sql)
        try:
            return self.store.insert_returning_id(cursor, sql, tuple(params), key)
        except self.store.driver_errors as exc:
            raise self.store.translate(exc) from exc

    def decoder(self, table: str, key: object) -> RowDecoder:
        return RowDecoder(table, key)

    def _now_ms(self) -> int:
        return to_ms(self.store.clock())

    def _require(self, workflow_id: str) -> None:
        if workflow_id in self._known:
            return
        if not self.query("SELECT 1 FROM workflows WHERE workflow_id = ?", (workflow_id,)):
            raise UnknownWorkflowError(workflow_id)
        self._known.add(workflow_id)

    # -- scripts -------------------------------------------------------------
    def put_script(self, name: str, source: str) -> ScriptVersion:
        if not isinstance(name, str) or not name or not isinstance(source, str):
            raise ValueError("script name must be a non-empty string and source a string")
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        self.store.lock_numbering(self, "scripts")
        seq = self.query("SELECT COALESCE(MAX(registered_seq), 0) + 1 FROM scripts")[0][0]
        self.execute(
            self.store.insert_ignore_sql(
                "scripts",
                ("name", "hash", "source", "created_at", "registered_seq"),
                "name, hash",
            ),
            (name, digest, source, self._now_ms(), seq),
        )
        self.execute(
            "UPDATE scripts SET registered_seq = ? WHERE name = ? AND hash = ?",
            (seq, name, digest),
        )
        found = self.get_script(name, digest)
        assert found is not None
        return found

    def get_script(self, name: str, hash: str | None = None) -> ScriptVersion | None:
        if hash is None:
            rows = self.query(
                f"SELECT {SCRIPT_COLUMNS} FROM scripts WHERE name = ? ORDER BY registered_seq DESC LIMIT 1",
                (name,),
            )
        else:
            rows = self.query(
                f"SELECT {SCRIPT_COLUMNS} FROM scripts WHERE name = ? AND hash = ?",
                (name, hash),
            )
        if not rows:
            return None
        script = script_from_row(rows[0])
        self._scripts.add((script.name, script.hash))
        return script

    def list_scripts(self, name: str | None = None) -> list[ScriptVersion]:
        where, params = ("WHERE name = ? ", (name,)) if name is not None else ("", ())
        rows = self.query(
            f"SELECT {SCRIPT_COLUMNS} FROM scripts {where}ORDER BY name, registered_seq", params
        )
        return [script_from_row(row) for row in rows]

    # -- workflows -----------------------------------------------------------
    def _workflow_params(self, r: WorkflowRecord) -> tuple[Any, ...]:
        return (
            r.script_hash,
            r.entry_point,
            r.status,
            r.state,
            r.result_json,
            r.error_json,
            to_ms(r.updated_at),
            r.version,
            r.cancel_reason,
            dump_json(r.metadata),
        )

    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        record = validate_workflow(record)
        if (record.script_name, record.script_hash) not in self._scripts and not self.query(
            "SELECT 1 FROM scripts WHERE name = ? AND hash = ?",
            (record.script_name, record.script_hash),
        ):
            existing = self.get_workflow(record.workflow_id)
            if existing is not None:
                return existing, False
            raise UnknownScriptError(record.script_name, record.script_hash)
        columns = tuple(c.strip() for c in WORKFLOW_COLUMNS.split(","))
        params = (
            record.workflow_id,
            record.script_name,
            record.script_hash,
            record.entry_point,
            record.status,
            record.state,
            record.result_json,
            record.error_json,
            to_ms(record.created_at),
            to_ms(record.updated_at),
            1,
            record.cancel_reason,
            dump_json(record.metadata),
        )
        created = self.execute(self.store.insert_ignore_sql("workflows", columns, "workflow_id"), params) > 0
        if created:  # what a read would give back, without the read
            self._known.add(record.workflow_id)
            self._created.add(record.workflow_id)
            self._fresh_history[record.workflow_id] = 0
            self.store.status_hints[record.workflow_id] = (record.status, record.script_hash)
            stored = replace(
                record,
                created_at=normalize_time(record.created_at),
                updated_at=normalize_time(record.updated_at),
                version=1,
            )
            return stored, True
        existing = self.get_workflow(record.workflow_id)
        assert existing is not None
        return existing, False

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        rows = self.query(f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workflow_id = ?", (workflow_id,))
        if not rows:
            return None
        record = workflow_from_row(rows[0])
        self._known.add(workflow_id)
        return record

    def list_workflows(
        self,
        *,
        status: str | Iterable[str] | None = None,
        script_name: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
        offset: int = 0,
    ) -> list[WorkflowRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            if not statuses:
                return []
            clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if script_name is not None:
            clauses.append("script_name = ?")
            params.append(script_name)
        if created_after is not None:
            clauses.append("created_at >= ?")
            params.append(to_ms(created_after))
        if created_before is not None:
            clauses.append("created_at < ?")
            params.append(to_ms(created_before))
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = self.query(
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows {where}"
            "ORDER BY created_at, workflow_id LIMIT ? OFFSET ?",
            (*params, max(int(limit), 0), max(int(offset), 0)),
        )
        return [listed_workflow_from_row(row) for row in rows]

    def page_workflows(self, query: WorkflowPageQuery) -> list[WorkflowRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (("status", query.statuses), ("w.kind", query.wait_kinds)):
            if values is None:
                continue
            if not values:
                return []
            marks = ", ".join("?" for _ in values)
            if column == "status":
                clauses.append(f"status IN ({marks})")
            else:
                clauses.append(
                    "EXISTS (SELECT 1 FROM waits w WHERE w.workflow_id = workflows.workflow_id "
                    f"AND w.kind IN ({marks}))"
                )
            params.extend(values)
        if query.script_name is not None:
            clauses.append("script_name = ?")
            params.append(query.script_name)
        if query.created_after is not None:
            clauses.append("created_at >= ?")
            params.append(to_ms(query.created_after))
        if query.created_before is not None:
            clauses.append("created_at < ?")
            params.append(to_ms(query.created_before))
        if query.id_contains:
            clauses.append("LOWER(workflow_id) LIKE ? ESCAPE '!'")
            params.append(f"%{like_escape(ascii_lower(query.id_contains))}%")
        if query.before is not None:
            before_ms = to_ms(query.before[0])
            clauses.append("(created_at < ? OR (created_at = ? AND workflow_id < ?))")
            params.extend((before_ms, before_ms, query.before[1]))
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = self.query(
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows {where}"
            "ORDER BY created_at DESC, workflow_id DESC LIMIT ?",
            (*params, max(int(query.limit), 0)),
        )
        return [listed_workflow_from_row(row) for row in rows]

    def count_workflows_by_status(self) -> dict[str, int]:
        rows = self.query("SELECT status, COUNT(*) FROM workflows GROUP BY status")
        counts: dict[str, int] = {}
        for status, count in rows:  # a status no instance can have marks a damaged row
            key = status if status in WORKFLOW_STATUSES else InstanceStatus.CORRUPT.value
            counts[key] = counts.get(key, 0) + int(count)
        return counts

    def save_workflow(self, record: WorkflowRecord, expected_version: int | None = None) -> WorkflowRecord:
        metadata = check_workflow(record)
        workflow_id, status, script_hash = record.workflow_id, str(record.status), record.script_hash
        expected = record.version if expected_version is None else expected_version
        updated_at = normalize_time(self.store.clock())
        common = (
            record.entry_point,
            record.state,
            record.result_json,
            record.error_json,
            to_ms(updated_at),
            expected + 1,
            record.cancel_reason,
            dump_json(metadata),
        )
        hints = self.store.status_hints
        hint = hints.get(workflow_id)
        rows = []
        if hint is not None and hint[1] == script_hash:  # a guess; the WHERE clause decides
            if hint[0] == status:
                sql, params = SAVE_SAME_STATUS_SQL, (*common, workflow_id, expected, status, script_hash)
            else:
                sql, params = SAVE_SAME_SCRIPT_SQL, (*common, status, workflow_id, expected, script_hash)
            rows = self._write_returning(sql, params, workflow_id)
        if not rows:
            rows = self._write_returning(
                SAVE_WORKFLOW_SQL,
                (*common, status, script_hash, workflow_id, expected, script_hash),
                workflow_id,
            )
        if not rows:
            hints.pop(workflow_id, None)
            raise self._save_refused(record, expected)
        if len(hints) >= STATUS_HINTS:
            hints.clear()
        hints[workflow_id] = (status, script_hash)
        self._known.add(workflow_id)
        if status != "running":
            self.changed.add(workflow_key(workflow_id))
        d = RowDecoder("workflows", workflow_id)
        return WorkflowRecord(
            workflow_id=workflow_id,
            script_name=d.text("script_name", rows[0][0]),
            script_hash=script_hash,
            entry_point=record.entry_point,
            status=status,
            state=record.state,
            result_json=record.result_json,
            error_json=record.error_json,
            created_at=d.time("created_at", rows[0][1]),
            updated_at=updated_at,
            version=expected + 1,
            cancel_reason=record.cancel_reason,
            metadata=metadata,
        )

    def _write_returning(self, sql: str, params: tuple[Any, ...], workflow_id: str) -> list[tuple[Any, ...]]:
        """Run a one-row workflows UPDATE; its (script_name, created_at), or [] if it changed nothing."""
        if self.store.supports_returning:
            return self.query(sql + " RETURNING script_name, created_at", params)
        if self.execute(sql, params) == 0:
            return []
        sql = "SELECT script_name, created_at FROM workflows WHERE workflow_id = ?"
        return self.query(sql, (workflow_id,))

    def _save_refused(self, record: WorkflowRecord, expected: int) -> Exception:
        """Why the one-statement save changed nothing: unknown, stale, or an unknown script."""
        current = self.get_workflow(record.workflow_id)
        if current is None:
            return UnknownWorkflowError(record.workflow_id)
        if current.version != expected:
            return ConcurrencyError(record.workflow_id, expected, current.version)
        return UnknownScriptError(current.script_name, record.script_hash)

    # -- history -------------------------------------------------------------
    def append_history(
        self,
        workflow_id: str,
        kind: str,
        detail: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> HistoryEvent:
        self._require(workflow_id)
        detail = dict(detail or {})
        detail_text = dump_json(detail)
        at = normalize_time(self.store.clock() if at is None else at)
        fresh = self._fresh_history.get(workflow_id)
        if fresh is not None:  # created in this transaction: the number is known, no read needed
            self._fresh_history[workflow_id] = fresh + 1
            self.defer(INSERT_HISTORY_SQL, (workflow_id, fresh + 1, to_ms(at), kind, detail_text))
            return HistoryEvent(workflow_id, fresh + 1, at, kind, detail)
        params = (workflow_id, to_ms(at), kind, detail_text, workflow_id)
        for _ in range(MAX_NUMBERING_ATTEMPTS):
            if self.store.supports_returning:
                rows = self.query(APPEND_HISTORY_RETURNING_SQL, params)
                if rows:
                    return HistoryEvent(workflow_id, int(rows[0][0]), at, kind, detail)
            elif self.execute(APPEND_HISTORY_SQL, params):  # SQLite before 3.35: one writer
                seq = self.query("SELECT MAX(seq) FROM history WHERE workflow_id = ?", (workflow_id,))[0][0]
                return HistoryEvent(workflow_id, int(seq), at, kind, detail)
        raise StoreError(f"could not number a history entry of {workflow_id!r}: too many concurrent appends")

    def list_history(self, workflow_id: str, *, after_seq: int = 0) -> list[HistoryEvent]:
        rows = self.query(
            "SELECT seq, at, kind, detail FROM history WHERE workflow_id = ? AND seq > ? ORDER BY seq",
            (workflow_id, after_seq),
        )
        events = []
        for seq, at, kind, detail in rows:
            d = RowDecoder("history", (workflow_id, seq))
            events.append(
                HistoryEvent(
                    workflow_id,
                    d.integer("seq", seq),
                    d.time("at", at),
                    d.text("kind", kind),
                    d.json("detail", detail, dict),
                )
            )
        return events

    def list_history_page(
        self, workflow_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryEvent]:
        rows = self.query(
            "SELECT seq, at, kind, detail FROM history WHERE workflow_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (workflow_id, after_seq, max(int(limit), 0)),
        )
        return [history_from_row(workflow_id, row) for row in rows]

    def read_journal_page(self, workflow_id: str, start: int, limit: int) -> list[tuple[int, str]]:
        rows = self.query(
            "SELECT seq, entry FROM journal WHERE workflow_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
            (workflow_id, start, max(int(limit), 0)),
        )
        return [(int(seq), entry) for seq, entry in rows]

    # -- waits ---------------------------------------------------------------
    def replace_waits(self, workflow_id: str, waits: Sequence[PendingWait]) -> None:
        self._require(workflow_id)
        checked = [validate_wait(w) for w in waits]
        if len({w.wait_id for w in checked}) != len(checked):
            raise ValueError("duplicate wait_id in replace_waits")
        self.execute("DELETE FROM wait_event_names WHERE workflow_id = ?", (workflow_id,))
        self.execute("DELETE FROM waits WHERE workflow_id = ?", (workflow_id,))
        if not checked:
            return
        soon = normalize_time(self.store.clock()) + TIMER_NOTIFY_HORIZON
        if any(w.resume_at is not None and w.resume_at <= soon for w in checked):
            self.changed.add(TIMERS_KEY)
        self.executemany(
            f"INSERT INTO waits (workflow_id, {WAIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(workflow_id, *wait_to_row(w)) for w in checked],
        )
        names = {(w.wait_id, n) for w in checked for n in (w.event_names or ())}
        if names:
            self.executemany(
                "INSERT INTO wait_event_names (workflow_id, wait_id, name) VALUES (?, ?, ?)",
                [(workflow_id, wait_id, n) for wait_id, n in sorted(names)],
            )

    def list_waits(self, workflow_id: str) -> list[PendingWait]:
        rows = self.query(
            f"SELECT {WAIT_COLUMNS} FROM waits WHERE workflow_id = ? ORDER BY wait_id",
            (workflow_id,),
        )
        return [wait_from_row(workflow_id, row) for row in rows]

    # -- inbox ---------------------------------------------------------------
    def enqueue_event(self, workflow_id: str, name: str, payload_json: str) -> int:
        self._require(workflow_id)
        check_json_text(payload_json, "payload_json")
        self.changed.add(workflow_key(workflow_id))
        return self.insert_id(
            "INSERT INTO inbox (workflow_id, name, payload_json, received_at) VALUES (?, ?, ?, ?)",
            (workflow_id, name, payload_json, self._now_ms()),
            "event_id",
        )

    def get_event(self, event_id: int) -> InboxEvent | None:
        rows = self.query(f"SELECT {EVENT_COLUMNS} FROM inbox WHERE event_id = ?", (event_id,))
        return event_from_row(rows[0]) if rows else None

    def pending_events(self, workflow_id: str, names: Iterable[str] | None = None) -> list[InboxEvent]:
        sql = f"SELECT {EVENT_COLUMNS} FROM inbox WHERE workflow_id = ? AND delivered_at IS NULL"
        params: list[Any] = [workflow_id]
        if names is not None:
            wanted = list(names)
            if not wanted:
                return []
            sql += f" AND name IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        return [event_from_row(row) for row in self.query(sql + " ORDER BY event_id", params)]

    def mark_event_delivered(self, event_id: int, wait_id: int) -> InboxEvent:
        params = (self._now_ms(), wait_id, event_id)
        if self.store.supports_returning:
            rows = self.query(f"{MARK_DELIVERED_SQL} RETURNING {EVENT_COLUMNS}", params)
            if rows:
                return event_from_row(rows[0])
            changed = 0
        else:
            changed = self.execute(MARK_DELIVERED_SQL, params)
        event = self.get_event(event_id)
        if event is None:
            raise InboxError(event_id, "unknown")
        if changed == 0:
            raise InboxError(event_id, "delivered")
        return event

    # -- tokens --------------------------------------------------------------
    def put_token(
        self,
        token_hash: str,
        workflow_id: str,
        wait_id: int,
        *,
        expires_at: datetime | None,
        kind: str = "hook",
        metadata: dict[str, Any] | None = None,
    ) -> TokenRecord:
        check_token_hash(token_hash)
        self._require(workflow_id)
        metadata = dict(metadata or {})
        self.execute(
            f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token_hash,
                workflow_id,
                wait_id,
                kind,
                self._now_ms(),
                None if expires_at is None else to_ms(expires_at),
                None,
                dump_json(metadata),
            ),
        )
        found = self.get_token(token_hash)
        assert found is not None
        return found

    def get_token(self, token_hash: str) -> TokenRecord | None:
        rows = self.query(
            f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?" + self.store.row_lock_suffix,
            (token_hash,),
        )
        return token_from_row(rows[0]) if rows else None

    def consume_token(self, token_hash: str, *, now: datetime | None = None) -> TokenRecord:
        record = self.get_token(token_hash)
        if record is None:
            raise TokenNotFoundError(token_hash)
        now = normalize_time(self.store.clock() if now is None else now)
        if record.used_at is not None:
            raise TokenUsedError(token_hash, record.workflow_id, record.wait_id, record.used_at)
        if record.expires_at is not None and now >= record.expires_at:
            raise TokenExpiredError(token_hash, record.workflow_id, record.wait_id, record.expires_at)
        changed = self.execute(
            "UPDATE tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
            (to_ms(now), token_hash),
        )
        if changed == 0:
            raise TokenUsedError(token_hash, record.workflow_id, record.wait_id, now)
        return replace(record, used_at=now)

    # -- retention -----------------------------------------------------------
    def delete_workflows(self, workflow_ids: Sequence[str]) -> list[str]:
        """Child rows go first (explicitly, not only by ``ON DELETE CASCADE``), in
        chunks that stay under every backend's bound-parameter limit."""
        wanted = list(dict.fromkeys(workflow_ids))
        terminal = sorted(TERMINAL_STATUSES)
        found: set[str] = set()
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            marks = ", ".join("?" * len(chunk))
            rows = self.query(
                f"SELECT workflow_id FROM workflows WHERE workflow_id IN ({marks}) "
                f"AND status IN ({', '.join('?' * len(terminal))})",
                (*chunk, *terminal),
            )
            ids = [str(row[0]) for row in rows]
            if not ids:
                continue
            found.update(ids)
            marks = ", ".join("?" * len(ids))
            for table in (*CHILD_TABLES, "workflows"):
                self.execute(f"DELETE FROM {table} WHERE workflow_id IN ({marks})", ids)
        return [wid for wid in wanted if wid in found]
