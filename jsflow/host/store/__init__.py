"""Durable storage for the jsflow host: what an embedder opens and calls.

``open_store(url)`` returns a ``Store`` (``sqlite:///path.db``, ``memory://``,
``postgresql://...``); ``WorkflowHost`` takes either a URL or a store. Its
records (``WorkflowRecord``, ``PendingWait``, ``InboxEvent``, ...) and errors
(``StoreError`` and subclasses; ``StoreUnavailableError`` is the transient
one) are here too.

Work goes through units of work::

    record = store.read(lambda tx: tx.get_workflow(wid))
    with store.transaction() as tx:          # several writes, all or nothing
        tx.save_workflow(replace(record, status="suspended"))
        tx.replace_waits(wid, waits)

The interface a backend author implements (``Store``, ``StoreSession``, grouped
by concept) is documented in ``jsflow.host.store.backend``; the contract suite
every backend passes ships as ``jsflow.testing``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

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
from ._sql import SQLStore
from ._sqlite import SQLiteStore
from .backend import Store, StoreSession

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
