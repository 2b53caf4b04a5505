"""Backends for the host and store tests: memory, SQLite and PostgreSQL
(the PostgreSQL fixtures ``pg_url``/``pg_schema`` are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from jsflow.host.store import MemoryStore, Store

BACKENDS = ["memory", "sqlite", "postgresql"]
Clock = Callable[[], datetime]
#: a store for a name: a URL (SQLite, PostgreSQL) or a store object (memory, which no URL can reopen)
Backend = Callable[..., "Store | str"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """``backend(name, clock=None)``: what a test passes to ``WorkflowHost`` (the same
    store each time for one name), on each backend in turn. ``backend.kind`` names it."""
    kind: str = request.param
    stores: dict[str, Store | str] = {}
    make_schema = request.getfixturevalue("pg_schema") if kind == "postgresql" else None

    def get(name: str, clock: Clock | None = None) -> Store | str:
        if name not in stores:
            if kind == "memory":
                stores[name] = MemoryStore(clock=clock)
            elif kind == "sqlite":
                stores[name] = f"sqlite:///{tmp_path / name}.db"
            else:
                assert make_schema is not None
                stores[name] = make_schema()
        return stores[name]

    get.kind = kind  # type: ignore[attr-defined]
    yield get
    for store in stores.values():
        if isinstance(store, Store):
            store.close()
