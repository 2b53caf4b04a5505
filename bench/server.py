"""HTTP API benchmark: events/s and resumes/s over real HTTP against
``jsflow serve`` (a separate process, SQLite, worker on) at 1, 8 and 32
concurrent clients, with client-side p50/p99 latency. Prints, asserts nothing.

- events: ``POST /v1/workflows/{id}/events/tick`` to a suspended workflow
  that loops on ``waitForEvent('tick')``; each client round-robins over its
  own workflows, ``EVENTS_PER_WORKFLOW`` events each (a journal grows by one
  entry per event). Targets (issue 22): >= 1,000 events/s at 8 clients,
  p50 <= 1.5 ms at 1 client, and at most 0.9 ms of server CPU per event
  request beyond the host call (the server's CPU per request, from /proc,
  minus the CPU of the same ``store_event`` + ``deliver_events`` in-process).
- resumes: ``POST /hooks/{token}`` on a fresh ``createHook`` wait each time
  (the workflows are started beforehand, not timed).

Run: ``.venv/bin/python bench/server.py`` (``--quick`` for fewer requests).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory is sys.path[0]; keep it out of the
# way of the standard library (this file was http.py, which shadowed the http
# package for every script in bench/).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import asyncio  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
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


async def _drive(
    client: httpx.AsyncClient, jobs: list[list[tuple[str, object]]], expect: int
) -> tuple[float, list[float]]:
    """Each client runs its own list of (path, json) POSTs back to back."""
    latencies: list[float] = []

    async def worker(todo: list[tuple[str, object]]) -> None:
        for path, body in todo:
            t0 = time.perf_counter()
            r = await client.post(path, json=body)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != expect:
                raise SystemExit(f"{path}: {r.status_code} {r.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(todo) for todo in jobs))
    return time.perf_counter() - t0, latencies


async def bench_events(url: str, clients: int, per_client: int, level: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=60) as c:
        per_workflow = min(EVENTS_PER_WORKFLOW, per_client)
        jobs = []
        for i in range(clients):
            ids = [f"ticker-{level}-{i}-{k}" for k in range(max(1, per_client // per_workflow))]
            for wid in ids:
                await c.post("/v1/workflows", json={"script": "ticker", "workflow_id": wid})
            jobs.append(
                [(f"/v1/workflows/{ids[n % len(ids)]}/events/tick", {"n": n}) for n in range(per_client)]
            )
        elapsed, lat = await _drive(c, jobs, 202)
    return clients * per_client / elapsed, lat


async def bench_resumes(url: str, clients: int, per_client: int, level: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=max(clients, 8), max_keepalive_connections=max(clients, 8))
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=60) as c:
        sem = asyncio.Semaphore(8)

        async def start(i: int) -> str:
            async with sem:
                body = {"script": "hooked", "args": [i], "workflow_id": f"hook-{level}-{i}"}
                r = await c.post("/v1/workflows", json=body)
                return str(r.json()["waits"][0]["url"]).rsplit("/", 1)[1]

        tokens = await asyncio.gather(*(start(i) for i in range(clients * per_client)))
        jobs = [[(f"/hooks/{t}", {"ok": True}) for t in tokens[i::clients]] for i in range(clients)]
        elapsed, lat = await _drive(c, jobs, 204)
    return clients * per_client / elapsed, lat


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


def print_targets(figures: dict[tuple[str, int], tuple[float, float, float | None]], host_cpu: float) -> None:
    """Issue 22's HTTP targets with the measured figures."""
    rate8, _, _ = figures["events", 8]
    _, p50_1, cpu_1 = figures["events", 1]
    beyond = None if cpu_1 is None else cpu_1 - host_cpu
    rows = [
        ("events/s at 8 clients", f"{rate8:.0f} /s", ">= 1000 /s", rate8 >= 1000),
        ("event p50 at 1 client", f"{p50_1:.2f} ms", "<= 1.5 ms", p50_1 <= 1.5),
    ]
    if beyond is not None:
        rows.append(
            ("server CPU per event beyond the host call", f"{beyond:.2f} ms", "<= 0.9 ms", beyond <= 0.9)
        )
    print("\nTargets (HTTP, one process):")
    for label, value, target, ok in rows:
        print(f"  {label:<44} {value:>10}   target {target:<11} {'met' if ok else 'missed'}")
    print(f"  load average: {os.getloadavg()[0]:.2f}")


def main() -> None:
    quick = "--quick" in sys.argv
    total = 200 if quick else 800
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(Path(tmp) / "bench.db", port)
        try:
            with httpx.Client(base_url=url, headers=AUTH) as c:
                c.post("/v1/scripts", json={"name": "ticker", "source": TICKER})
                c.post("/v1/scripts", json={"name": "hooked", "source": HOOKED})
            print(
                f"jsflow HTTP benchmark (jsflow serve, SQLite, {os.cpu_count()} CPUs, client in one process)"
            )
            figures: dict[tuple[str, int], tuple[float, float, float | None]] = {}
            for name, bench in (("events", bench_events), ("resumes", bench_resumes)):
                for clients in LEVELS:
                    per_client = max(1, total // clients)
                    cpu0 = cpu_seconds(proc.pid)
                    rate, lat = asyncio.run(bench(url, clients, per_client, clients))
                    cpu1 = cpu_seconds(proc.pid)
                    p50, p99 = statistics.median(lat) * 1e3, _percentile(lat, 0.99) * 1e3
                    line = f"{rate:7.0f} /s   p50 {p50:6.2f} ms   p99 {p99:7.2f} ms"
                    per_req = None
                    if cpu0 is not None and cpu1 is not None:  # includes the untimed starts
                        per_req = (cpu1 - cpu0) / len(lat) * 1e3
                        line += f"   server CPU {per_req:5.2f} ms/req"
                    figures[name, clients] = (rate, p50, per_req)
                    print(f"  {name:8s} {clients:3d} clients: {line}")
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
