"""open_store URL handling, the public surface, and the token helpers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import jsflow.host.store as store_pkg
from jsflow.host import hash_token, new_token
from jsflow.host.store import (
    BackendNotAvailableError,
    InstanceStatus,
    MemoryStore,
    SQLiteStore,
    StoreError,
    open_store,
)


def test_all_is_sorted_and_complete() -> None:
    names = store_pkg.__all__
    assert names == sorted(names)
    assert all(hasattr(store_pkg, name) for name in names)


def test_memory_url() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/x.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "data" / "x.db"
    assert store.path.exists()
    store.close()


def test_sqlite_absolute_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(store, SQLiteStore) and store.path == tmp_path / "abs.db"
    store.close()


def test_default_url_under_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JSFLOW_DB", raising=False)
    store = open_store()
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / ".jsflow" / "jsflow.db"
    assert store.path.exists()
    store.close()


def test_default_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JSFLOW_DB", f"sqlite:///{tmp_path}/env.db")
    store = open_store()
    assert isinstance(store, SQLiteStore) and store.path == tmp_path / "env.db"
    store.close()
    monkeypatch.setenv("JSFLOW_DB", "memory://")
    assert isinstance(open_store(), MemoryStore)


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://h/db"])
def test_postgres_is_not_available_yet(url: str) -> None:
    with pytest.raises(BackendNotAvailableError) as info:
        open_store(url)
    assert isinstance(info.value, NotImplementedError)
    assert "PostgreSQL" in str(info.value)


@pytest.mark.parametrize(
    "url", ["mysql://h/db", "no-scheme.db", "sqlite://host/x.db", "sqlite:///", "sqlite:///:memory:"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(StoreError):
        open_store(url)


def test_tokens_are_random_and_hashed() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)  # >= 256 bits
    digest = hash_token(token)
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest == hash_token(token)
    assert token not in digest
    with pytest.raises(ValueError):
        hash_token("")


def test_instance_status_terminal() -> None:
    assert InstanceStatus.is_terminal("completed") and InstanceStatus.is_terminal("cancelled")
    assert not InstanceStatus.is_terminal(InstanceStatus.SUSPENDED)
