"""Transient store failures never fault a workflow: a killed PostgreSQL backend, a
restarted server under load, SQLite's write lock held past the busy timeout.

The store retries with backoff (tenacity) and, if the trouble persists, raises
``StoreUnavailableError``; the driver then abandons the turn unfaulted and
recovery (a worker pass after the lease) carries the instance on.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_cluster import ClusterError, cluster, find_bindir, restart

from jsflow.host import WorkflowHost
from jsflow.host.store import SQLiteStore, StoreUnavailableError, open_store

STEPS = """
async function main(n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await tick(i));
  return out;
}
"""


def _terminate_jsflow_backends(admin_url: str) -> int:
    """What an operator or a failover does: end every jsflow session (not ours)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE 'jsflow%' AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_killed_backends_mid_run_do_not_fault(pg_url: str, pg_server: str) -> None:
    """Every jsflow connection is terminated while a step runs; the next journal
    writes meet dead pooled connections, retry on fresh ones, and the run completes."""
    killed: list[int] = []

    def tick(i: int) -> int:
        if i in (1, 3):
            killed.append(_terminate_jsflow_backends(pg_server))
        return i * 10

    with WorkflowHost(pg_url) as host:
        host.register_step_function("tick", tick)
        host.register_script("steps", STEPS)
        for run in range(3):
            done = host.start("steps", 5, workflow_id=f"wf-{run}")
            assert done.status == "completed", done.error
            assert done.value == [0, 10, 20, 30, 40]
        assert all(n >= 1 for n in killed)
        counts = host.count_by_status()
        assert counts["completed"] == 3 and counts["faulted"] == 0


def test_sqlite_lock_held_past_busy_timeout_is_retried(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock longer than the busy timeout: the
    host waits (backoff) instead of failing, and the workflow completes."""
    path = tmp_path / "locked.db"
    store = SQLiteStore(path, busy_timeout_ms=50)
    with WorkflowHost(store) as host:
        host.register_script("steps", STEPS)
        host.register_step_function("tick", lambda i: i)
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.6, holder.execute, args=("COMMIT",))
        release.start()
        try:
            done = host.start("steps", 3, workflow_id="wf")
        finally:
            release.join()
            holder.close()
        assert done.status == "completed"


def test_sqlite_lock_held_too_long_is_unavailable_not_a_fault(tmp_path: Path) -> None:
    """The lock outlasts the retry window: ``StoreUnavailableError`` reaches the
    caller, the instance is not faulted, and it completes once the lock is gone."""
    path = tmp_path / "locked.db"
    store = SQLiteStore(path, busy_timeout_ms=20)
    store.transient_retry_seconds = 0.3
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    in_step = threading.Event()

    def tick(i: int) -> int:
        if i == 1 and not in_step.is_set():
            in_step.set()
            holder.execute("BEGIN IMMEDIATE")  # the next journal write cannot get the lock
        return i

    with WorkflowHost(store, lease=timedelta(milliseconds=200)) as host:
        host.register_script("steps", STEPS)
        host.register_step_function("tick", tick)
        with pytest.raises(StoreUnavailableError) as info:
            host.start("steps", 3, workflow_id="wf")
        assert info.value.backend == "sqlite" and info.value.retried_for > 0
        holder.execute("COMMIT")
        holder.close()
        assert host.get("wf").status != "faulted"
        time.sleep(0.3)  # past the lease: the abandoned run is stale
        host.run_due()
        final = host.get("wf")
        assert final.status == "completed", final.error
        assert final.value == [0, 1, 2]


# -- a PostgreSQL restart under load ------------------------------------------------------


@pytest.fixture
def own_cluster() -> Iterator[str]:
    """A cluster of this test's own, since it is restarted (the shared one is not)."""
    if find_bindir() is None:
        pytest.skip("no PostgreSQL server binaries to start a cluster that can be restarted")
    try:
        with cluster() as url:
            yield url
    except ClusterError as exc:
        pytest.fail(str(exc))


def _run_all(hosts: list[WorkflowHost], count: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(index: int, host: WorkflowHost) -> None:
        for n in range(count):
            wid = f"wf-{index}-{n}"
            try:
                host.start("steps", 6, workflow_id=wid)
            except StoreUnavailableError:
                # Allowed: the call failed and says so. The instance may or may
                # not have been created (the outage can strike before or after
                # the create committed), so the caller does what a caller
                # should: starts it again once the store is back. A start with
                # the same id, script and arguments returns the existing one,
                # whose abandoned turn recovery carries on.
                _start_again(host, wid, errors)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, h)) for i, h in enumerate(hosts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _start_again(host: WorkflowHost, wid: str, errors: list[BaseException]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            host.start("steps", 6, workflow_id=wid)
            return
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        except BaseException as exc:
            errors.append(exc)
            return


def test_server_restart_under_load_faults_nothing(own_cluster: str) -> None:
    def slow_tick(i: int) -> int:
        time.sleep(0.01)
        return i

    make: Callable[[], WorkflowHost] = lambda: WorkflowHost(own_cluster, lease=timedelta(seconds=1))  # noqa: E731
    hosts = [make() for _ in range(4)]
    for host in hosts:
        host.register_step_function("tick", slow_tick)
        host.register_script("steps", STEPS)
    restarter = threading.Timer(0.4, restart, args=(own_cluster,), kwargs={"down_seconds": 1.0})
    restarter.start()
    try:
        errors = _run_all(hosts, 8)
    finally:
        restarter.join()
    assert errors == []
    time.sleep(1.2)  # past the lease: abandoned runs are stale now
    deadline = time.monotonic() + 60
    counts: dict[str, Any] = {}
    while time.monotonic() < deadline:
        hosts[0].run_due()
        counts = hosts[0].count_by_status()
        if counts.get("completed") == 32:
            break
        time.sleep(1.1)
    for host in hosts:
        host.close()
    assert counts.get("faulted") == 0, counts
    assert counts.get("completed") == 32, counts


def test_outage_longer_than_the_retry_window_is_unavailable(own_cluster: str) -> None:
    """The server stays down past the retry window: the caller gets
    ``StoreUnavailableError`` (HTTP 503, retry later), nothing is faulted, and a
    worker pass after the outage completes the instance."""
    store = open_store(own_cluster)
    store.transient_retry_seconds = 0.5  # type: ignore[attr-defined]
    outage = threading.Event()

    def tick(i: int) -> int:
        if i == 2 and not outage.is_set():
            outage.set()
            threading.Thread(target=restart, args=(own_cluster,), kwargs={"down_seconds": 2.5}).start()
            time.sleep(0.5)  # the server is stopping or stopped when the next write comes
        return i

    with WorkflowHost(store, lease=timedelta(seconds=1)) as host:
        host.register_step_function("tick", tick)
        host.register_script("steps", STEPS)
        with pytest.raises(StoreUnavailableError) as info:
            host.start("steps", 4, workflow_id="wf")
        assert info.value.backend == "postgresql"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                host.run_due()
                final = host.get("wf")
            except StoreUnavailableError:
                time.sleep(0.5)
                continue
            if final.status == "completed":
                break
            time.sleep(0.5)
        assert final.status == "completed", final.error
        assert final.value == [0, 1, 2, 3]


def test_worker_survives_an_outage(own_cluster: str) -> None:
    """A worker loop outlives a database outage longer than the retry window and
    fires the timer that came due meanwhile once the database is back."""
    store = open_store(own_cluster)
    store.transient_retry_seconds = 0.3  # type: ignore[attr-defined]
    with WorkflowHost(store) as host:
        host.register_script("nap", "async function main() { await sleep('2s'); return 'woke'; }")
        host.start("nap", workflow_id="nap")
        stop = threading.Event()
        worker = threading.Thread(target=host.worker, args=(0.2, stop), daemon=True)
        worker.start()
        restart(own_cluster, down_seconds=3.0)
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            try:
                status = host.get("nap").status
            except StoreUnavailableError:
                status = "unavailable"
            if status == "completed":
                break
            time.sleep(0.3)
        stop.set()
        worker.join(10)
        assert status == "completed"
        assert host.get("nap").value == "woke"


def test_listen_outage_is_logged_once_and_the_return_too(own_cluster: str, caplog: Any) -> None:
    """While the server is down the change listener retries with a growing pause
    and logs the loss once (with its cause), not a traceback per attempt; when
    the server is back it says so, and waiters hear changes again."""
    store = open_store(own_cluster)
    try:
        store.wait_for_change(0.01)  # starts the listener
        with caplog.at_level("INFO", logger="jsflow"):
            restart(own_cluster, down_seconds=3.0)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                "LISTEN connection back" in r.getMessage() for r in caplog.records
            ):
                time.sleep(0.2)
        lost = [r for r in caplog.records if "LISTEN connection lost" in r.getMessage()]
        back = [r for r in caplog.records if "LISTEN connection back" in r.getMessage()]
        assert len(lost) == 1, [r.getMessage() for r in caplog.records]
        assert lost[0].exc_info is not None
        assert len(back) == 1
        assert not [r for r in caplog.records if "still reconnecting" in r.getMessage()]  # < 60 s
    finally:
        store.close()
