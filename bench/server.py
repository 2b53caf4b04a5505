"""HTTP API benchmark: events/s and resumes/s over real HTTP against
``jsflow serve`` (a separate process, SQLite, worker on) at 1, 8 and 32
concurrent clients, with client-side p50/p99 latency. Prints, asserts nothing.

- events: ``POST /v1/workflows/{id}/events/tick`` to a suspended workflow
  that loops on ``waitForEvent('tick')``; each client round-robins over its
  own workflows, ``EVENTS_PER_WORKFLOW`` events each (a journal grows by one
  entry per event). A reply (202) says the event is stored; the server
  delivers it afterwards, so each level also waits until every event has
  been delivered (read from the database file, not through the server) and
  reports that rate too: accepting faster than delivering only builds a
  backlog. Targets (issue 22): >= 1,000 events/s at 8 clients (delivered),
  p50 <= 1.5 ms at 1 client, and at most 0.9 ms of server CPU per event
  request beyond the host call (the server's CPU per request, from /proc,
  deliveries included, minus the CPU of the same ``store_event`` +
  ``deliver_events`` in-process).
- resumes: ``POST /hooks/{token}`` on a fresh ``createHook`` wait each time
  (the workflows are started beforehand, not timed).

The clients are keep-alive HTTP/1.1 connections on plain sockets, one thread
each: an HTTP library's client (httpx) costs about as much CPU per request as
the server does, on the same two cores.

Run: ``.venv/bin/python bench/server.py`` (``--quick`` for fewer requests,
``--only events``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory is sys.path[0]; keep it out of the
# way of the standard library (this file was http.py, which shadowed the http
# package for every script in bench/).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402

from jsflow.host import WorkflowHost  # noqa: E402

KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TICKER = "async function main() { for (;;) { await waitForEvent('tick'); } }"
HOOKED = "async function main(i) { const hook = await createHook(); return await hook.wait(); }"
LEVELS = (1, 8, 32)
EVENTS_PER_WORKFLOW = 50


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "jsflow", "serve", "--db", str(db), "--port", str(port)]
    cmd += ["--api-key", KEY, "--rate-limit", "100000000/minute"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("jsflow serve did not start")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere: the
    server's cost per request, independent of what else loads the machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Client:
    """One keep-alive HTTP/1.1 connection on a plain socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def post(self, path: str, body: object) -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + data)
        status = int(self.file.readline().split()[1])
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, self.file.read(length)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _drive(port: int, jobs: list[list[tuple[str, object]]], expect: int) -> tuple[float, list[float]]:
    """Each client (a thread, its own connection) runs its list of POSTs back to back."""
    latencies: list[float] = []
    failures: list[str] = []
    clients = [Client(port) for _ in jobs]

    def worker(client: Client, todo: list[tuple[str, object]]) -> None:
        for path, body in todo:
            t0 = time.perf_counter()
            status, text = client.post(path, body)
            latencies.append(time.perf_counter() - t0)
            if status != expect:
                failures.append(f"{path}: {status} {text[:200]!r}")
                return

    threads = [threading.Thread(target=worker, args=pair) for pair in zip(clients, jobs, strict=True)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    for client in clients:
        client.close()
    if failures:
        raise SystemExit(failures[0])
    return elapsed, latencies


def _start_all(port: int, bodies: list[dict[str, object]]) -> list[bytes]:
    """Start workflows (not timed), 8 at a time; their replies."""
    replies: list[bytes] = [b""] * len(bodies)

    def worker(first: int) -> None:
        client = Client(port)
        for i in range(first, len(bodies), 8):
            status, replies[i] = client.post("/v1/workflows", bodies[i])
            if status not in (200, 201):
                raise SystemExit(f"start: {status} {replies[i][:200]!r}")
        client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def prepare_events(port: int, clients: int, per_client: int, level: int) -> list[list[tuple[str, object]]]:
    """Start the tickers (not timed); each client's list of event POSTs."""
    per_workflow = min(EVENTS_PER_WORKFLOW, per_client)
    ids = [
        [f"ticker-{level}-{i}-{k}" for k in range(max(1, per_client // per_workflow))] for i in range(clients)
    ]
    _start_all(port, [{"script": "ticker", "workflow_id": wid} for group in ids for wid in group])
    return [
        [(f"/v1/workflows/{group[n % len(group)]}/events/tick", {"n": n}) for n in range(per_client)]
        for group in ids
    ]


def prepare_resumes(port: int, clients: int, per_client: int, level: int) -> list[list[tuple[str, object]]]:
    """Start the hooked workflows (not timed); each client's list of hook POSTs."""
    bodies: list[dict[str, object]] = [
        {"script": "hooked", "args": [i], "workflow_id": f"hook-{level}-{i}"}
        for i in range(clients * per_client)
    ]
    tokens = [str(json.loads(r)["waits"][0]["url"]).rsplit("/", 1)[1] for r in _start_all(port, bodies)]
    return [[(f"/hooks/{t}", {"ok": True}) for t in tokens[i::clients]] for i in range(clients)]


def wait_delivered(db: Path, prefix: str, timeout: float = 300.0) -> None:
    """Until no workflow whose id starts with ``prefix`` has a buffered event (read
    from the database file by this process: the server is not asked)."""
    with WorkflowHost(f"sqlite:///{db}") as reader:
        ids = [i.workflow_id for i in reader.list(limit=100000) if i.workflow_id.startswith(prefix)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = [wid for wid in ids if reader.pending_events(wid)]
            if not ids:
                return
            time.sleep(0.005)
    raise SystemExit(f"events still buffered after {timeout}s")


def run_level(
    proc: subprocess.Popen[bytes], port: int, db: Path, name: str, clients: int, per_client: int
) -> tuple[float, float, list[float], float | None]:
    """One level: (accepted/s, delivered/s, latencies, server CPU ms per request).
    The server's CPU runs from the first request until every event is delivered
    (resumes: until the last reply), starts excluded."""
    prepare = prepare_events if name == "events" else prepare_resumes
    jobs = prepare(port, clients, per_client, clients)
    time.sleep(0.2)  # the starts' own work settles
    cpu0 = cpu_seconds(proc.pid)
    t0 = time.perf_counter()
    elapsed, lat = _drive(port, jobs, 202 if name == "events" else 204)
    if name == "events":
        wait_delivered(db, f"ticker-{clients}-")
    done = time.perf_counter() - t0
    cpu1 = cpu_seconds(proc.pid)
    per_req = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / len(lat) * 1e3
    return len(lat) / elapsed, len(lat) / done, lat, per_req


def baseline(tmp: Path, count: int) -> tuple[float, float]:
    """The host call alone, in-process, on the same script and journal
    lengths: what the server does per event request (``store_event``, then
    ``deliver_events``); returns its p50 wall time and its mean CPU time, ms."""
    with WorkflowHost(f"sqlite:///{tmp / 'baseline.db'}") as host:
        host.register_script("ticker", TICKER)
        ids = [f"t{k}" for k in range(max(1, count // EVENTS_PER_WORKFLOW))]
        for wid in ids:
            host.start("ticker", workflow_id=wid)
        lat = []
        cpu0 = time.process_time()
        for n in range(count):
            t0 = time.perf_counter()
            wid = ids[n % len(ids)]
            host.store_event(wid, "tick", {"n": n})
            host.deliver_events(wid)
            lat.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu0) / count
    return statistics.median(lat) * 1e3, cpu * 1e3


def print_targets(
    figures: dict[tuple[str, int], tuple[float, float, float, float | None]], host_cpu: float
) -> None:
    """Issue 22's HTTP targets with the measured figures."""
    accepted8, delivered8, _, _ = figures["events", 8]
    _, _, p50_1, cpu_1 = figures["events", 1]
    beyond = None if cpu_1 is None else cpu_1 - host_cpu
    rows = [
        (
            "events/s at 8 clients (all delivered)",
            f"{delivered8:.0f} /s",
            ">= 1000 /s",
            delivered8 >= 1000,
        ),
        ("event p50 at 1 client", f"{p50_1:.2f} ms", "<= 1.5 ms", p50_1 <= 1.5),
    ]
    if beyond is not None:
        rows.append(
            ("server CPU per event beyond the host call", f"{beyond:.2f} ms", "<= 0.9 ms", beyond <= 0.9)
        )
    print("\nTargets (HTTP, one process):")
    for label, value, target, ok in rows:
        print(f"  {label:<44} {value:>10}   target {target:<11} {'met' if ok else 'missed'}")
    print(f"  (accepted at 8 clients: {accepted8:.0f} /s)")
    print(f"  load average: {os.getloadavg()[0]:.2f}")


def main() -> None:
    quick = "--quick" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    total = 200 if quick else 800
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        db = Path(tmp) / "bench.db"
        proc = start_server(db, port)
        try:
            client = Client(port)
            client.post("/v1/scripts", {"name": "ticker", "source": TICKER})
            client.post("/v1/scripts", {"name": "hooked", "source": HOOKED})
            client.close()
            print(
                f"jsflow HTTP benchmark (jsflow serve, SQLite, {os.cpu_count()} CPUs, "
                f"load average {os.getloadavg()[0]:.2f}, clients: threads in one process)"
            )
            figures: dict[tuple[str, int], tuple[float, float, float, float | None]] = {}
            for name in ("events", "resumes"):
                if only is not None and name != only:
                    continue
                for clients in LEVELS:
                    accepted, delivered, lat, per_req = run_level(
                        proc, port, db, name, clients, max(1, total // clients)
                    )
                    p50, p99 = statistics.median(lat) * 1e3, _percentile(lat, 0.99) * 1e3
                    line = f"{accepted:7.0f} /s   p50 {p50:6.2f} ms   p99 {p99:7.2f} ms"
                    if name == "events":
                        line += f"   all delivered: {delivered:5.0f} /s"
                    if per_req is not None:
                        line += f"   server CPU {per_req:5.2f} ms/req"
                    figures[name, clients] = (accepted, delivered, p50, per_req)
                    print(f"  {name:8s} {clients:3d} clients: {line}")
            if ("events", 8) in figures:
                base, base_cpu = baseline(Path(tmp), total)
                print(
                    f"  host call alone (store_event + deliver_events in-process): p50 {base:.2f} ms, "
                    f"CPU {base_cpu:.2f} ms (same script, no HTTP)"
                )
                print_targets(figures, base_cpu)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
