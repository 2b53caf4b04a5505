"""PostgreSQL's session: the hot per-instance operations in fewer statements.

Why a subclass: on PostgreSQL every statement is a round trip to the server
(SQLite runs in the process, where a statement costs microseconds), so the
operations an advance repeats are written as one statement each here:

- ``get_workflow_header``: the instance row, its waits (``json_agg``) and its
  requirements (``ARRAY(...)``) in one SELECT, instead of three; as the only
  statement of a ``Store.read`` it needs no BEGIN/COMMIT either;
- ``replace_waits``: one statement with data-modifying CTEs instead of two
  DELETEs and two inserts. The sub-statements of one statement see one
  snapshot and must not touch the same row twice, so they are written to
  touch disjoint rows: waits no longer pending are deleted (their event names
  go by ``ON DELETE CASCADE``), waits kept or new are upserted (the upsert
  drops any claim, as the replace did), and the event-name rows of kept waits
  that no longer apply are deleted while the new ones are inserted with
  ``ON CONFLICT DO NOTHING``. The foreign key of ``wait_event_names`` is
  checked at the end of the statement, when the waits it names exist.

The results are the same as the generic statements' (the contract suite
runs on both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._changes import TIMER_NOTIFY_HORIZON, TIMERS_KEY
from ._codec import RowDecoder, normalize_time
from ._records import PendingWait, WorkflowRecord, validate_wait
from ._sql_rows import WAIT_COLUMNS, WORKFLOW_COLUMNS, wait_from_row, wait_to_row, workflow_from_row
from ._sql_session import SQLSession

_WAIT_NAMES = [c.strip() for c in WAIT_COLUMNS.split(",")]
HEADER_SQL = (
    f"SELECT {', '.join('w.' + c.strip() for c in WORKFLOW_COLUMNS.split(','))}, "
    f"(SELECT json_agg(json_build_array({WAIT_COLUMNS}) ORDER BY wait_id) FROM waits x "
    "WHERE x.workflow_id = w.workflow_id), "
    "ARRAY(SELECT name FROM requirements r WHERE r.workflow_id = w.workflow_id ORDER BY name) "
    "FROM workflows w WHERE w.workflow_id = ?"
)
_TYPES = ("bigint", "text", "text", "bigint", "text", "integer", "text", "text", "text")
REPLACE_WAITS_SQL = (
    "WITH new AS (SELECT * FROM unnest("
    + ", ".join(f"?::{t}[]" for t in _TYPES)
    + f") AS n({WAIT_COLUMNS})), "
    "names AS (SELECT * FROM unnest(?::bigint[], ?::text[]) AS m(wait_id, name)), "
    "gone AS (DELETE FROM waits WHERE workflow_id = ? AND wait_id <> ALL(?::bigint[])), "
    "stale AS (DELETE FROM wait_event_names e WHERE e.workflow_id = ? AND e.wait_id = ANY(?::bigint[]) "
    "AND NOT EXISTS (SELECT 1 FROM names m WHERE m.wait_id = e.wait_id AND m.name = e.name)), "
    f"put AS (INSERT INTO waits (workflow_id, {WAIT_COLUMNS}) SELECT ?, {WAIT_COLUMNS} FROM new "
    "ON CONFLICT (workflow_id, wait_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _WAIT_NAMES[1:])
    + ", claimed_by = NULL, claim_expires_at = NULL) "
    "INSERT INTO wait_event_names (workflow_id, wait_id, name) SELECT ?, wait_id, name FROM names "
    "ON CONFLICT DO NOTHING"
)


class PostgresSession(SQLSession):
    """``SQLSession`` with PostgreSQL's one-statement forms (see the module doc)."""

    def get_workflow_header(
        self, workflow_id: str
    ) -> tuple[WorkflowRecord, list[PendingWait], list[str]] | None:
        rows = self.query(HEADER_SQL, (workflow_id,))
        if not rows:
            return None
        row = rows[0]
        record = workflow_from_row(row[:13])
        self._known.add(workflow_id)
        d = RowDecoder("waits", workflow_id)
        items = row[13] or []  # psycopg decodes json; a text value would be a driver change
        if not isinstance(items, list):
            items = d.json("waits", items, list)
        waits = [wait_from_row(workflow_id, w) for w in items]
        requirements = [d.text("requirements", name) for name in row[14] or ()]
        return record, waits, requirements

    def replace_waits(self, workflow_id: str, waits: Sequence[PendingWait]) -> None:
        self._require(workflow_id)
        checked = [validate_wait(w) for w in waits]
        if len({w.wait_id for w in checked}) != len(checked):
            raise ValueError("duplicate wait_id in replace_waits")
        soon = normalize_time(self.store.clock()) + TIMER_NOTIFY_HORIZON
        if any(w.resume_at is not None and w.resume_at <= soon for w in checked):
            self.changed.add(TIMERS_KEY)
        columns: list[list[Any]] = [[] for _ in _TYPES]
        for w in checked:
            for column, value in zip(columns, wait_to_row(w), strict=True):
                column.append(value)
        names = sorted({(w.wait_id, n) for w in checked for n in (w.event_names or ())})
        ids = columns[0]
        self.defer(
            REPLACE_WAITS_SQL,
            (
                *columns,
                [i for i, _ in names],
                [n for _, n in names],
                workflow_id,
                ids,
                workflow_id,
                ids,
                workflow_id,
                workflow_id,
            ),
        )
