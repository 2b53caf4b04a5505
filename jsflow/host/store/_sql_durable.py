"""The SQL of the driver's operations (see ``_durable``), mixed into ``SQLSession``.

Capability filters are one ``NOT EXISTS`` over ``requirements``: an instance
is runnable by a process when none of its required names is missing from the
process's registrations. Indexes used: ``journal`` and ``requirements`` by
primary key, ``workflows_updated (status, updated_at)`` for the stale scan,
``inbox_pending`` for stranded events.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from ._changes import workflow_key
from ._codec import RowDecoder, check_json_text, normalize_time, same_request, to_ms
from ._errors import ConcurrencyError, IdempotencyKeyConflictError, UnknownWorkflowError
from ._records import WorkflowRecord
from ._sql_rows import WORKFLOW_COLUMNS, workflow_from_row

BUMP_SQL = "UPDATE workflows SET version = ?, updated_at = ? WHERE workflow_id = ? AND version = ?"


def capability_clause(alias: str, capabilities: Collection[str] | None) -> tuple[str, list[Any]]:
    """SQL (with a leading AND) that keeps instances a process with ``capabilities`` can run."""
    if capabilities is None:
        return "", []
    names = sorted(set(capabilities))
    if not names:
        return f" AND NOT EXISTS (SELECT 1 FROM requirements r WHERE r.workflow_id = {alias}.workflow_id)", []
    marks = ", ".join("?" for _ in names)
    return (
        f" AND NOT EXISTS (SELECT 1 FROM requirements r WHERE r.workflow_id = {alias}.workflow_id "
        f"AND r.name NOT IN ({marks}))",
        list(names),
    )


class SQLDurableSession:
    """Mixin: needs ``execute``, ``executemany``, ``query``, ``insert_id``, ``store``."""

    store: Any
    changed: set[str]
    _created: set[str]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:  # pragma: no cover - provided
        raise NotImplementedError

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:  # pragma: no cover - provided
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:  # pragma: no cover
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:  # pragma: no cover
        raise NotImplementedError

    def insert_id(self, sql: str, params: Sequence[Any], key: str) -> int:  # pragma: no cover
        raise NotImplementedError

    def _require(self, workflow_id: str) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- journal -----------------------------------------------------------------
    def append_journal(self, workflow_id: str, seq: int, entry_json: str) -> None:
        self.defer(
            "INSERT INTO journal (workflow_id, seq, entry) VALUES (?, ?, ?)", (workflow_id, seq, entry_json)
        )

    def append_journal_checked(
        self, workflow_id: str, expected_version: int, seq: int, entry_json: str
    ) -> None:
        """Repeatable: when a retry after a lost connection finds the very row it
        wrote (same version, same entry), that is success, not a conflict."""
        inserted = self.execute(
            "INSERT INTO journal (workflow_id, seq, entry) SELECT ?, ?, ? "
            "WHERE EXISTS (SELECT 1 FROM workflows WHERE workflow_id = ? AND version = ?"
            f"{self.store.share_lock_suffix}) "  # PostgreSQL: a concurrent bump is waited for
            "ON CONFLICT (workflow_id, seq) DO NOTHING",
            (workflow_id, seq, entry_json, workflow_id, expected_version),
        )
        if inserted == 0:
            rows = self.query(
                "SELECT w.version, j.entry FROM workflows w LEFT JOIN journal j "
                "ON j.workflow_id = w.workflow_id AND j.seq = ? WHERE w.workflow_id = ?",
                (seq, workflow_id),
            )
            if not rows:
                raise UnknownWorkflowError(workflow_id)
            version, stored = int(rows[0][0]), rows[0][1]
            if version == expected_version and stored == entry_json:
                return
            raise ConcurrencyError(workflow_id, expected_version, version)

    def retarget_token(self, token_hash: str, wait_id: int) -> None:
        self.execute(
            "UPDATE tokens SET wait_id = ? WHERE token_hash = ? AND used_at IS NULL", (wait_id, token_hash)
        )

    def mark_faulted(self, workflow_id: str, expected_version: int, error_json: str) -> bool:
        self.store.status_hints.pop(workflow_id, None)
        now = to_ms(normalize_time(self.store.clock()))
        changed = self.execute(
            "UPDATE workflows SET status = 'faulted', error_json = ?, version = ?, updated_at = ? "
            "WHERE workflow_id = ? AND version = ?",
            (error_json, expected_version + 1, now, workflow_id, expected_version),
        )
        return changed > 0

    def read_journal(self, workflow_id: str, start: int = 0) -> list[str]:
        rows = self.query(
            "SELECT entry FROM journal WHERE workflow_id = ? AND seq >= ? ORDER BY seq", (workflow_id, start)
        )
        return [row[0] for row in rows]

    def trim_journal(self, workflow_id: str, keep: int) -> None:
        self.defer("DELETE FROM journal WHERE workflow_id = ? AND seq >= ?", (workflow_id, keep))

    def bump_workflow(self, workflow_id: str, expected_version: int) -> int:
        now = to_ms(normalize_time(self.store.clock()))
        if self.execute(BUMP_SQL, (expected_version + 1, now, workflow_id, expected_version)) == 0:
            rows = self.query("SELECT version FROM workflows WHERE workflow_id = ?", (workflow_id,))
            if not rows:
                raise UnknownWorkflowError(workflow_id)
            raise ConcurrencyError(workflow_id, expected_version, int(rows[0][0]))
        return expected_version + 1

    # -- requirements and recoveries ------------------------------------------------
    def set_requirements(self, workflow_id: str, names: Iterable[str]) -> None:
        """One multi-row INSERT (not ``executemany``: a statement per row, or a
        pipeline, where every statement is a round trip); no DELETE for an
        instance this transaction created."""
        if workflow_id not in self._created:
            self.execute("DELETE FROM requirements WHERE workflow_id = ?", (workflow_id,))
        wanted = sorted(set(names))
        for start in range(0, len(wanted), 400):  # under every backend's parameter limit
            chunk = wanted[start : start + 400]
            marks = ", ".join("(?, ?)" for _ in chunk)
            params = [value for name in chunk for value in (workflow_id, name)]
            self.execute(f"INSERT INTO requirements (workflow_id, name) VALUES {marks}", params)

    def get_requirements(self, workflow_id: str) -> list[str]:
        rows = self.query("SELECT name FROM requirements WHERE workflow_id = ? ORDER BY name", (workflow_id,))
        return [row[0] for row in rows]

    def note_recovery(self, workflow_id: str) -> int:
        changed = self.execute(
            "UPDATE recoveries SET attempts = attempts + 1 WHERE workflow_id = ?", (workflow_id,)
        )
        if changed == 0:
            self.execute("INSERT INTO recoveries (workflow_id, attempts) VALUES (?, 1)", (workflow_id,))
            return 1
        return int(self.query("SELECT attempts FROM recoveries WHERE workflow_id = ?", (workflow_id,))[0][0])

    def recovery_attempts(self, workflow_id: str) -> int:
        rows = self.query("SELECT attempts FROM recoveries WHERE workflow_id = ?", (workflow_id,))
        return int(rows[0][0]) if rows else 0

    def clear_recoveries(self, workflow_id: str) -> None:
        self.defer("DELETE FROM recoveries WHERE workflow_id = ?", (workflow_id,))

    # -- scans ----------------------------------------------------------------------
    def list_stale(
        self, before: datetime, limit: int, capabilities: Collection[str] | None = None
    ) -> list[WorkflowRecord]:
        clause, params = capability_clause("w", capabilities)
        columns = ", ".join(f"w.{c.strip()}" for c in WORKFLOW_COLUMNS.split(","))
        rows = self.query(
            f"SELECT {columns} FROM workflows w WHERE w.status = 'running' AND w.updated_at < ?{clause} "
            "ORDER BY w.updated_at, w.workflow_id LIMIT ?",
            (to_ms(before), *params, max(int(limit), 0)),
        )
        return [workflow_from_row(row) for row in rows]

    def stranded_workflows(
        self, before: datetime, limit: int, capabilities: Collection[str] | None = None
    ) -> list[str]:
        # exact: names are compared by equality against one row per listened name
        # (``wait_event_names``), never by a text match on the JSON list
        clause, params = capability_clause("w", capabilities)
        rows = self.query(
            "SELECT i.workflow_id, MIN(i.event_id) FROM inbox i "
            "JOIN workflows w ON w.workflow_id = i.workflow_id "
            "WHERE i.delivered_at IS NULL AND i.received_at < ? AND w.status = 'suspended' "
            "AND EXISTS (SELECT 1 FROM wait_event_names n JOIN waits x "
            "ON x.workflow_id = n.workflow_id AND x.wait_id = n.wait_id "
            "WHERE n.workflow_id = i.workflow_id AND n.name = i.name AND x.kind = 'event')"
            f"{clause} GROUP BY i.workflow_id ORDER BY MIN(i.event_id) LIMIT ?",
            (to_ms(before), *params, max(int(limit), 0)),
        )
        return [RowDecoder("inbox", row[0]).text("workflow_id", row[0]) for row in rows]

    # -- idempotent events ------------------------------------------------------------
    def enqueue_event_once(
        self, workflow_id: str, name: str, payload_json: str, idempotency_key: str
    ) -> tuple[int, bool]:
        """Insert-or-ignore on the (instance, key) unique index, then read the row: a
        concurrent sender with the same key waits for the first one's commit and then
        finds its event (no unique-violation error on any backend)."""
        self._require(workflow_id)
        check_json_text(payload_json, "payload_json")
        found = self._keyed_event(workflow_id, idempotency_key)
        created = False
        if found is None:
            now = to_ms(normalize_time(self.store.clock()))
            created = (
                self.execute(
                    self.store.insert_ignore_sql(
                        "inbox",
                        ("workflow_id", "name", "payload_json", "received_at", "idempotency_key"),
                        "workflow_id, idempotency_key",
                    ),
                    (workflow_id, name, payload_json, now, idempotency_key),
                )
                > 0
            )
            found = self._keyed_event(workflow_id, idempotency_key)
            if found is None:  # pragma: no cover - the row exists after either branch
                raise UnknownWorkflowError(workflow_id)
        event_id, stored_name, stored_payload = found
        if created:
            self.changed.add(workflow_key(workflow_id))
        elif not same_request(stored_name, stored_payload, name, payload_json):
            raise IdempotencyKeyConflictError(workflow_id, idempotency_key, event_id)
        return event_id, created

    def _keyed_event(self, workflow_id: str, idempotency_key: str) -> tuple[int, str, str] | None:
        rows = self.query(
            "SELECT event_id, name, payload_json FROM inbox WHERE workflow_id = ? AND idempotency_key = ?",
            (workflow_id, idempotency_key),
        )
        if not rows:
            return None
        d = RowDecoder("inbox", rows[0][0])
        return (
            d.integer("event_id", rows[0][0]),
            d.text("name", rows[0][1]),
            d.text("payload_json", rows[0][2]),
        )
