"""Run the store contract against every backend available here.

A new backend (PostgreSQL) joins by adding one class with a ``store`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_contract import FakeClock, SQLStoreContract, StoreContract

from jsflow.host.store import MemoryStore, SQLiteStore, SQLStore


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock) -> Iterator[MemoryStore]:
        store = MemoryStore(clock=clock)
        yield store
        store.close()


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
