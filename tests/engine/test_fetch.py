"""fetch(): opt-in, journaled, refused outside policy (issue 5).

Mock tests use ``httpx.MockTransport`` and a fake resolver (no DNS); the real
tests use a stdlib server on 127.0.0.1 only. No other address is contacted:
refusals of 10.0.0.1 and 169.254.169.254 are proven to happen before connect.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest
from fetch_helpers import LoopbackServer, loopback_server

from jsflow import RetryPolicy, WorkflowEngine, WorkflowStatus

PUBLIC = "93.184.216.34"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


class Recorder:
    """A MockTransport handler that records requests and answers from a table."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_first = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail_first:
            self.fail_first -= 1
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/json":
            return httpx.Response(200, json={"hello": "world"}, headers={"X-Mixed-Case": "Value"})
        if path == "/echo":
            return httpx.Response(
                200,
                json={
                    "method": request.method,
                    "headers": dict(request.headers),
                    "body": request.content.decode(),
                },
            )
        if path == "/missing":
            return httpx.Response(404, text="not here")
        return httpx.Response(500, text="boom")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def mock_engine(recorder: Recorder) -> WorkflowEngine:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return WorkflowEngine().enable_fetch(client, resolver=public_resolver)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as srv:
        yield srv


def run(engine: WorkflowEngine, body: str, *args: Any) -> Any:
    result = engine.run_workflow(f"async function main(base) {{ {body} }}", "main", *args)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    return result


# -- with MockTransport --------------------------------------------------------------
def test_get_json(mock_engine: WorkflowEngine, recorder: Recorder) -> None:
    result = run(
        mock_engine,
        """const r = await fetch('https://api.example.com/json');
        return {ok: r.ok, status: r.status, url: r.url, redirected: r.redirected,
                statusText: r.statusText, data: await r.json(), used: r.bodyUsed};""",
    )
    assert result.value == {
        "ok": True,
        "status": 200,
        "url": "https://api.example.com/json",
        "redirected": False,
        "statusText": "OK",
        "data": {"hello": "world"},
        "used": True,
    }
    assert len(recorder.requests) == 1
    [entry] = result.state.journal
    assert (entry.type, entry.name, entry.result["status"]) == ("step", "fetch", 200)


def test_post_with_body_and_headers(mock_engine: WorkflowEngine, recorder: Recorder) -> None:
    result = run(
        mock_engine,
        """const r = await fetch('https://api.example.com/echo', {method: 'post',
              headers: {'Content-Type': 'application/json', 'X-Token': 'abc'},
              body: JSON.stringify({a: 1})});
        return await r.json();""",
    )
    echoed = result.value
    assert echoed["method"] == "POST"
    assert echoed["headers"]["content-type"] == "application/json"
    assert echoed["headers"]["x-token"] == "abc"
    assert json.loads(echoed["body"]) == {"a": 1}


def test_non_2xx_does_not_throw(mock_engine: WorkflowEngine) -> None:
    result = run(
        mock_engine,
        """const r = await fetch('https://api.example.com/missing');
        return [r.ok, r.status, r.statusText, await r.text()];""",
    )
    assert result.value == [False, 404, "Not Found", "not here"]


def test_header_case(mock_engine: WorkflowEngine) -> None:
    result = run(
        mock_engine,
        """const r = await fetch('https://api.example.com/json');
        return [r.headers['x-mixed-case'], r.headers.get('X-MIXED-CASE'), r.headers.has('x-Mixed-case'),
                Object.keys(r.headers).every(k => k === k.toLowerCase()), r.headers.get('nope')];""",
    )
    assert result.value == ["Value", "Value", True, True, None]


def test_request_headers_are_case_insensitive(mock_engine: WorkflowEngine) -> None:
    result = run(
        mock_engine,
        """const r = await fetch('https://api.example.com/echo', {headers: {'X-A': '1', 'x-a': '2'}});
        return (await r.json()).headers['x-a'];""",
    )
    assert result.value == "1, 2"


def test_clone_and_body_used(mock_engine: WorkflowEngine) -> None:
    result = run(
        mock_engine,
        """const r = await fetch('https://api.example.com/json');
        const c = r.clone();
        const a = await r.json();
        const again = await r.text().then(() => 'read twice', e => e.name);
        let cloneErr = null;
        try { r.clone(); } catch (e) { cloneErr = e.name; }
        return [a, await c.text(), r.bodyUsed, c.bodyUsed, again, cloneErr];""",
    )
    assert result.value == [{"hello": "world"}, '{"hello":"world"}', True, True, "TypeError", "TypeError"]


def test_replay_makes_no_request(mock_engine: WorkflowEngine, recorder: Recorder) -> None:
    script = """async function main() {
        const r = await fetch('https://api.example.com/json');
        const data = await r.json();
        const ev = await waitForEvent('go');
        return [data, ev];
    }"""
    first = mock_engine.run_workflow(script)
    assert first.status is WorkflowStatus.SUSPENDED
    assert len(recorder.requests) == 1
    done = mock_engine.raise_event(script, first.state, "go", 7)
    assert done.value == [{"hello": "world"}, 7]
    assert len(recorder.requests) == 1


def test_transport_error_is_catchable(mock_engine: WorkflowEngine, recorder: Recorder) -> None:
    recorder.fail_first = 5
    result = run(
        mock_engine,
        """try { await fetch('https://api.example.com/json'); return 'no'; }
        catch (e) { return [e instanceof TypeError, e.message]; }""",
    )
    assert result.value[0] is True
    assert result.value[1].startswith("fetch failed:")
    assert result.state.journal[0].type == "step_error"


def test_retries_then_success(recorder: Recorder) -> None:
    recorder.fail_first = 2
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    engine = WorkflowEngine().enable_fetch(client, retry=RetryPolicy(3), resolver=public_resolver)
    result = run(engine, "return (await fetch('https://api.example.com/json')).status;")
    assert result.value == 200
    assert len(recorder.requests) == 3
    assert len(result.state.journal) == 1


def test_sync_client(recorder: Recorder) -> None:
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    engine = WorkflowEngine().enable_fetch(client, resolver=public_resolver)
    result = run(engine, "return (await fetch('https://api.example.com/json')).json();")
    assert result.value == {"hello": "world"}


def test_fetch_not_enabled() -> None:
    result = run(WorkflowEngine(), "return [typeof fetch, typeof Response];")
    assert result.value == ["undefined", "undefined"]


def test_bad_init_rejects(mock_engine: WorkflowEngine) -> None:
    result = run(
        mock_engine,
        """const a = await fetch('https://x.example/', {body: 'x'}).catch(e => e.name);
        const b = await fetch('ftp://x.example/').catch(e => e.message);
        return [a, b];""",
    )
    assert result.value[0] == "TypeError"
    assert "fetch refused" in result.value[1]


# -- policy: allowlist and private addresses ----------------------------------------
@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Records every TCP connect the default client attempts; only 127.0.0.1
    goes through, anything else is blocked (and would fail the test)."""
    attempts: list[tuple[str, int]] = []
    real = httpcore.AnyIOBackend.connect_tcp

    async def connect_tcp(self: Any, host: str, port: int, **kwargs: Any) -> Any:
        attempts.append((host, port))
        if host != "127.0.0.1":
            raise httpcore.ConnectError("blocked by test")
        return await real(self, host, port, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    return attempts


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/"]
)
def test_private_addresses_refused_before_connect(url: str, no_connect: list[tuple[str, int]]) -> None:
    resolved: list[str] = []
    engine = WorkflowEngine().enable_fetch(resolver=lambda h, p: resolved.append(h) or [PUBLIC])
    result = run(engine, f"return await fetch({url!r}).then(() => 'sent', e => [e.name, e.message]);")
    name, message = result.value
    assert name == "TypeError"
    assert message.startswith("fetch refused:")
    assert no_connect == [] and resolved == []


def test_hostname_resolving_to_private_is_refused(recorder: Recorder) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    engine = WorkflowEngine().enable_fetch(client, resolver=lambda h, p: [PUBLIC, "10.1.2.3"])
    result = run(engine, "return await fetch('https://sneaky.example/').then(() => 'sent', e => e.message);")
    assert "10.1.2.3" in result.value and result.value.startswith("fetch refused:")
    assert recorder.requests == []


def test_allowlist(recorder: Recorder) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    engine = WorkflowEngine().enable_fetch(
        client, allow_hosts=["api.example.com", "*.good.example"], resolver=public_resolver
    )
    result = run(
        engine,
        """const ok = [];
        for (const u of ['https://api.example.com/json', 'https://a.good.example/json',
                         'https://evil.example/json', 'https://good.example.evil/json']) {
          ok.push(await fetch(u).then(r => r.status, e => e.message.slice(0, 13)));
        }
        return ok;""",
    )
    assert result.value == [200, 200, "fetch refused", "fetch refused"]
    assert len(recorder.requests) == 2


def test_loopback_refused_unless_allowed(server: LoopbackServer) -> None:
    body = "return await fetch(base + '/json').then(r => r.json(), e => e.message);"
    refused = run(WorkflowEngine().enable_fetch(), body, server.base)
    assert refused.value.startswith("fetch refused:")
    assert server.requests == []
    allowed = run(WorkflowEngine().enable_fetch(allow_hosts=["127.0.0.1"]), body, server.base)
    assert allowed.value == {"hello": "world"}
    assert len(server.requests) == 1


def test_redirect_to_disallowed_host_is_refused(server: LoopbackServer, no_connect: list[Any]) -> None:
    engine = WorkflowEngine().enable_fetch(allow_hosts=["127.0.0.1"])
    body = """return await fetch(base + '/redirect?to=' + encodeURIComponent('http://169.254.169.254/x'))
        .then(r => r.status, e => e.message);"""
    result = run(engine, body, server.base)
    assert result.value.startswith("fetch refused:")
    assert no_connect == [("127.0.0.1", server.port)]


# -- with a real server on 127.0.0.1 -------------------------------------------------
@pytest.fixture
def local_engine() -> WorkflowEngine:
    return WorkflowEngine().enable_fetch(allow_hosts=["127.0.0.1"], timeout=2.0, max_response_bytes=1000)


def test_real_get_post_and_status(local_engine: WorkflowEngine, server: LoopbackServer) -> None:
    result = run(
        local_engine,
        """const g = await (await fetch(base + '/json')).json();
        const p = await fetch(base + '/echo', {method: 'PUT', headers: {'X-Thing': 'A'}, body: 'hi'});
        const e = await p.json();
        const n = await fetch(base + '/status/503');
        return [g, e.method, e.headers['x-thing'], e.body, p.headers.get('x-server-header'),
                n.ok, n.status, await n.text()];""",
        server.base,
    )
    assert result.value == [{"hello": "world"}, "PUT", "A", "hi", "Yes", False, 503, "status 503"]


def test_real_redirect_within_allowlist(local_engine: WorkflowEngine, server: LoopbackServer) -> None:
    result = run(
        local_engine,
        """const r = await fetch(base + '/redirect?to=' + encodeURIComponent(base + '/json'));
        return [r.redirected, r.url.endsWith('/json'), await r.json()];""",
        server.base,
    )
    assert result.value == [True, True, {"hello": "world"}]


def test_real_response_size_cap(local_engine: WorkflowEngine, server: LoopbackServer) -> None:
    result = run(
        local_engine,
        """const small = await (await fetch(base + '/big/1000')).text();
        const big = await fetch(base + '/big/5000').then(() => 'read', e => e.message);
        return [small.length, big];""",
        server.base,
    )
    assert result.value[0] == 1000
    assert "max_response_bytes" in result.value[1] and result.value[1].startswith("fetch refused:")


def test_real_timeout(server: LoopbackServer) -> None:
    engine = WorkflowEngine().enable_fetch(allow_hosts=["127.0.0.1"], timeout=0.3)
    start = time.monotonic()
    result = run(
        engine, "return await fetch(base + '/slow/1.5').then(() => 'done', e => e.message);", server.base
    )
    assert time.monotonic() - start < 1.4
    assert result.value.startswith("fetch failed:") and "timed out" in result.value


def test_real_retries_then_success(server: LoopbackServer) -> None:
    engine = WorkflowEngine().enable_fetch(allow_hosts=["127.0.0.1"], retry=RetryPolicy(3), timeout=2.0)
    result = run(engine, "return (await fetch(base + '/flaky/2')).json();", server.base)
    assert result.value == {"ok": True}
    assert server.flaky_seen == 3


def test_real_replay_makes_no_request(local_engine: WorkflowEngine, server: LoopbackServer) -> None:
    script = """async function main(base) {
        const a = await (await fetch(base + '/json')).json();
        await sleep('1h');
        return a;
    }"""
    first = local_engine.run_workflow(script, "main", server.base)
    assert len(server.requests) == 1
    done = local_engine.resume_workflow(script, first.state)
    assert done.value == {"hello": "world"}
    assert len(server.requests) == 1


def test_enable_fetch_validates() -> None:
    with pytest.raises(TypeError):
        WorkflowEngine().enable_fetch(allow_hosts="127.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WorkflowEngine().enable_fetch(timeout=0)
    with pytest.raises(ValueError, match="'fetch' is a jsflow built-in"):
        WorkflowEngine().register_step_function("fetch", lambda: 1)
