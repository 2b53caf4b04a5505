"""The hot paths (``jsflow.server._hot``) answer exactly as the FastAPI routes do.

Each request is sent twice: as it is (the hot path takes it) and with
``?wait=0`` (a query string: the hot path leaves it to the FastAPI route;
``wait=0`` waits for nothing, so the route's answer is the same request's).
Statuses, headers that matter and bodies must match, event ids aside. Accepted
events go to a name nothing waits for: a receipt reads the event back after
storing it, and an event a concurrent delivery took meanwhile says so.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from _server_helpers import ADMIN, READER, RESUMER, Served

from jsflow.host import WorkflowHost


def _both(client: httpx.Client, path: str, **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
    hot = client.post(path, **kwargs)
    routed = client.post(path, params={"wait": 0}, **kwargs)
    return hot, routed


def _same(hot: httpx.Response, routed: httpx.Response) -> None:
    assert hot.status_code == routed.status_code, (hot.text, routed.text)
    assert hot.headers.get("content-type") == routed.headers.get("content-type")
    assert hot.headers.get("www-authenticate") == routed.headers.get("www-authenticate")
    body, other = hot.json(), routed.json()
    if "event_id" in body:
        assert body.pop("event_id") != other.pop("event_id")
    assert body == other
    assert len(hot.content) > 0


def _start(served: Served, workflow_id: str, script: str = "collect", args: list[Any] | None = None) -> None:
    with served.client() as c:
        body = {"script": script, "args": args if args is not None else [100], "workflow_id": workflow_id}
        assert c.post("/v1/workflows", json=body).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        b'{"n": 1}',
        b"",
        b"null",
        b'"text"',
        b"not json",
        b"[" * 5000 + b"]" * 5000,
        b'"\\ud800"',
        b"1" * 5000,
        b'{"a": NaN}',
        b"\xff\xfe",
        b'"\\u0000"',
    ],
)
def test_event_bodies_answered_alike(served: Served, body: bytes) -> None:
    _start(served, "bag")
    with served.client() as c:
        _same(*_both(c, "/v1/workflows/bag/events/other", content=body))


def test_event_refusals_answered_alike(served: Served) -> None:
    _start(served, "bag")
    _start(served, "done", script="echo", args=[1])
    with served.client() as admin, served.client(READER) as reader, served.client(RESUMER) as resumer:
        _same(*_both(resumer, "/v1/workflows/bag/events/other", json=1))
        _same(*_both(admin, "/v1/workflows/nobody/events/item", json=1))
        _same(*_both(admin, "/v1/workflows/done/events/item", json=1))
        _same(*_both(reader, "/v1/workflows/bag/events/item", json=1))
        with served.client(None) as anonymous:
            _same(*_both(anonymous, "/v1/workflows/bag/events/item", json=1))
        with served.client("wrong-key") as wrong:
            _same(*_both(wrong, "/v1/workflows/bag/events/item", json=1))
        malformed = {"Authorization": "Basic abc"}
        _same(*_both(admin, "/v1/workflows/bag/events/item", json=1, headers=malformed))
        bad_id = "x" * 5000
        _same(*_both(admin, f"/v1/workflows/{bad_id}/events/item", json=1))


def test_idempotency_key_on_the_hot_path(served: Served) -> None:
    _start(served, "bag")
    with served.client() as c:
        key = {"Idempotency-Key": "k-1"}
        first = c.post("/v1/workflows/bag/events/item", json={"n": 1}, headers=key)
        again = c.post("/v1/workflows/bag/events/item", json={"n": 1}, headers=key)
        assert first.status_code == again.status_code == 202
        assert again.json()["event_id"] == first.json()["event_id"]
        assert again.json()["duplicate"] is True
        other = c.post("/v1/workflows/bag/events/item", json={"n": 2}, headers=key)
        assert other.status_code == 409
        assert other.json()["error"]["type"] == "IdempotencyKeyConflictError"
        long_key = {"Idempotency-Key": "k" * 201}
        assert c.post("/v1/workflows/bag/events/item", json=1, headers=long_key).status_code == 400


def test_hot_events_are_stored_before_the_reply_and_delivered(served: Served, host: WorkflowHost) -> None:
    _start(served, "bag", args=[30])
    with served.client() as c:
        for i in range(5):  # nothing waits for "other": stored, so buffered, by the time of the reply
            r = c.post("/v1/workflows/bag/events/other", json={"i": i})
            assert r.status_code == 202
            assert r.json()["event_id"] in {e.event_id for e in host.pending_events("bag")}
        for i in range(30):
            assert c.post("/v1/workflows/bag/events/item", json={"i": i}).status_code == 202
        deadline = time.monotonic() + 10
        while host.get("bag").status != "completed" and time.monotonic() < deadline:
            time.sleep(0.02)
    assert host.get("bag").status == "completed"
    assert host.get("bag").value == 30


def test_hot_path_rate_limit_counts_once(host: WorkflowHost) -> None:
    from _server_helpers import serve

    with serve(host, rate_limit="3/minute") as s:
        with s.client() as c:
            source = "async function main() {}"
            assert c.post("/v1/scripts", json={"name": "collect", "source": source}).status_code == 201
        with s.client(RESUMER) as c:
            statuses = [c.post("/v1/workflows/nobody/events/item", json=1).status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        with s.client(RESUMER) as c:
            refused = c.post("/v1/workflows/nobody/events/item", json=1)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["type"] == "RateLimitedError"
        with s.client(ADMIN) as c:
            metrics = c.get("/metrics").text
        assert 'jsflow_http_errors_total{status="429"} 2.0' in metrics


def _hook_tokens(served: Served, count: int) -> list[str]:
    tokens = []
    with served.client() as c:
        for i in range(count):
            r = c.post("/v1/workflows", json={"script": "hooked", "args": [i], "workflow_id": f"h{i}"})
            assert r.status_code == 201
            tokens.append(str(r.json()["waits"][0]["url"]).rsplit("/", 1)[1])
    return tokens


def _same_reply(hot: httpx.Response, routed: httpx.Response) -> None:
    assert hot.status_code == routed.status_code, (hot.text, routed.text)
    assert hot.content == routed.content
    for name in ("content-type", "content-length", "retry-after", "www-authenticate"):
        assert hot.headers.get(name) == routed.headers.get(name), name


def test_hooks_answered_alike(served: Served, host: WorkflowHost) -> None:
    one, two, three, four = _hook_tokens(served, 4)
    with served.client(None) as c:
        _same_reply(c.post(f"/hooks/{one}", json={"ok": 1}), c.post(f"/hooks/{two}?wait=0", json={"ok": 2}))
        assert host.get("h0").status == host.get("h1").status  # both consumed
        _same_reply(c.post(f"/hooks/{one}", json=1), c.post(f"/hooks/{two}?wait=0", json=1))  # used
        _same_reply(c.post("/hooks/no-such-token", json=1), c.post("/hooks/no-such-token?wait=0", json=1))
        bad = b"{not json"
        _same_reply(c.post(f"/hooks/{three}", content=bad), c.post(f"/hooks/{four}?wait=0", content=bad))
        _same_reply(c.post(f"/hooks/{three}", content=b""), c.post(f"/hooks/{four}?wait=0", content=b""))
    for wid in ("h0", "h1", "h2", "h3"):
        deadline = time.monotonic() + 10
        while host.get(wid).status != "completed" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert host.get(wid).status == "completed"
    assert host.get("h0").value == {"order": 0, "data": {"ok": 1}}
    assert host.get("h2").value == {"order": 2, "data": None}


def test_token_resumes_answered_alike(served: Served, host: WorkflowHost) -> None:
    one, two = _hook_tokens(served, 2)
    with served.client(RESUMER) as c, served.client(READER) as reader, served.client(None) as anonymous:
        for client in (reader, anonymous):
            body = {"token": one, "payload": 1}
            _same_reply(client.post("/v1/resume", json=body), client.post("/v1/resume?wait=0", json=body))
        for body in ({"payload": 1}, {"token": one, "extra": 1}, {"token": ""}, [1], None):
            _same_reply(c.post("/v1/resume", json=body), c.post("/v1/resume?wait=0", json=body))
        _same_reply(c.post("/v1/resume", content=b"nope"), c.post("/v1/resume?wait=0", content=b"nope"))
        unknown = {"token": "no-such-token", "payload": 1}
        _same_reply(c.post("/v1/resume", json=unknown), c.post("/v1/resume?wait=0", json=unknown))
        first = c.post("/v1/resume", json={"token": one, "payload": "a"})
        second = c.post("/v1/resume?wait=0", json={"token": two, "payload": "b"})
        _same_reply(first, second)
        assert first.status_code == 204
        used = {"token": one, "payload": "c"}
        _same_reply(c.post("/v1/resume", json=used), c.post("/v1/resume?wait=0", json=used))
    deadline = time.monotonic() + 10
    while host.get("h0").status != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host.get("h0").value == {"order": 0, "data": "a"}


def test_rate_limit_window_moves(host: WorkflowHost) -> None:
    """A refused request is not counted, and the budget comes back as the window moves."""
    from _server_helpers import serve

    with serve(host, rate_limit="2/second") as s, s.client(RESUMER) as c:
        assert [c.post("/v1/workflows/nobody/events/x", json=1).status_code for _ in range(2)] == [404, 404]
        refused = c.post("/v1/workflows/nobody/events/x", json=1)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        time.sleep(1.05)
        assert c.post("/v1/workflows/nobody/events/x", json=1).status_code == 404


def test_mounted_under_a_prefix(host: WorkflowHost) -> None:
    """An embedder mounts the app under a prefix: its paths are the app's paths
    below it (the hot path leaves such requests to the app's own routing)."""
    import threading

    import uvicorn
    from _server_helpers import COLLECT, free_socket
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from jsflow.server import create_app

    outer = Starlette(routes=[Mount("/jsflow", app=create_app(host, api_keys=[ADMIN], worker=False))])
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(outer, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        base = f"http://127.0.0.1:{sock.getsockname()[1]}/jsflow"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
            assert c.post("/v1/scripts", json={"name": "collect", "source": COLLECT}).status_code == 201
            body = {"script": "collect", "args": [1], "workflow_id": "m"}
            assert c.post("/v1/workflows", json=body).status_code == 201
            r = c.post("/v1/workflows/m/events/item", json="x")
            assert r.status_code == 202
            assert r.json()["workflow_id"] == "m"
            assert c.post("/hooks/no-such-token", json=1).status_code == 404
        deadline = time.monotonic() + 10
        while host.get("m").status != "completed" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert host.get("m").value == 1
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
