"""Run the store contract (``jsflow.testing``) against every backend of jsflow.

A backend joins by adding one class: ``make_store`` (or a ``store`` fixture when
it needs other fixtures). PostgreSQL: see conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jsflow.host.store import MemoryStore, PostgresStore, SQLiteStore, SQLStore
from jsflow.testing import FakeClock, SQLStoreContract, StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self, clock: FakeClock) -> MemoryStore:
        return MemoryStore(clock=clock)


class TestSQLiteStore(SQLStoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock, tmp_path: Path) -> Iterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "jsflow.db", clock=clock)
        yield store
        store.close()

    def reopen(
        self,
        store: SQLStore,
        *,
        fresh: bool = False,
        migrations: tuple[str, ...] | None = None,
        **kwargs: object,
    ) -> SQLStore:
        assert isinstance(store, SQLiteStore)
        path = store.path.with_name("fresh.db") if fresh else store.path
        cls = SQLiteStore
        if migrations is not None:
            cls = type("OldSQLiteStore", (SQLiteStore,), {"migrations": migrations})
        return cls(path, clock=store.clock)


class TestSQLiteStoreWithoutReturning(TestSQLiteStore):
    """The same contract on the path for SQLite builds older than 3.35 (no RETURNING)."""

    @pytest.fixture
    def store(self, clock: FakeClock, tmp_path: Path) -> Iterator[SQLiteStore]:
        cls = type("NoReturningSQLiteStore", (SQLiteStore,), {"supports_returning": False})
        store = cls(tmp_path / "jsflow.db", clock=clock)
        yield store
        store.close()


# type errors cannot be stored in PostgreSQL's typed columns: the other corruptions remain
PG_CORRUPTIONS = [
    ("UPDATE workflows SET metadata = '{oops'", "get"),
    ("UPDATE workflows SET status = 'exploded'", "list"),
    ("UPDATE workflows SET result_json = 'nope'", "get"),
    ("UPDATE waits SET event_names = '[1, 2]'", "waits"),
    ("UPDATE history SET detail = '[]'", "history"),
    ("UPDATE inbox SET payload_json = '{'", "inbox"),
    ("UPDATE tokens SET metadata = 'x'", "token"),
]


class TestPostgresStore(SQLStoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock, pg_schema: Callable[[], str]) -> Iterator[SQLStore]:
        self.schemas = pg_schema
        store = PostgresStore(pg_schema(), clock=clock)
        yield store
        store.close()

    def reopen(
        self,
        store: SQLStore,
        *,
        fresh: bool = False,
        migrations: tuple[str, ...] | None = None,
        **kwargs: object,
    ) -> SQLStore:
        assert isinstance(store, PostgresStore)
        url = self.schemas() if fresh else store.url
        cls = PostgresStore
        if migrations is not None:
            cls = type("OldPostgresStore", (PostgresStore,), {"migrations": migrations})
        return cls(url, clock=store.clock)

    @pytest.mark.parametrize(("sql", "read"), PG_CORRUPTIONS)
    def test_corrupt_rows_raise_corrupt_record_error(self, store: SQLStore, sql: str, read: str) -> None:
        super().test_corrupt_rows_raise_corrupt_record_error(store, sql, read)
