"""Durable storage for the jsflow host.

How to code against it
----------------------
``open_store(url)`` returns a ``Store``. Everything the host persists goes
through it, grouped by concept:

- scripts   ``put_script(name, source)`` (content-addressed, idempotent),
            ``get_script(name, hash=None)``, ``list_scripts(name=None)``
- workflows ``create_workflow(record) -> (record, created)`` (idempotent on the
            caller's workflow id), ``get_workflow(id)``, ``list_workflows(...)``,
            ``save_workflow(record, expected_version=None)`` (optimistic:
            ``ConcurrencyError`` unless the stored version matches; bumps it)
- history   ``append_history(id, kind, detail)``, ``list_history(id)``
- waits     ``replace_waits(id, waits)``, ``list_waits(id)``; store-wide:
            ``claim_due_timers(now, limit, worker_id, lease_seconds)``,
            ``release_claim``, ``complete_claim``, ``next_due_time()``
- inbox     ``enqueue_event(id, name, payload_json) -> event_id`` (refuses an
            unknown id), ``pending_events(id, names=None)`` (oldest first),
            ``mark_event_delivered(event_id, wait_id)``
- tokens    ``put_token(token_hash, ...)``, ``get_token``, ``consume_token``
            (single use; ``TokenUsedError``/``TokenExpiredError``/
            ``TokenNotFoundError``); only sha256 hashes are stored: use
            ``jsflow.host.new_token()`` and ``jsflow.host.hash_token(raw)``.

Transaction model
-----------------
``with store.transaction() as tx:`` opens a unit of work; ``tx`` has every
operation above except the store-wide timer ones. It commits when the block
ends normally and rolls back completely when it raises, so advancing an
instance is one atomic step::

    with store.transaction() as tx:
        record = tx.get_workflow(wid)
        ...run the engine...
        tx.save_workflow(replace(record, state=new_state, status="suspended"))
        tx.replace_waits(wid, new_waits)
        tx.mark_event_delivered(event_id, wait_id)
        tx.append_history(wid, "event_received", {"event_id": event_id})

``save_workflow`` raising ``ConcurrencyError`` (someone advanced the
instance first) undoes everything in the block. Each operation called on the
store itself runs in its own short transaction. Transactions do not nest,
and a session belongs to the thread that opened it. On SQLite a writing
transaction holds the database write lock until it ends, so keep long work
(running steps) outside it: read, run the engine, then write with the version
check. Timer claims are leases: a claim keeps other workers away until
``lease_seconds`` pass; the version check is what makes firing exactly-once.
``replace_waits`` drops claims on the instance's old waits.

Time: pass aware UTC datetimes; the store keeps millisecond precision.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ._base import Store, StoreSession
from ._changes import timers_key, workflow_key
from ._codec import Clock
from ._errors import (
    BackendNotAvailableError,
    ConcurrencyError,
    CorruptRecordError,
    IdempotencyKeyConflictError,
    InboxError,
    SchemaVersionError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    TokenError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    TransactionConflictError,
    UnknownScriptError,
    UnknownWorkflowError,
)
from ._memory import MemoryStore
from ._records import (
    HistoryEvent,
    InboxEvent,
    InstanceStatus,
    PendingWait,
    ScriptVersion,
    TimerClaim,
    TokenRecord,
    WorkflowPageQuery,
    WorkflowRecord,
)
from ._schedules import ScheduleConflictError, ScheduleEvent, ScheduleRecord
from ._schema import MIGRATIONS
from ._sql import SQLStore
from ._sqlite import SQLiteStore

DEFAULT_URL = "sqlite:///.jsflow/jsflow.db"
ENV_VAR = "JSFLOW_DB"

__all__ = [
    "BackendNotAvailableError",
    "ConcurrencyError",
    "CorruptRecordError",
    "HistoryEvent",
    "IdempotencyKeyConflictError",
    "InboxError",
    "InboxEvent",
    "InstanceStatus",
    "MemoryStore",
    "PendingWait",
    "PostgresStore",
    "SQLStore",
    "SQLiteStore",
    "ScheduleConflictError",
    "ScheduleEvent",
    "ScheduleRecord",
    "SchemaVersionError",
    "ScriptVersion",
    "Store",
    "StoreClosedError",
    "StoreError",
    "StoreSession",
    "StoreUnavailableError",
    "TimerClaim",
    "TokenError",
    "TokenExpiredError",
    "TokenNotFoundError",
    "TokenRecord",
    "TokenUsedError",
    "TransactionConflictError",
    "UnknownScriptError",
    "UnknownWorkflowError",
    "WorkflowPageQuery",
    "WorkflowRecord",
    "open_store",
    "schema_migrations",
    "timers_key",
    "workflow_key",
]


def __getattr__(name: str) -> Any:
    """``PostgresStore`` on first use only: importing jsflow never imports psycopg."""
    if name == "PostgresStore":
        from ._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str | None = None, *, clock: Clock | None = None) -> Store:
    """Open the store named by ``url`` (default: ``$JSFLOW_DB``, else ``DEFAULT_URL``).

    - ``sqlite:///relative/path.db`` (relative to the working directory),
      ``sqlite:////absolute/path.db``; parent directories are created;
    - ``memory://``: a fresh ``MemoryStore``;
    - ``postgresql://user:password@host:port/dbname`` (also ``postgres://``; any
      libpq URI, e.g. ``?options=-csearch_path%3Dmyschema``): a ``PostgresStore``
      (psycopg 3, imported only now) for several worker processes and machines.

    ``clock`` (a zero-argument callable returning an aware UTC datetime) stamps
    records; tests pass a fake one.
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or DEFAULT_URL
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise StoreError(f"store URL {url!r} has no scheme (expected sqlite:///path.db)")
    if scheme == "memory":
        return MemoryStore(clock=clock)
    if scheme == "sqlite":
        return SQLiteStore(_sqlite_path(url), clock=clock)
    if scheme in ("postgres", "postgresql"):
        from ._postgres import PostgresStore  # lazily: psycopg loads only for PostgreSQL

        return PostgresStore(url, clock=clock)
    if scheme.startswith("postgresql+"):
        raise BackendNotAvailableError(
            scheme, f"{scheme}:// is a SQLAlchemy spelling; use postgresql://user@host/dbname"
        )
    raise StoreError(f"unsupported store URL scheme {scheme!r} (use sqlite://, postgresql:// or memory://)")


def _sqlite_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc:
        raise StoreError(
            f"sqlite URL {url!r} has a host part; use sqlite:///relative.db or sqlite:////absolute.db"
        )
    path = unquote(parts.path)
    if not path or path == "/":
        raise StoreError(f"sqlite URL {url!r} names no file")
    # "sqlite:///rel.db" -> "/rel.db" (relative); "sqlite:////abs.db" -> "//abs.db" (absolute)
    name = path[1:]
    if name == ":memory:":
        raise StoreError("sqlite :memory: is not supported; use memory://")
    return Path(name) if Path(name).is_absolute() else Path.cwd() / name


def schema_migrations() -> tuple[str, ...]:
    """The ordered schema migrations every SQL store applies (migration N is item N - 1)."""
    return MIGRATIONS
