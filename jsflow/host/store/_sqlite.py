"""SQLite dialect of the SQL store: the default, one file, one machine.

Why these settings: WAL lets readers run while one writer writes;
``busy_timeout`` makes a second writer (another thread or process) wait for
the lock instead of failing at once; ``BEGIN IMMEDIATE`` takes the write lock
when a writing transaction starts, so two processes never deadlock upgrading
a read lock, and timer claims are exclusive without row locks;
``foreign_keys=ON`` because SQLite leaves it off; ``synchronous=NORMAL`` is
durable across application crashes in WAL mode (a power cut may lose the
last transactions, never corrupt the file).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ._codec import Clock
from ._errors import StoreClosedError, StoreError, StoreUnavailableError
from ._sql import SQLStore

DEFAULT_BUSY_TIMEOUT_MS = 5000


class SQLiteStore(SQLStore):
    """A store in one SQLite file, safe for several threads and processes."""

    backend_name = "sqlite"
    placeholder = "?"
    claim_lock_suffix = ""
    row_lock_suffix = ""
    ddl_types = {
        "id_pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "bigint": "INTEGER",
        "json_items": "json_each(w.event_names) AS j",
    }
    driver_errors = (sqlite3.Error,)
    supports_returning = sqlite3.sqlite_version_info >= (3, 35, 0)

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        if str(path) in ("", ":memory:"):
            raise StoreError("SQLiteStore needs a file path; use MemoryStore for memory://")
        self.path = Path(path)
        self.busy_timeout_ms = int(busy_timeout_ms)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create directory for {self.path}: {exc}") from exc
        super().__init__(clock=clock)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _connect(self) -> Any:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit: transactions are begun explicitly
            check_same_thread=False,  # a pooled connection may serve another thread later
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def initial_hook_secret(self) -> str:
        """Adopt ``<db>.hook-secret`` (where versions before the store kept it) so the
        hook URLs those versions handed out stay valid; else a new random one."""
        legacy = self.path.with_name(self.path.name + ".hook-secret")
        try:
            text = legacy.read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            text = ""
        return text or super().initial_hook_secret()

    def begin_sql(self, write: bool) -> str:
        return "BEGIN IMMEDIATE" if write else "BEGIN DEFERRED"

    def insert_returning_id(self, cursor: Any, sql: str, params: tuple[Any, ...], key: str) -> int:
        cursor.execute(sql, params)
        return int(cursor.lastrowid)

    def _translate_error(self, exc: BaseException) -> StoreError:
        message = str(exc)
        if isinstance(exc, sqlite3.ProgrammingError) and "closed" in message:
            return StoreClosedError(f"sqlite connection closed: {message}")
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
            return StoreUnavailableError(
                "sqlite", f"the database stayed locked for more than {self.busy_timeout_ms} ms: {message}"
            )
        if isinstance(exc, sqlite3.IntegrityError):
            return StoreError(f"sqlite integrity error in {self.path}: {message}")
        return StoreError(f"sqlite error in {self.path}: {message}")
