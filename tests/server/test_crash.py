"""``jsflow serve`` as a real process: SIGKILL mid-load loses no accepted
event or resume (every 202/204 answered before the kill is in the store
after a restart), and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _server_helpers import COLLECT, HOOKED, free_socket

from jsflow.host import WorkflowHost, hash_token
from jsflow.testing import each

KEY = "crash-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _jsflow() -> list[str]:
    return [sys.executable, "-m", "jsflow"]


@contextmanager
def jsflow_serve(db: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The server's output (access log on stdout) goes to ``<db>.log``: a pipe nobody drains
    would fill up and block it."""
    cmd = [
        *_jsflow(),
        "serve",
        "--db",
        str(db),
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--rate-limit",
        "1000000/minute",
    ]
    log = db.with_suffix(".log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, db.with_suffix(".log").read_text()
            assert time.monotonic() < deadline, "jsflow serve did not come up"
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        log.close()


def _free_port() -> int:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


def _load(url: str, hooks: list[str], stop: threading.Event, accepted: list[tuple[str, object]]) -> None:
    with httpx.Client(base_url=url, headers=AUTH, timeout=5) as c:
        rng = random.Random()
        while not stop.is_set():
            try:
                if hooks and rng.random() < 0.2:
                    token = hooks.pop()
                    if c.post("/v1/resume", json={"token": token, "payload": 1}).status_code == 204:
                        accepted.append(("resume", token))
                else:
                    wid = f"bag{rng.randrange(4)}"
                    r = c.post(f"/v1/workflows/{wid}/events/item", json={"x": rng.random()})
                    if r.status_code == 202:
                        accepted.append(("event", r.json()["event_id"]))
            except (httpx.TransportError, IndexError):
                if stop.is_set():
                    return
                time.sleep(0.01)


def test_sigkill_mid_load_loses_nothing_accepted(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    accepted: list[tuple[str, object]] = []
    with jsflow_serve(db, port) as proc:
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as c:
            c.post("/v1/scripts", json={"name": "collect", "source": COLLECT})
            c.post("/v1/scripts", json={"name": "hooked", "source": HOOKED})
            for i in range(4):
                c.post("/v1/workflows", json={"script": "collect", "args": [10**6], "workflow_id": f"bag{i}"})
            hooks = []
            for i in range(40):
                inst = c.post(
                    "/v1/workflows", json={"script": "hooked", "args": [i], "workflow_id": f"h{i}"}
                ).json()
                hooks.append(inst["waits"][0]["url"].rsplit("/", 1)[1])
        stop = threading.Event()
        threads = [threading.Thread(target=_load, args=(url, hooks, stop, accepted)) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    assert len(accepted) > 20, "the load did not get going before the kill"
    assert any(kind == "resume" for kind, _ in accepted)
    # restart: recovery runs, the store is intact
    with jsflow_serve(db, port), WorkflowHost(f"sqlite:///{db}") as host:
        for kind, ref in accepted:
            if kind == "event":
                assert each(host.store).get_event(int(ref)) is not None, f"accepted event {ref} lost"  # type: ignore[arg-type]
            else:
                record = each(host.store).get_token(hash_token(str(ref)))
                assert record is not None and record.used_at is not None, "accepted resume lost"


def test_sigterm_stops_the_server_cleanly_and_logs_no_hook_token(tmp_path: Path) -> None:
    port = _free_port()
    with jsflow_serve(tmp_path / "term.db", port) as proc:
        assert httpx.post(f"http://127.0.0.1:{port}/hooks/secret-token-123", json=1).status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after shutdown
        err = (tmp_path / "term.log").read_text()
        assert "secret-token-123" not in err and "/hooks/***" in err
        assert "Traceback" not in err
        assert "Application shutdown complete" in err and "Finished server process" in err


def test_serve_prints_a_generated_key_once(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "JSFLOW_API_KEYS"}
    cmd = [*_jsflow(), "serve", "--db", str(tmp_path / "k.db"), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stderr is not None
        line = ""
        while "admin key" not in line:
            line = proc.stderr.readline()
            assert line, "no key printed"
        key = line.rsplit(" ", 1)[1].strip()
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v1/workflows", headers={"Authorization": f"Bearer {key}"}
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v1/workflows").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]
    assert key not in rest  # printed once
