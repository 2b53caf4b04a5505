"""Host benchmark on SQLite (WAL, synchronous=NORMAL) or PostgreSQL: prints figures, asserts nothing.

1. Ten-step workflows completed per second, with a commit per step completion
   (the write-ahead journal). Target: >= 1,000/s on a 2-core machine.
2. Event delivery latency: ``send_event`` until the workflow's next
   suspension is stored (median). Target: <= 2 ms.
3. Store size per suspended workflow (bytes of database file per instance).

Run: ``.venv/bin/python bench/host.py`` (``--quick`` for fewer workflows).

With ``--db postgresql://...`` (see ``bench/pg.py``): ten-step workflows/s
with 1, 2 and 4 worker processes sharing the database, and cross-process
event latency (sender in one process, the next suspension observed in
another through ``store.wait_for_change``), p50/p99. A throwaway server::

    python tests/pg_cluster.py --durable -- python bench/host.py --db ENV
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from workloads import EVENT_LOOP, TEN_STEPS

from jsflow.host import WorkflowHost

SUSPENDED = """
async function main(order) {
  const quote = await price(order);
  const decision = await waitForEvent(['approved', 'rejected'], {timeout: '7d'});
  return {quote, decision};
}"""


def _host(path: Path) -> WorkflowHost:
    host = WorkflowHost(f"sqlite:///{path}", hook_secret="bench")
    host.register_step_function("work", lambda n, i: n + i)
    host.register_step_function("note", lambda seen: seen)
    host.register_step_function("price", lambda order: {"amount": order["amount"] * 2})
    return host


def bench_throughput(tmp: Path, count: int) -> float:
    with _host(tmp / "throughput.db") as host:
        host.register_script("ten", TEN_STEPS)
        for i in range(20):  # warm up
            host.start("ten", i)
        t0 = time.perf_counter()
        for i in range(count):
            inst = host.start("ten", i)
        elapsed = time.perf_counter() - t0
        assert inst.status == "completed"
    return count / elapsed


def bench_event_latency(tmp: Path, count: int, every: int = 10) -> list[float]:
    """A fresh instance every ``every`` events keeps the replayed journal short
    (2 entries per event), as a long-lived workflow would with continueAsNew."""
    with _host(tmp / f"events{every}.db") as host:
        host.register_script("loop", EVENT_LOOP)
        samples = []
        for i in range(count):
            wid = f"loop{i - i % every}"
            if i % every == 0:
                host.start("loop", workflow_id=wid)
            t0 = time.perf_counter()
            receipt = host.send_event(wid, "tick", i)
            samples.append(time.perf_counter() - t0)
            assert receipt.delivered
    return samples


def bench_store_size(tmp: Path, count: int) -> float:
    path = tmp / "size.db"
    with _host(path) as host:
        host.register_script("suspended", SUSPENDED)
        host.store.close()  # measure an empty schema first
    empty = _db_bytes(path)
    with _host(path) as host:
        for i in range(count):
            host.start("suspended", {"id": i, "amount": 10 + i})
        conn = host.store.checkout()  # flush the WAL into the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        host.store.checkin(conn, True)
    return (_db_bytes(path) - empty) / count


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if "secret" not in p.name)


def main() -> None:
    quick = "--quick" in sys.argv
    if "--db" in sys.argv:
        from pg import main as pg_main  # bench/ is on sys.path when run as a script

        pg_main(sys.argv[sys.argv.index("--db") + 1], quick)
        return
    n = 300 if quick else 2000
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rate = bench_throughput(tmp, n)
        lat = bench_event_latency(tmp, 200 if quick else 1000)
        lat_long = bench_event_latency(tmp, 200 if quick else 400, every=200)
        size = bench_store_size(tmp, 200 if quick else 1000)
    print("jsflow host benchmark (SQLite, WAL, synchronous=NORMAL, commit per step)")
    print(f"  ten-step workflows completed:    {rate:8.0f} /s   (target >= 1,000/s)")
    med, p90 = statistics.median(lat) * 1e3, sorted(lat)[int(len(lat) * 0.9)] * 1e3
    print(f"  event delivery -> next suspend:  {med:8.2f} ms median, {p90:.2f} ms p90   (target <= 2 ms)")
    print(f"    (journal up to 400 entries:    {statistics.median(lat_long) * 1e3:8.2f} ms median)")
    print(f"  store size per suspended wf:     {size:8.0f} bytes")


if __name__ == "__main__":
    main()
