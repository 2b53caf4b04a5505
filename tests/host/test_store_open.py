"""open_store URL handling, the public surface, and the token helpers."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import jsflow.host.store as store_pkg
from jsflow.host import hash_token, new_token
from jsflow.host.store import (
    BackendNotAvailableError,
    InstanceStatus,
    MemoryStore,
    PostgresStore,
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


def test_postgres_url_opens_a_postgres_store(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore) and store.schema_version() >= 2
    store.close()
    monkeypatch.setenv("JSFLOW_DB", pg_url.replace("postgresql://", "postgres://", 1))
    with open_store() as again:
        assert isinstance(again, PostgresStore)


def test_sqlalchemy_spelling_is_refused() -> None:
    with pytest.raises(BackendNotAvailableError) as info:
        open_store("postgresql+psycopg://u@h/db")
    assert isinstance(info.value, NotImplementedError) and "postgresql://" in str(info.value)


def test_unreachable_postgres_is_a_store_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError, match="cannot connect"):
        open_store(f"postgresql://nobody@127.0.0.1:{port}/db?connect_timeout=1")


def test_importing_jsflow_does_not_import_psycopg() -> None:
    code = "import sys, jsflow, jsflow.host, jsflow.host.store, jsflow.cli; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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
