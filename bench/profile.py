"""Where the time goes, by layer: prints a table per scenario, asserts nothing.

Scenarios (SQLite file, WAL, ``synchronous=NORMAL``, as ``bench/compare.py``):

1. ``ten-step``: ``host.start`` of a ten-step workflow that completes (a
   commit per step);
2. ``start``: ``host.start`` until the first suspension (3 steps, then a wait);
3. ``event``: ``POST /v1/workflows/{id}/events/tick`` over real HTTP, against
   ``create_app`` under uvicorn in this process (a thread), including the
   delivery the server runs after its reply. The client is a plain socket in
   the main thread and is not profiled.

Every thread that runs the scenario's work is profiled with ``cProfile`` (one
profiler per thread, started by a ``threading.setprofile`` hook, so the
server's event loop and its engine and read pools are all seen). Each
function's own time (cProfile's tottime) goes to the layer its code lives in;
C functions (QuickJS, sqlite3, psycopg, json) count for the layer that owns
them, others (``isinstance``, ``copy``, ``dataclasses``) count for their caller's
layer. The profilers' clock is each thread's CPU time (``time.thread_time``):
time blocked in a lock, a queue or ``epoll`` costs nothing, and what the
machine's load does to wall time does not count. cProfile inflates
Python-heavy layers, so the ``ms/op`` column scales each layer's share to
the CPU time per operation measured without the profiler
(``time.process_time``; in the HTTP scenario that includes the client, so it
is an upper bound for the server).

Run: ``.venv/bin/python bench/profile.py`` (``--quick``; ``--top N`` also lists
the N most expensive functions per scenario; ``--only event``).
"""

from __future__ import annotations

import _lsprof
import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Run as a script, this file's directory is sys.path[0]: keep the standard
# library's ``profile`` module reachable (this file has its name).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.modules.pop("profile", None)

from jsflow.host import WorkflowHost  # noqa: E402

sys.path.append(str(_HERE))
from workloads import APPROVAL, TEN_STEPS  # noqa: E402

TICKER = "async function main() { for (;;) { await waitForEvent('tick'); } }"
KEY = "bench-key"

_ROOT = str(Path(__file__).resolve().parent.parent)
# (layer, test on a code's file name or a C function's description), first match wins
_THREADS = ("/asyncio/", "/concurrent/", "threading.py", "_queue.", "_asyncio.", "_thread.")
_NET = ("_socket.", "/socket.py", "/selectors.py", "'select.")
LAYERS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("js_runtime: QuickJS (C)", lambda f: "_quickjs" in f or ("quickjs" in f and f.startswith("<"))),
    ("js_runtime: sandbox (Python)", lambda f: "/js_runtime/" in f),
    ("store: SQL driver (C)", lambda f: f.startswith("<") and ("sqlite3" in f or "psycopg" in f)),
    ("store: SQL driver (Python)", lambda f: "/psycopg" in f or "/sqlite3/" in f),
    ("store (jsflow.host.store)", lambda f: "/jsflow/host/store/" in f),
    ("host driver (jsflow.host)", lambda f: "/jsflow/host/" in f),
    ("server (jsflow.server)", lambda f: "/jsflow/server/" in f),
    ("engine + bridge (jsflow)", lambda f: "/jsflow/" in f),
    ("json codec", lambda f: "/json/" in f or "_json" in f or "orjson" in f or "msgspec" in f),
    ("pydantic", lambda f: "pydantic" in f),
    (
        "web stack (fastapi, starlette, uvicorn)",
        lambda f: any(k in f for k in ("/fastapi", "/starlette", "/uvicorn", "/h11", "httptools", "/anyio")),
    ),
    (
        "asyncio, threads",
        lambda f: any(k in f for k in _THREADS),
    ),
    ("network (sockets, epoll)", lambda f: any(k in f for k in _NET)),
    ("other", lambda f: True),
)


def layer_of(where: str) -> str:
    for name, test in LAYERS:
        if test(where):
            return name
    return "other"


_STDLIB = str(Path(os.__file__).parent)


def _inherits(code: Any) -> bool:
    """C functions, generated code (a dataclass ``__init__``) and standard
    library helpers (copy, dataclasses, typing) that no layer owns count for
    the layer that calls them."""
    where = _where(code)
    if layer_of(where) != "other":
        return False
    return isinstance(code, str) or where.startswith("<") or where.startswith(_STDLIB)


def _where(code: Any) -> str:
    return code if isinstance(code, str) else code.co_filename


def _label(code: Any) -> str:
    if isinstance(code, str):
        return code
    return f"{code.co_filename.replace(_ROOT + '/', '')}:{code.co_firstlineno}({code.co_name})"


# -- profiling every thread ---------------------------------------------------------------
class AllThreads:
    """One ``_lsprof.Profiler`` per thread: the calling thread's now, every
    thread started later's at its first event (``threading.setprofile``)."""

    def __init__(self) -> None:
        self.profilers: list[_lsprof.Profiler] = []
        self._lock = threading.Lock()

    def _bootstrap(self, *_: Any) -> None:
        sys.setprofile(None)
        self._start()

    def _start(self) -> None:
        prof = _lsprof.Profiler(time.thread_time)  # CPU time of this thread: waiting costs nothing
        with self._lock:
            self.profilers.append(prof)
        prof.enable()

    def enable(self, this_thread: bool) -> None:
        threading.setprofile(self._bootstrap)
        if this_thread:
            self._start()

    def stats(self) -> list[Any]:
        """Completed calls of every thread so far (a thread's profiler is read,
        not stopped: a profiler can be disabled only by its own thread)."""
        threading.setprofile(None)
        rows: list[Any] = []
        for prof in self.profilers:
            rows.extend(prof.getstats())
        return rows


def _owners(rows: list[Any]) -> dict[Any, str]:
    """The layer of each unowned Python function: its callers' layer, the one
    it spent most time for (a few rounds, for chains of helpers)."""
    weights: dict[Any, dict[Any, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        for sub in row.calls or ():
            if not isinstance(sub.code, str) and _inherits(sub.code):
                weights[sub.code][row.code] += sub.totaltime
    owners: dict[Any, str] = {}
    for _ in range(6):
        for code, callers in weights.items():
            votes: dict[str, float] = defaultdict(float)
            for caller, spent in callers.items():
                votes[_layer(caller, owners)] += spent
            owners[code] = max(votes, key=lambda k: votes[k])
    return owners


def _layer(code: Any, owners: dict[Any, str]) -> str:
    return owners.get(code, "other") if _inherits(code) else layer_of(_where(code))


def by_layer(rows: list[Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Own time per layer and per function; a C function's
    time goes to its caller's layer call site by call site."""
    owners = _owners(rows)
    layers: dict[str, float] = defaultdict(float)
    funcs: dict[str, float] = defaultdict(float)

    def add(code: Any, layer: str, spent: float) -> None:
        layers[layer] += spent
        funcs[f"{layer}: {_label(code)}"] += spent

    for row in rows:
        layer = _layer(row.code, owners)
        if not isinstance(row.code, str):
            add(row.code, layer, row.inlinetime)
        for sub in row.calls or ():
            if isinstance(sub.code, str):
                add(sub.code, _layer(sub.code, owners) if not _inherits(sub.code) else layer, sub.inlinetime)
    return layers, funcs


#: the layers of an HTTP request that are not the host call (json and pydantic
#: are shared with the host, so this is a lower bound)
SERVER_LAYERS = (
    "server (jsflow.server)",
    "web stack (fastapi, starlette, uvicorn)",
    "asyncio, threads",
    "network (sockets, epoll)",
)


def print_table(title: str, ops: int, cpu_per_op: float, layers: dict[str, float]) -> None:
    total = sum(layers.values()) or 1.0
    print(f"\n{title}: {ops} ops, {cpu_per_op * 1e3:.3f} ms CPU/op unprofiled")
    print(f"| {'layer':<40} | {'share':>6} | {'ms/op':>7} |")
    print(f"| {'-' * 40} | {'-' * 6} | {'-' * 7} |")
    for name, spent in sorted(layers.items(), key=lambda kv: -kv[1]):
        share = spent / total
        print(f"| {name:<40} | {share:6.1%} | {share * cpu_per_op * 1e3:7.3f} |")
    server = sum(layers.get(name, 0.0) for name in SERVER_LAYERS) / total
    if layers.get("server (jsflow.server)"):
        print(
            f"  server beyond the host call (server, web stack, asyncio, network): "
            f"{server * cpu_per_op * 1e3:.3f} ms/op (target <= 0.9 ms)"
        )


def print_top(funcs: dict[str, float], cpu_per_op: float, top: int) -> None:
    """The ``top`` most expensive functions, own time scaled like the table."""
    total = sum(funcs.values()) or 1.0
    for name, spent in sorted(funcs.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {spent / total:6.1%} {spent / total * cpu_per_op * 1e6:7.1f} us/op  {name}")


# -- scenarios ----------------------------------------------------------------------------
def _host(path: Path) -> WorkflowHost:
    host = WorkflowHost(f"sqlite:///{path}", hook_secret="bench")
    host.register_step_function("work", lambda n, i: n + i)
    host.register_step_function("fetchOrder", lambda order: {"order": order})
    host.register_step_function("reserve", lambda a: {"reserved": a})
    host.register_step_function("price", lambda b: {"total": 42})
    host.register_script("ten", TEN_STEPS)
    host.register_script("approval", APPROVAL)
    host.register_script("ticker", TICKER)
    return host


@contextmanager
def _server(host: WorkflowHost) -> Iterator[int]:
    """``create_app(host)`` under uvicorn in a thread of this process, as
    ``jsflow serve`` runs it; yields the port."""
    import uvicorn

    from jsflow.server import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(host, api_keys=[KEY], rate_limit="100000000/minute", worker=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


class _Http:
    """A keep-alive HTTP/1.1 client on a raw socket: cheap enough not to hide the server."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def post(self, path: str, body: bytes) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        status = int(self.file.readline().split()[1])
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.file.read(length)
        return status

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def scenario_ten(host: WorkflowHost, n: int) -> Callable[[int], None]:
    for i in range(20):
        host.start("ten", i)
    return lambda i: host.start("ten", i) and None


def scenario_start(host: WorkflowHost, n: int) -> Callable[[int], None]:
    for i in range(20):
        host.start("approval", i)
    return lambda i: host.start("approval", i) and None


class HostCalls:
    """The CPU time of the threads running ``store_event`` and ``deliver_events``,
    inside those calls: what the server spends beyond them is the rest of the
    process's CPU (measured, not scaled from a profile)."""

    def __init__(self, host: WorkflowHost) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._host = host
        self._originals = (host.store_event, host.deliver_events)
        host.store_event = self._timed(host.store_event)  # type: ignore[method-assign]
        host.deliver_events = self._timed(host.deliver_events)  # type: ignore[method-assign]

    def _timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - t0
                with self._lock:
                    self.seconds += spent

        return timed

    def restore(self) -> None:
        self._host.store_event, self._host.deliver_events = self._originals  # type: ignore[method-assign]


#: CPU seconds per event request in the host calls, from the last unprofiled ``run_event``
EVENT_HOST_CPU: list[float] = []


def run_event(host: WorkflowHost, n: int, profiler: AllThreads | None) -> tuple[float, list[Any]]:
    """Events to ``n // 20`` tickers (a journal of up to 20 events each), one
    request at a time; returns CPU seconds per request and the profile rows.
    Unprofiled, it also records the host calls' own CPU (``EVENT_HOST_CPU``)."""
    if profiler is not None:
        profiler.enable(this_thread=False)
    calls = HostCalls(host) if profiler is None else None
    with _server(host) as port:
        client = _Http(port)
        ids = [f"tick-{os.getpid()}-{time.monotonic_ns()}-{k}" for k in range(max(1, n // 20))]
        for wid in ids:
            assert client.post("/v1/workflows", f'{{"script":"ticker","workflow_id":"{wid}"}}'.encode()) < 300
        for k in range(40):  # warm up: imports, pools, caches
            client.post(f"/v1/workflows/{ids[k % len(ids)]}/events/tick", b'{"n":0}')
        time.sleep(0.2)
        cpu0 = time.process_time()
        host0 = calls.seconds if calls is not None else 0.0
        for k in range(n):
            status = client.post(f"/v1/workflows/{ids[k % len(ids)]}/events/tick", f'{{"n":{k}}}'.encode())
            assert status == 202, status
        while any(host.pending_events(wid) for wid in ids):  # the deliveries after the last replies
            time.sleep(0.01)
        time.sleep(0.05)
        cpu = (time.process_time() - cpu0) / n
        if calls is not None:
            EVENT_HOST_CPU[:] = [(calls.seconds - host0) / n]
            calls.restore()
        client.close()
        rows = profiler.stats() if profiler is not None else []
    return cpu, rows


def run_host(
    make: Callable[[WorkflowHost, int], Callable[[int], None]],
    host: WorkflowHost,
    n: int,
    profiler: AllThreads | None,
) -> tuple[float, list[Any]]:
    op = make(host, n)
    if profiler is not None:
        profiler.enable(this_thread=True)
    cpu0 = time.process_time()
    for i in range(n):
        op(1000 + i)
    cpu = (time.process_time() - cpu0) / n
    rows = []
    if profiler is not None:
        sys.setprofile(None)
        rows = profiler.stats()
    return cpu, rows


SCENARIOS = {
    "ten-step": ("ten-step workflow (host.start, completes)", scenario_ten),
    "start": ("start -> first suspension (3 steps + a wait)", scenario_start),
    "event": ("event request (POST .../events/tick over HTTP, with its delivery)", None),
}


def measure(name: str, n: int, tmp: Path, profiled: bool) -> tuple[float, list[Any]]:
    profiler = AllThreads() if profiled else None
    with _host(tmp / f"{name}-{int(profiled)}.db") as host:
        make = SCENARIOS[name][1]
        if make is None:
            return run_event(host, n, profiler)
        return run_host(make, host, n, profiler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    n = 100 if args.quick else 400
    load = os.getloadavg()
    print(f"jsflow profile by layer ({os.cpu_count()} CPUs, load average {load[0]:.2f}, SQLite WAL)")
    with tempfile.TemporaryDirectory() as d:
        for name in [args.only] if args.only else list(SCENARIOS):
            cpu, _ = measure(name, n, Path(d), profiled=False)
            _, rows = measure(name, n, Path(d), profiled=True)
            layers, funcs = by_layer(rows)
            print_table(SCENARIOS[name][0], n, cpu, layers)
            if name == "event" and EVENT_HOST_CPU:
                host_cpu = EVENT_HOST_CPU[0]
                print(
                    f"  measured without the profiler: the host calls (store_event + deliver_events, "
                    f"their threads' CPU) {host_cpu * 1e3:.3f} ms/op, everything else in the process "
                    f"(server, uvicorn, threads, the client) {(cpu - host_cpu) * 1e3:.3f} ms/op"
                )
            if args.top:
                print_top(funcs, cpu, args.top)


if __name__ == "__main__":
    main()
