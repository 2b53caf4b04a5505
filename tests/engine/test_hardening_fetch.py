"""fetch hardening: forbidden request headers, DNS rebinding reported as a
refusal (never retried), and max_response_bytes holding for what is journaled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fetch_helpers import LoopbackServer, loopback_server

from jsflow import RetryPolicy, WorkflowEngine, WorkflowStatus

PUBLIC = "93.184.216.34"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as srv:
        yield srv


def _run(engine: WorkflowEngine, body: str, *args: Any) -> Any:
    result = engine.run_workflow(f"async function main(base) {{ {body} }}", "main", *args)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    return result


@pytest.mark.parametrize(
    "header",
    ["Host", "content-length", "Connection", "Cookie2", "Transfer-Encoding", "Upgrade", "Via",
     "Keep-Alive", "TE", "Trailer", "Proxy-Authorization", "Sec-Fetch-Site", "Accept-Charset",
     "Access-Control-Request-Method", "Date", "DNT", "Expect", "Origin", "Referer", "Set-Cookie",
     "Cookie", "Accept-Encoding"],
)  # fmt: skip
def test_forbidden_request_headers_are_refused(header: str) -> None:
    seen: list[httpx.Request] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)))
    engine = WorkflowEngine().enable_fetch(client, resolver=lambda h, p: [PUBLIC])
    body = f"""
      const init = {{ headers: {{ {header!r}: 'internal.admin' }} }};
      try {{ await fetch('https://api.example/', init); return 'sent'; }}
      catch (e) {{ return [e.name, e.message]; }}
    """
    name, message = _run(engine, body).value
    assert name == "TypeError"
    assert header.lower() in message.lower()
    assert seen == []


@pytest.mark.parametrize("init", ["{method: 'TRACE'}", "{headers: {'X-HTTP-Method-Override': 'get, trace'}}"])
def test_forbidden_methods_are_refused(init: str) -> None:
    seen: list[httpx.Request] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)))
    engine = WorkflowEngine().enable_fetch(client, resolver=lambda h, p: [PUBLIC])
    body = f"return await fetch('https://api.example/', {init}).then(() => 'sent', (e) => e.name);"
    assert _run(engine, body).value == "TypeError"
    assert seen == []


def test_allowed_headers_still_pass() -> None:
    seen: list[httpx.Request] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)))
    engine = WorkflowEngine().enable_fetch(client, resolver=lambda h, p: [PUBLIC])
    _run(engine, "await fetch('https://api.example/', {headers: {'X-Trace': '1', authorization: 'b'}});")
    assert seen[0].headers["x-trace"] == "1"


def test_dns_rebinding_is_refused_not_retried(server: LoopbackServer) -> None:
    answers = iter([PUBLIC] + ["127.0.0.1"] * 20)
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return [next(answers)]

    engine = WorkflowEngine().enable_fetch(resolver=rebinding, retry=RetryPolicy(3))
    body = (
        "return await fetch('http://rebind.example:' + base + '/json').then(() => 'sent', (e) => e.message);"
    )
    message = _run(engine, body, server.port).value
    assert message.startswith("fetch refused:"), message
    assert len(calls) == 2  # the pre-send check and the connect-time check: no retry
    assert server.requests == []


def test_max_response_bytes_holds_for_the_journaled_body() -> None:
    raw = b"\xff" * 1000  # invalid UTF-8: each byte decodes to U+FFFD, 3 bytes of UTF-8
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(200, content=raw, headers={"content-type": "text/plain"})
        )
    )
    engine = WorkflowEngine().enable_fetch(client, resolver=lambda h, p: [PUBLIC], max_response_bytes=1000)
    body = "return await fetch('https://api.example/').then((r) => r.text(), (e) => e.message);"
    result = _run(engine, body)
    assert isinstance(result.value, str) and result.value.startswith("fetch refused:")
    assert len(result.state.serialize()) < 2000
