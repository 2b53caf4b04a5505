"""A real uvicorn on 127.0.0.1 (a socket bound to a free port first, so no
race for the port) serving ``create_app`` in a background thread, plus the
scripts the server tests run. Not collected."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from jsflow.host import WorkflowHost
from jsflow.server import create_app

ADMIN = "admin-key"
READER = "read-key"
RESUMER = "resume-key"
KEYS = [ADMIN, f"{READER}:read", f"{RESUMER}:resume"]

HOOKED = """
async function main(order) {
  const hook = await createHook({timeout: '1h'});
  const data = await hook.wait();
  return {order, data};
}
"""
EVENTS = """
async function main() {
  const first = await waitForEvent('go');
  const second = await waitForEvent('next');
  return [first, second];
}
"""
COLLECT = """
async function main(n) {
  const got = [];
  for (let i = 0; i < n; i++) got.push(await waitForEvent('item'));
  return got.length;
}
"""
ECHO = "function main(...args) { return args; }"
FAILS = "async function main() { await flaky(); return 'ok'; }"
MANUAL = "async function main() { return await manual(); }"
APPROVER = "async function main(amount) { return await approve(amount); }"


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Served:
    """A running server: ``url``, ``host``, ``app`` and client helpers."""

    def __init__(self, app: Any, host: WorkflowHost, url: str) -> None:
        self.app = app
        self.host = host
        self.url = url

    def client(self, key: str | None = ADMIN, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def aclient(self, key: str | None = ADMIN, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60, limits=limits, **kwargs)


@contextmanager
def serve(host: WorkflowHost, **options: Any) -> Iterator[Served]:
    """``create_app(host, **options)`` under uvicorn until the block ends
    (``log_level`` goes to uvicorn, the rest to ``create_app``)."""
    log_level = options.pop("log_level", "warning")
    options.setdefault("api_keys", KEYS)
    options.setdefault("rate_limit", "100000/minute")
    sock = free_socket()
    port = sock.getsockname()[1]
    options.setdefault("public_url", f"http://127.0.0.1:{port}")
    app = create_app(host, **options)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield Served(app, host, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def register(served: Served, **scripts: str) -> None:
    with served.client() as c:
        for name, source in scripts.items():
            assert c.post("/v1/scripts", json={"name": name, "source": source}).status_code == 201
