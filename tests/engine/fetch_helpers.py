"""A tiny HTTP server on 127.0.0.1 (port 0, a thread) for the fetch tests.

Only the loopback address is ever used: nothing in these tests touches any
other network. Routes:

- ``/json``            200, ``{"hello": "world"}``
- ``/echo``            200, the request's method, headers (lower-cased) and body as JSON
- ``/status/<code>``   that status, text body ``status <code>``
- ``/big/<n>``         200, n bytes of ``x``
- ``/slow/<seconds>``  sleeps, then 200
- ``/flaky/<n>``       drops the connection for the first n requests, then 200 ``{"ok": true}``
- ``/redirect?to=URL`` 302 to URL
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class LoopbackServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.flaky_seen = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                with server._lock:
                    server.requests.append({"method": self.command, "path": self.path, "body": body})
                server.route(self, body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("X-Server-Header", "Yes")
        h.end_headers()
        h.wfile.write(body)

    def route(self, h: BaseHTTPRequestHandler, body: str) -> None:
        url = urlsplit(h.path)
        parts = url.path.strip("/").split("/")
        if parts[0] == "json":
            self._send(h, 200, b'{"hello": "world"}')
        elif parts[0] == "echo":
            headers = {k.lower(): v for k, v in h.headers.items()}
            out = {"method": h.command, "headers": headers, "body": body}
            self._send(h, 200, json.dumps(out).encode())
        elif parts[0] == "status":
            self._send(h, int(parts[1]), f"status {parts[1]}".encode(), "text/plain")
        elif parts[0] == "big":
            self._send(h, 200, b"x" * int(parts[1]), "text/plain")
        elif parts[0] == "slow":
            time.sleep(float(parts[1]))
            self._send(h, 200, b'{"slow": true}')
        elif parts[0] == "flaky":
            with self._lock:
                self.flaky_seen += 1
                seen = self.flaky_seen
            if seen <= int(parts[1]):
                h.close_connection = True
                h.connection.close()  # no response at all: a transport error
                return
            self._send(h, 200, b'{"ok": true}')
        elif parts[0] == "redirect":
            target = parse_qs(url.query)["to"][0]
            h.send_response(302)
            h.send_header("Location", target)
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            self._send(h, 404, b"{}")


@contextmanager
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
