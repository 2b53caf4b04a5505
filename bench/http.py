"""HTTP API benchmark: events/s and resumes/s over real HTTP against
``jsflow serve`` (a separate process, SQLite, worker on) at 1, 8 and 32
concurrent clients, with client-side p50/p99 latency. Prints, asserts nothing.

- events: ``POST /v1/workflows/{id}/events/tick`` to a suspended workflow
  that loops on ``waitForEvent('tick')`` (one workflow per client). Target:
  p50 <= 3 ms at 8 clients, >= 500 events/s.
- resumes: ``POST /hooks/{token}`` on a fresh ``createHook`` wait each time
  (the workflows are started beforehand, not timed).

Run: ``.venv/bin/python bench/http.py`` (``--quick`` for fewer requests).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory is sys.path[0] and "http.py" would
# shadow the standard library's http package that httpx imports.
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
        ids = [f"ticker-{level}-{i}" for i in range(clients)]
        for wid in ids:
            await c.post("/v1/workflows", json={"script": "ticker", "workflow_id": wid})
        jobs = [[(f"/v1/workflows/{wid}/events/tick", {"n": n}) for n in range(per_client)] for wid in ids]
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


def baseline(tmp: Path, count: int) -> float:
    """Median ``host.send_event`` in-process on the same script: what HTTP adds to."""
    with WorkflowHost(f"sqlite:///{tmp / 'baseline.db'}") as host:
        host.register_script("ticker", TICKER)
        host.start("ticker", workflow_id="t")
        lat = []
        for n in range(count):
            t0 = time.perf_counter()
            host.send_event("t", "tick", {"n": n})
            lat.append(time.perf_counter() - t0)
    return statistics.median(lat) * 1e3


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
            for name, bench in (("events", bench_events), ("resumes", bench_resumes)):
                for clients in LEVELS:
                    per_client = max(1, total // clients)
                    rate, lat = asyncio.run(bench(url, clients, per_client, clients))
                    p50, p99 = statistics.median(lat) * 1e3, _percentile(lat, 0.99) * 1e3
                    line = f"{rate:7.0f} /s   p50 {p50:6.2f} ms   p99 {p99:7.2f} ms"
                    print(f"  {name:8s} {clients:3d} clients: {line}")
            base = baseline(Path(tmp), total // 4)
            print(f"  baseline: in-process send_event p50 {base:.2f} ms (same script, no HTTP)")
            print("  targets: event p50 <= 3 ms at 8 clients, >= 500 events/s")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
