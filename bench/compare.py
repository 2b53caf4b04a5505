"""jsflow against DBOS Transact, side by side: prints figures and ratios, asserts nothing.

The figures of issue 10's table, for both systems in one run, on SQLite with
WAL and ``synchronous=NORMAL``; every round runs each system in a fresh
subprocess, alternating (jsflow, DBOS, jsflow, ...), and the table shows
medians of 5 rounds:

1. ten-step workflows/s, one process, sequential (a commit per step for both);
2. event -> next suspension with a journal of about 10 and about 1,000
   entries. jsflow: ``send_event`` returns once the next wait is stored. DBOS:
   ``send``, then ``get_event`` of the event the workflow sets just before its
   next ``recv`` (so DBOS pays one extra write and a poll at 1 ms);
3. start -> first suspension of a workflow with 3 steps then a wait (DBOS:
   ``start_workflow`` until the event set before its ``recv``);
4. RSS of a process holding 1,000 suspended workflows (jsflow keeps them in
   the store plus its warm-run cache, bounded by ``warm_runs`` and
   ``warm_bytes``; DBOS keeps a thread blocked in ``recv`` per workflow).
   ``--only rss`` measures only this (about a minute instead of four).

jsflow is measured twice: as configured by default (warm-run cache on) and
cold (``warm_runs=0``: every delivery boots a sandbox and replays).

DBOS comes from the optional ``bench`` extra (``pip install -e '.[bench]'``);
if it cannot be imported or run, the reason is printed and jsflow's figures
are still shown. Run: ``.venv/bin/python bench/compare.py`` (``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.append(str(Path(__file__).resolve().parent))  # bench/pg.py for the PostgreSQL figure

from workloads import APPROVAL, EVENT_LOOP, TEN_STEPS

ROUNDS = 5
FIGURES = (
    ("ten_step_per_s", "ten-step workflows/s, one process", "{:.0f}", "higher"),
    ("event_10_ms", "event -> next suspension, journal ~10", "{:.2f} ms", "lower"),
    ("event_1000_ms", "same, journal ~1,000", "{:.2f} ms", "lower"),
    ("start_ms", "start -> first suspension (3 steps + a wait)", "{:.2f} ms", "lower"),
    ("rss_mb", "RSS with 1,000 suspended workflows", "{:.0f} MB", "lower"),
)


def _sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {
            "ten": 60, "events": 20, "long": 1000, "long_samples": 5, "starts": 20, "suspended": 1000,
            "xevents": 60,
        }  # fmt: skip
    return {
        "ten": 300, "events": 60, "long": 1000, "long_samples": 20, "starts": 60, "suspended": 1000,
        "xevents": 200,
    }  # fmt: skip


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


# -- jsflow ------------------------------------------------------------------------
def _jsflow_host(url: str, warm_runs: int | None = None) -> Any:
    from jsflow.host import WorkflowHost

    kwargs: dict[str, Any] = {} if warm_runs is None else {"warm_runs": warm_runs}
    host = WorkflowHost(url, hook_secret="bench", **kwargs)
    host.register_step_function("work", lambda n, i: n + i)
    host.register_step_function("note", lambda seen: seen)
    host.register_step_function("fetchOrder", lambda order: {"order": order})
    host.register_step_function("reserve", lambda a: {"reserved": a})
    host.register_step_function("price", lambda b: {"total": 42})
    host.register_script("ten", TEN_STEPS)
    host.register_script("loop", EVENT_LOOP)
    host.register_script("approval", APPROVAL)
    return host


def jsflow_main(url: str, sizes: dict[str, int], warm_runs: int | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    with _jsflow_host(url, warm_runs) as host:
        for i in range(20):
            host.start("ten", i)
        t0 = time.perf_counter()
        for i in range(sizes["ten"]):
            host.start("ten", i)
        out["ten_step_per_s"] = sizes["ten"] / (time.perf_counter() - t0)

        samples = []
        for i in range(sizes["events"]):  # a fresh instance every 5 events: journal 0..10
            wid = f"short{i - i % 5}"
            if i % 5 == 0:
                host.start("loop", workflow_id=wid)
            t0 = time.perf_counter()
            host.send_event(wid, "tick", i)
            samples.append(time.perf_counter() - t0)
        out["event_10_ms"] = _median_ms(samples)

        host.start("loop", workflow_id="long")
        for i in range(sizes["long"] // 2):  # two journal entries per event
            host.send_event("long", "tick", i)
        samples = []
        for i in range(sizes["long_samples"]):
            t0 = time.perf_counter()
            host.send_event("long", "tick", i)
            samples.append(time.perf_counter() - t0)
        out["event_1000_ms"] = _median_ms(samples)

        samples = []
        for i in range(sizes["starts"]):
            t0 = time.perf_counter()
            inst = host.start("approval", i)
            samples.append(time.perf_counter() - t0)
        assert inst.status == "suspended", inst.status
        out["start_ms"] = _median_ms(samples)
    return out


def jsflow_rss(url: str, sizes: dict[str, int], warm_runs: int | None = None) -> dict[str, float]:
    """RSS with 1,000 suspended instances, and what a warm run holds: QuickJS's
    own count (``memory_bytes`` of each cached run, summed by the cache)."""
    host = _jsflow_host(url, warm_runs)
    for i in range(sizes["suspended"]):
        host.start("approval", i)
    out = {"rss_mb": _rss_mb(), "warm_runs": float(len(host.warm))}
    if len(host.warm):
        out["warm_kb"] = host.warm.bytes / len(host.warm) / 1024
    return out


def jsflow_cold_main(url: str, sizes: dict[str, int]) -> dict[str, float]:
    """jsflow with the warm-run cache off: every delivery replays the journal."""
    return jsflow_main(url, sizes, warm_runs=0)


def jsflow_cold_rss(url: str, sizes: dict[str, int]) -> dict[str, float]:
    return jsflow_rss(url, sizes, warm_runs=0)


def jsflow_xevent(url: str, sizes: dict[str, int]) -> dict[str, float]:
    """PostgreSQL only: an event sent in one process until this process sees
    the next suspension (``bench/pg.py``), p50."""
    from pg import event_latency

    return {"xevent_ms": _median_ms(event_latency(url, sizes["xevents"]))}


# -- DBOS --------------------------------------------------------------------------
def _dbos(url: str, polling: float = 0.001) -> Any:
    """DBOS on SQLite with WAL and synchronous=NORMAL (or on PostgreSQL, where
    it is notified), polling at 1 ms for the latency figures (the RSS figure
    polls at 50 ms: a thousand threads waking every millisecond would only
    burn CPU)."""
    import sqlalchemy as sa
    from dbos import DBOS

    @sa.event.listens_for(sa.engine.Engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        if type(dbapi_conn).__module__.startswith("sqlite3"):
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    DBOS(
        config={
            "name": "bench",
            "system_database_url": url,
            "notification_listener_polling_interval_sec": polling,
            "log_level": "WARNING",
        }
    )

    @DBOS.step()
    def work(n: int, i: int) -> int:
        return n + i

    @DBOS.step()
    def note(seen: int) -> int:
        return seen

    @DBOS.step()
    def fetch_order(order: int) -> dict[str, Any]:
        return {"order": order}

    @DBOS.step()
    def reserve(a: dict[str, Any]) -> dict[str, Any]:
        return {"reserved": a}

    @DBOS.step()
    def price(b: dict[str, Any]) -> dict[str, Any]:
        return {"total": 42}

    @DBOS.workflow()
    def ten(n: int) -> int:
        return sum(work(n, i) for i in range(10))

    @DBOS.workflow()
    def loop() -> None:
        seen = 0
        while True:
            DBOS.set_event(f"ready{seen}", seen)  # "suspended": next stop is recv
            DBOS.recv("tick", timeout_seconds=3600)
            seen += 1
            note(seen)

    @DBOS.workflow()
    def approval(order: int) -> Any:
        price(reserve(fetch_order(order)))
        DBOS.set_event("ready", True)
        return DBOS.recv("decision", timeout_seconds=3600)

    DBOS.launch()
    return DBOS, {"ten": ten, "loop": loop, "approval": approval}


def dbos_main(url: str, sizes: dict[str, int]) -> dict[str, float]:
    dbos, wf = _dbos(url)
    out: dict[str, float] = {}
    for i in range(20):
        wf["ten"](i)
    t0 = time.perf_counter()
    for i in range(sizes["ten"]):
        wf["ten"](i)
    out["ten_step_per_s"] = sizes["ten"] / (time.perf_counter() - t0)

    def start_loop() -> str:
        wid = dbos.start_workflow(wf["loop"]).workflow_id
        dbos.get_event(wid, "ready0", timeout_seconds=30)
        return wid

    def event(wid: str, seen: int) -> float:
        t0 = time.perf_counter()
        dbos.send(wid, seen, "tick")
        dbos.get_event(wid, f"ready{seen + 1}", timeout_seconds=30)
        return time.perf_counter() - t0

    samples = []
    wid, seen = "", 0
    for i in range(sizes["events"]):  # a fresh workflow every 3 events: 3 entries each
        if i % 3 == 0:
            wid, seen = start_loop(), 0
        samples.append(event(wid, seen))
        seen += 1
    out["event_10_ms"] = _median_ms(samples)

    wid = start_loop()
    primed = sizes["long"] // 3
    for seen in range(primed):
        event(wid, seen)
    samples = [event(wid, primed + k) for k in range(sizes["long_samples"])]
    out["event_1000_ms"] = _median_ms(samples)

    samples = []
    for i in range(sizes["starts"]):
        t0 = time.perf_counter()
        wid = dbos.start_workflow(wf["approval"], i).workflow_id
        dbos.get_event(wid, "ready", timeout_seconds=30)
        samples.append(time.perf_counter() - t0)
    out["start_ms"] = _median_ms(samples)
    return out


def dbos_rss(url: str, sizes: dict[str, int]) -> dict[str, float]:
    dbos, wf = _dbos(url, polling=0.05)
    ids = [dbos.start_workflow(wf["approval"], i).workflow_id for i in range(sizes["suspended"])]
    for wid in ids:
        dbos.get_event(wid, "ready", timeout_seconds=120)
    return {"rss_mb": _rss_mb()}


WORKERS: dict[str, Callable[[str, dict[str, int]], dict[str, float]]] = {
    "jsflow-xevent": jsflow_xevent,
    "jsflow-main": jsflow_main,
    "jsflow-rss": jsflow_rss,
    "jsflow_cold-main": jsflow_cold_main,
    "jsflow_cold-rss": jsflow_cold_rss,
    "dbos-main": dbos_main,
    "dbos-rss": dbos_rss,
}


def worker(name: str, quick: bool, url: str | None) -> None:
    """One measurement in this process; prints one JSON line and exits hard
    (DBOS leaves executor threads blocked in recv, which would keep it alive).
    Without ``url`` the database is a fresh SQLite file."""
    with tempfile.TemporaryDirectory() as d:
        figures = WORKERS[name](url or f"sqlite:///{Path(d) / 'bench.db'}", _sizes(quick))
        print(json.dumps(figures), flush=True)
    os._exit(0)


# -- the runner --------------------------------------------------------------------
@contextmanager
def _fresh_database(server: str | None) -> Iterator[str | None]:
    """A database of its own on the PostgreSQL server ``server`` (created, then
    dropped with whatever the worker left connected); None for SQLite."""
    if server is None:
        yield None
        return
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_worker(name: str, quick: bool, db: str | None) -> tuple[dict[str, float] | None, str]:
    with _fresh_database(db) as url:
        cmd = [sys.executable, __file__, "--worker", name] + (["--quick"] if quick else [])
        cmd += ["--url", url] if url else []
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            return None, f"{name} timed out after 900 s"
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{name} failed (exit {done.returncode}): {tail}"
    return json.loads(lines[-1]), ""


def _dbos_available() -> str:
    try:
        import dbos
    except ImportError as exc:
        return f"DBOS is not installed ({exc}); install the bench extra: pip install -e '.[bench]'"
    return f"DBOS {getattr(dbos, '__version__', '') or _dist_version('dbos')}"


def _dist_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"alternating rounds (default {ROUNDS})")
    parser.add_argument(
        "--db", help="postgresql://... : run both systems on this server (a fresh database each)"
    )
    parser.add_argument(
        "--only", choices=("rss",), help="rss: only the RSS with 1,000 suspended workflows (and per warm run)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = _args()
    if args.worker:
        worker(args.worker, args.quick, args.url)
        return
    dbos_note = _dbos_available()
    dbos_ok = dbos_note.startswith("DBOS ")
    where = "PostgreSQL (fsync as the server is configured)" if args.db else "SQLite, WAL, synchronous=NORMAL"
    load = os.getloadavg()
    print(
        f"jsflow vs {dbos_note if dbos_ok else 'DBOS'}: {where}; medians of {args.rounds} alternating "
        f"rounds, each system in a fresh process; {os.cpu_count()} CPUs, load average {load[0]:.2f}"
    )
    if not dbos_ok:
        print(f"  DBOS figures skipped: {dbos_note}")
    rounds = run_rounds(args, dbos_ok)
    _print_table(rounds)
    print_targets(rounds, postgres=bool(args.db))
    print(f"  load average at the end: {os.getloadavg()[0]:.2f}")


def run_rounds(args: argparse.Namespace, dbos_ok: bool) -> dict[str, list[dict[str, float]]]:
    """Every round runs each system's workers once, in a rotating order."""
    rounds: dict[str, list[dict[str, float]]] = {"jsflow": [], "jsflow_cold": [], "dbos": []}
    failures: list[str] = []
    order = ("jsflow", "dbos", "jsflow_cold")
    for r in range(args.rounds):
        for system in order[r % 3 :] + order[: r % 3]:
            if system == "dbos" and not dbos_ok:
                continue
            merged: dict[str, float] = {}
            parts = ("main", "rss", "xevent") if system == "jsflow" and args.db else ("main", "rss")
            if args.only:
                parts = (args.only,)
            for part in parts:
                figures, error = _run_worker(f"{system}-{part}", args.quick, args.db)
                if figures is None:
                    failures.append(error)
                else:
                    merged.update(figures)
            rounds[system].append(merged)
        print(f"  round {r + 1}/{args.rounds} done", flush=True)
    for line in dict.fromkeys(failures):
        print(f"  failed: {line}")
    return rounds


def _median(rows: list[dict[str, float]], key: str) -> float | None:
    values = [row[key] for row in rows if key in row]
    return statistics.median(values) if values else None


def _ratio(ours: float | None, theirs: float | None, better: str) -> str:
    if ours is None or not theirs:
        return ""
    value = ours / theirs
    if better == "higher":
        return f"{value:.2f}x ({'faster' if value >= 1 else 'slower'})"
    return f"{value:.2f} ({'better' if value <= 1 else 'worse'})"


def _print_table(rounds: dict[str, list[dict[str, float]]]) -> None:
    """jsflow as configured by default (warm-run cache on), jsflow with the
    cache off (cold: every delivery replays), DBOS, and both ratios to DBOS."""
    widths = (44, 9, 9, 9, 17, 17)
    heads = ("figure", "jsflow", "cold", "DBOS", "jsflow/DBOS", "cold/DBOS")
    cells = [heads[0].ljust(widths[0])] + [h.rjust(w) for h, w in zip(heads[1:], widths[1:], strict=True)]
    print("\n| " + " | ".join(cells) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for key, label, fmt, better in FIGURES:
        warm, cold, theirs = (_median(rounds[s], key) for s in ("jsflow", "jsflow_cold", "dbos"))
        if warm is None and cold is None and theirs is None:
            continue  # not measured (--only)
        cells = [fmt.format(v) if v is not None else "n/a" for v in (warm, cold, theirs)]
        print(
            f"| {label:<44} | {cells[0]:>9} | {cells[1]:>9} | {cells[2]:>9} | "
            f"{_ratio(warm, theirs, better):>17} | {_ratio(cold, theirs, better):>17} |"
        )


def _target_rows(
    rounds: dict[str, list[dict[str, float]]], postgres: bool
) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, verdict) for issue 22's table."""
    med = {s: {k: _median(rounds[s], k) for k in KEYS} for s in rounds}
    rows: list[tuple[str, str, str, str]] = []

    def ratio(label: str, key: str, target: float, higher: bool) -> None:
        ours, theirs = med["jsflow"][key], med["dbos"][key]
        if ours is None or not theirs:
            rows.append((label, "n/a", "", ""))
            return
        value = ours / theirs
        ok = value >= target if higher else value <= target
        sign = ">=" if higher else "<="
        rows.append((label, f"{value:.2f}x DBOS", f"{sign} {target}x", "met" if ok else "missed"))

    def absolute(label: str, value: float | None, unit: str, target: float) -> None:
        if value is None:
            rows.append((label, "n/a", "", ""))
            return
        verdict = "met" if value <= target else "missed"
        rows.append((label, f"{value:.2f} {unit}", f"<= {target} {unit}", verdict))

    ratio("ten-step workflows/s", "ten_step_per_s", 10, True)
    ratio("start -> first suspension", "start_ms", 0.1, False)
    ratio("RSS of 1,000 suspended instances, warm", "rss_mb", 0.5, False)
    absolute("warm run, QuickJS memory", med["jsflow"]["warm_kb"], "KB", 300)
    warm_rss = med["jsflow"]["rss_mb"]
    cold_rss, count = med["jsflow_cold"]["rss_mb"], med["jsflow"]["warm_runs"]
    per_run = (warm_rss - cold_rss) * 1024 / count if warm_rss and cold_rss and count else None
    absolute("warm run, RSS (warm - cold RSS per cached run)", per_run, "KB", 300)
    if postgres:
        absolute("cross-process event -> suspension p50", med["jsflow"]["xevent_ms"], "ms", 5)
    return rows


KEYS = ("ten_step_per_s", "start_ms", "rss_mb", "warm_kb", "warm_runs", "xevent_ms")


def print_targets(rounds: dict[str, list[dict[str, float]]], postgres: bool) -> None:
    """Issue 22's figures with their targets: ratios to DBOS and absolute ones."""
    print(f"\nTargets ({'PostgreSQL' if postgres else 'SQLite'}):")
    print(f"| {'figure':<48} | {'jsflow':>16} | {'target':>12} | {'':>6} |")
    print(f"| {'-' * 48} | {'-' * 16} | {'-' * 12} | {'-' * 6} |")
    for label, value, target, verdict in _target_rows(rounds, postgres):
        print(f"| {label:<48} | {value:>16} | {target:>12} | {verdict:>6} |")


if __name__ == "__main__":
    main()
