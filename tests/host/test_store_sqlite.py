"""SQLite-specific behaviour: several processes on one file, driver-error translation."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from jsflow.host.store import ConcurrencyError, SQLiteStore, StoreError, StoreUnavailableError
from jsflow.testing import create, each, timer

WORKER = Path(__file__).with_name("_claim_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_claim_each_timer_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    store = SQLiteStore(db)
    for n in range(50):
        create(store, f"wf-{n}")
        each(store).replace_waits(f"wf-{n}", [timer(i, n + i) for i in range(10)])
    store.close()
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(WORKER.parent)])}
    children = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(db), f"p{i}", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        results = []
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            results.append([tuple(key) for key in json.loads(out)])
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    everything = [key for result in results for key in result]
    assert len(everything) == 500
    assert len(set(everything)) == 500
    assert all(results), [len(r) for r in results]  # both processes really competed


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a sqlite file" * 100)
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert str(path) in str(info.value)


def test_lock_timeout_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SQLiteStore(path, busy_timeout_ms=50)
    store.transient_retry_seconds = 0.3
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError) as info:
            each(store).put_script("s", "x")
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert "locked" in str(info.value)
        assert each(store).get_script("s") is None  # readers are not blocked (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert each(store).put_script("s", "x").name == "s"  # the store recovers
    store.close()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    with store.transaction() as tx:
        query = tx.query  # type: ignore[attr-defined]
        assert query("PRAGMA journal_mode")[0][0] == "wal"
        assert query("PRAGMA foreign_keys")[0][0] == 1
        assert query("PRAGMA busy_timeout")[0][0] == 5000
        assert query("PRAGMA synchronous")[0][0] == 1  # NORMAL
    store.close()


def test_memory_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SQLiteStore(":memory:")


def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    record = create(first)
    again, created = each(second).create_workflow(record)
    assert not created and again == record
    each(second).save_workflow(record)
    with pytest.raises(ConcurrencyError) as info:
        each(first).save_workflow(record)
    assert (info.value.expected, info.value.actual) == (1, 2)
    first.close()
    second.close()


def test_save_is_right_when_another_store_changed_the_status(tmp_path: Path) -> None:
    """Each store remembers the status it last saved to pick a cheaper UPDATE; a
    stale memory must never leave a wrong status or skip the version check."""
    a, b = SQLiteStore(tmp_path / "x.db"), SQLiteStore(tmp_path / "x.db")
    try:
        record = create(a, status="running")
        moved = each(b).save_workflow(replace(each(b).get_workflow("wf-1"), status="suspended"))  # type: ignore[arg-type]
        assert moved.version == 2
        with pytest.raises(ConcurrencyError):
            each(a).save_workflow(replace(record, state='{"v":1}'))  # stale version, same status
        saved = each(a).save_workflow(replace(record, state='{"v":2}'), expected_version=2)
        assert (saved.status, saved.version) == ("running", 3)
        assert each(b).get_workflow("wf-1") == saved
        each(b).save_workflow(replace(saved, status="suspended"))
        again = each(a).save_workflow(replace(saved, status="running", state='{"v":3}'), expected_version=4)
        assert each(b).get_workflow("wf-1") == again and again.status == "running"
        other = each(b).put_script("greet", "export async function main(x) { return 2; }")
        each(b).save_workflow(replace(again, script_hash=other.hash))  # b moves it to another version
        done = each(a).save_workflow(replace(again, status="completed"), expected_version=6)
        assert (done.status, done.script_hash) == ("completed", again.script_hash)
        assert each(b).get_workflow("wf-1") == done  # a's own version again, saved in full
    finally:
        a.close()
        b.close()
