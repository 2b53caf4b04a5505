"""Every endpoint of the HTTP API (docs/reference/http.md) and every status code of its error
table, against a real uvicorn on 127.0.0.1 with httpx clients."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from _server_helpers import ADMIN, READER, RESUMER, Served, serve

from jsflow import Limits, WorkflowEngine
from jsflow.host import WorkflowHost

NASTY = '<script>alert("x")</script> \'"\\ \x01\x1f\x7f\t\n\r é 😀 %2F &amp; ${x}'


def _start(c, script: str, **body) -> dict:
    r = c.post("/v1/workflows", json={"script": script, **body})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_scripts_and_start_list_get(served: Served) -> None:
    with served.client() as c:
        r = c.post("/v1/scripts", json={"name": "echo2", "source": "function main(a) { return a; }"})
        assert r.status_code == 201 and len(r.json()["hash"]) == 64
        assert any(s["name"] == "echo2" for s in c.get("/v1/scripts").json()["items"])
        assert "return a" in c.get("/v1/scripts/echo2").json()["source"]
        assert c.get("/v1/scripts/nope").status_code == 404
        r = c.post("/v1/workflows", json={"script": "echo", "args": [1, {"a": [2]}], "workflow_id": "e1"})
        assert r.status_code == 201
        inst = r.json()
        assert (
            inst["status"] == "completed"
            and inst["value"] == [1, {"a": [2]}]
            and inst["args"] == [1, {"a": [2]}]
        )
        same = {"script": "echo", "args": [1, {"a": [2]}], "workflow_id": "e1"}
        again = c.post("/v1/workflows", json=same)
        assert again.status_code == 200 and again.json()["value"] == [1, {"a": [2]}]
        other_args = c.post("/v1/workflows", json={"script": "echo", "args": [9], "workflow_id": "e1"})
        assert other_args.status_code == 409
        assert other_args.json()["error"]["type"] == "WorkflowExistsError"
        conflict = c.post("/v1/workflows", json={"script": "events", "workflow_id": "e1"})
        assert conflict.status_code == 409 and conflict.json()["error"]["type"] == "WorkflowExistsError"
        assert c.post("/v1/workflows", json={"script": "missing"}).status_code == 404
        _start(c, "events", workflow_id="e2")
        assert c.get("/v1/workflows/e1").json()["workflow_id"] == "e1"
        assert c.get("/v1/workflows/nope").status_code == 404
        listed = c.get("/v1/workflows").json()
        assert [i["workflow_id"] for i in listed["items"]][:2] == ["e2", "e1"]
        assert [i["workflow_id"] for i in c.get("/v1/workflows?status=suspended").json()["items"]] == ["e2"]
        assert [i["workflow_id"] for i in c.get("/v1/workflows?waiting_on=event").json()["items"]] == ["e2"]
        assert [i["workflow_id"] for i in c.get("/v1/workflows?script=echo").json()["items"]] == ["e1"]
        page = c.get("/v1/workflows?limit=1").json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        nxt = c.get("/v1/workflows", params={"limit": 1, "cursor": page["next_cursor"]}).json()
        assert nxt["items"][0]["workflow_id"] == "e1"


def test_events_resume_cancel_retry_history(served: Served) -> None:
    with served.client() as c:
        _start(c, "events", workflow_id="ev")
        r = c.post("/v1/workflows/ev/events/next", json={"n": 2})
        assert r.status_code == 202 and r.json()["buffered"] is True and r.json()["delivered"] is False
        assert [e["name"] for e in c.get("/v1/workflows/ev").json()["inbox"]] == ["next"]
        r = c.post("/v1/workflows/ev/events/go", json={"n": 1}, params={"wait": 5})
        assert r.status_code == 202 and r.json()["delivered"] is True
        assert r.json()["instance"]["status"] == "completed"  # the buffered 'next' followed
        assert r.json()["instance"]["value"] == [{"n": 1}, {"n": 2}]
        assert c.post("/v1/workflows/ev/events/go", json=1).status_code == 409
        assert c.post("/v1/workflows/none/events/go", json=1).status_code == 404
        history = c.get("/v1/workflows/ev/history", params={"limit": 2}).json()
        assert len(history["items"]) == 2 and history["next_cursor"]
        assert c.get("/v1/workflows/ev/history", params={"cursor": "junk"}).status_code == 400
        assert c.get("/v1/workflows/none/history").status_code == 404

        _start(c, "manual", workflow_id="m")
        done = c.post("/v1/workflows/m/resume", json={"value": {"ok": 1}})
        assert done.status_code == 200 and done.json()["value"] == {"ok": 1}
        assert c.post("/v1/workflows/m/resume", json={"value": 2}).status_code == 409
        _start(c, "manual", workflow_id="m2")
        assert c.post("/v1/workflows/m2/resume", json={"value": 1, "wait_id": 99}).status_code == 409
        cancelled = c.post("/v1/workflows/m2/cancel", json={"reason": "test"})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["cancel_reason"] == "test"
        assert c.post("/v1/workflows/m2/cancel").status_code == 409

        assert _start(c, "fails", workflow_id="f")["status"] == "faulted"
        retried = c.post("/v1/workflows/f/retry", params={"wait": 2})
        assert retried.status_code == 200 and retried.json()["value"] == "ok"
        assert c.post("/v1/workflows/f/retry").status_code == 409


def test_tokens_204_409_410_404(served: Served, host: WorkflowHost) -> None:
    with served.client() as c, served.client(key=None) as anon:
        inst = _start(c, "hooked", args=["o1"], workflow_id="h1")
        url = inst["waits"][0]["url"]
        assert url.startswith(served.url + "/hooks/")
        r = anon.post(url, json={"approved": True})
        assert r.status_code == 204 and r.content == b""
        assert c.get("/v1/workflows/h1").json()["value"] == {"order": "o1", "data": {"approved": True}}
        assert anon.post(url, json={}).status_code == 409
        assert anon.post("/hooks/forged-token", json={}).status_code == 404
        token = _start(c, "hooked", args=["o2"], workflow_id="h2")["waits"][0]["url"].rsplit("/", 1)[1]
        with served.client(RESUMER) as resumer:
            r = resumer.post("/v1/resume", json={"token": token, "payload": 7})
            assert r.status_code == 204 and r.content == b""
            assert resumer.post("/v1/resume", json={"token": token, "payload": 7}).status_code == 409
            assert resumer.post("/v1/resume", json={"token": "nope"}).status_code == 404
            assert resumer.post("/v1/resume", json={"payload": 1}).status_code == 422
        # expiry: the hook's timeout is 1h; move the clock past it
        token = _start(c, "hooked", args=["o3"], workflow_id="h3")["waits"][0]["url"].rsplit("/", 1)[1]
        real = host.clock
        host.clock = lambda: real() + timedelta(hours=2)  # type: ignore[method-assign]
        try:
            r = anon.post(f"/hooks/{token}", json={})
        finally:
            host.clock = real  # type: ignore[method-assign]
        assert r.status_code == 410 and r.json()["error"]["type"] == "TokenExpiredError"


def test_python_token_suspend_hands_out_its_token_once(served: Served) -> None:
    with served.client() as c, served.client(RESUMER) as resumer:
        inst = _start(c, "approver", args=[250], workflow_id="ap")
        [token] = inst["tokens"]
        assert token["kind"] == "token" and token["function_name"] == "approve" and token["token"]
        assert c.get("/v1/workflows/ap").json()["tokens"] == []  # reads never show it again
        r = resumer.post("/v1/resume", json={"token": token["token"], "payload": {"ok": True}})
        assert r.status_code == 204
        assert c.get("/v1/workflows/ap").json()["value"] == {"ok": True}


def test_auth_401_403(served: Served) -> None:
    with served.client(key=None) as anon:
        r = anon.get("/v1/workflows")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"]["type"] == "AuthenticationError"
        assert anon.get("/v1/workflows", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert anon.get("/v1/workflows", headers={"Authorization": "Basic abc"}).status_code == 401
        assert anon.get("/healthz").json() == {"status": "ok"}
    with served.client(READER) as reader:
        assert reader.get("/v1/workflows").status_code == 200
        assert reader.get("/metrics").status_code == 200
        r = reader.post("/v1/workflows", json={"script": "echo"})
        assert r.status_code == 403 and r.json()["error"]["needed_scope"] == "admin"
        assert reader.post("/v1/resume", json={"token": "x"}).status_code == 403
    with served.client(RESUMER) as resumer:
        assert resumer.get("/v1/workflows").status_code == 403
        assert resumer.post("/v1/workflows/x/events/go", json=1).status_code == 404  # allowed, unknown id
        assert resumer.post("/v1/workflows/x/cancel").status_code == 403


def test_bad_input_400_422_and_never_500(served: Served) -> None:
    with served.client() as c:
        cases = [
            (c.post("/v1/workflows", content=b"{not json"), 400),
            (c.post("/v1/workflows", content=b"\xff\xfe"), 400),
            (c.post("/v1/workflows", content=b"NaN"), 400),
            (c.post("/v1/workflows", json={"script": 5}), 422),
            (c.post("/v1/workflows", json=[1, 2]), 422),
            (c.post("/v1/workflows", json={"script": "echo", "extra": 1}), 422),
            (c.post("/v1/workflows", json={"script": "echo", "workflow_id": ""}), 422),
            (c.post("/v1/workflows/x/events/go", content=b"[" * 5000 + b"]" * 5000), 422),
            (c.post("/v1/workflows/x/events/go", content=b'"\\ud800"'), 422),
            (c.post("/v1/workflows/x/events/go", content=b"1" * 5000), 422),
            (c.get("/v1/workflows?limit=0"), 400),
            (c.get("/v1/workflows?limit=abc"), 400),
            (c.get("/v1/workflows?status=sleeping"), 400),
            (c.get("/v1/workflows?created_after=2026-01-01T00:00:00"), 400),
            (c.get("/v1/workflows?cursor=%%%"), 400),
            (c.get("/v1/workflows/x/history?limit=100000"), 400),
            (c.post("/v1/workflows/x/retry?wait=-1"), 400),
            (c.get("/nowhere"), 404),
            (c.delete("/v1/workflows"), 405),
        ]
        for response, status in cases:
            assert response.status_code == status, (response.request.url, response.text)
            body = response.json()
            assert set(body) == {"error"} and {"type", "message"} <= set(body["error"]), body


def test_round_trip_of_nasty_ids_and_payloads(served: Served) -> None:
    payload = {NASTY: [NASTY, {"k": NASTY}], "n": None, "deep": [[[["x"]]]]}
    workflow_id = NASTY  # '/' and '%2F' included: percent-encoded in paths
    with served.client() as c:
        inst = _start(c, "events", workflow_id=workflow_id, args=[payload])
        assert inst["workflow_id"] == workflow_id and inst["args"] == [payload]
        got = c.get(f"/v1/workflows/{httpx_quote(workflow_id)}")
        assert got.status_code == 200 and got.json()["workflow_id"] == workflow_id
        r = c.post(
            f"/v1/workflows/{httpx_quote(workflow_id)}/events/go",
            content=json.dumps(payload),
            params={"wait": 5},
        )
        assert r.status_code == 202 and r.json()["delivered"] is True
        r = c.post(f"/v1/workflows/{httpx_quote(workflow_id)}/events/next", json=NASTY, params={"wait": 1})
        assert r.json()["instance"]["value"] == [payload, NASTY]
        listed = c.get("/v1/workflows", params={"search": workflow_id[:12]}).json()["items"]
        assert [i["workflow_id"] for i in listed] == [workflow_id]
        assert "text/html" not in r.headers["content-type"]


def httpx_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def test_body_limit_413(tmp_path) -> None:
    engine = WorkflowEngine(limits=Limits(payload=1000))
    with WorkflowHost(f"sqlite:///{tmp_path / 'l.db'}", engine=engine) as host, serve(host) as s:
        with s.client() as c:
            r = c.post("/v1/workflows/x/events/go", content=b"1" * 2000)
            assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLargeError"

            def chunks():  # no Content-Length: refused while streaming
                for _ in range(100):
                    yield b" " * 100

            r = c.post("/v1/workflows/x/events/go", content=chunks())
            assert r.status_code == 413
        with s.client(key=None) as anon:
            assert anon.post("/hooks/abc", content=b"1" * 2000).status_code == 413


def test_rate_limit_429_with_retry_after(tmp_path) -> None:
    with WorkflowHost(f"sqlite:///{tmp_path / 'r.db'}") as host, serve(host, rate_limit="3/minute") as s:
        with s.client() as c:
            codes = [c.get("/v1/workflows").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            r = c.get("/v1/workflows")
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["type"] == "RateLimitedError"
            with s.client(READER) as other:  # per key
                assert other.get("/v1/workflows").status_code == 200
            assert "jsflow_limits_hit_total" in s.client(READER).get("/metrics").text
        with s.client(key=None) as anon:
            codes = [anon.post("/hooks/none").status_code for _ in range(4)]
            assert codes == [404, 404, 404, 429]


def test_metrics_and_docs(served: Served) -> None:
    with served.client() as c:
        _start(c, "echo", args=[1])
        text = c.get("/metrics").text
        assert 'jsflow_instances{status="completed"} 1.0' in text
        assert 'jsflow_advances_total{op="start"}' in text
        assert c.get("/docs").status_code == 200
        spec = c.get("/openapi.json").json()
        assert "/hooks/{token}" in spec["paths"] and "/v1/resume" in spec["paths"]


@pytest.mark.parametrize("spec", ["KEY:bogus", ":admin", "KEY:"])
def test_bad_key_specs_are_refused(spec: str) -> None:
    from jsflow.server import parse_api_keys

    with pytest.raises(ValueError):
        parse_api_keys([spec])


def test_keys_from_the_environment_and_settings_forms(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jsflow.server import Scope, ServerSettings

    monkeypatch.setenv("JSFLOW_API_KEYS", "env-admin  env-reader:read")
    with WorkflowHost(f"sqlite:///{tmp_path / 'k.db'}") as host, serve(host, api_keys=None) as s:
        with s.client("env-reader") as reader:
            assert reader.get("/v1/workflows").status_code == 200
            assert reader.post("/v1/scripts", json={"name": "a", "source": ""}).status_code == 403
        with s.client("env-admin") as admin:
            assert admin.post("/v1/scripts", json={"name": "a", "source": ""}).status_code == 201
        with s.client(ADMIN) as other:
            assert other.get("/v1/workflows").status_code == 401
    assert ServerSettings(api_keys={"k": ["read", "resume"]}).api_keys == {"k": {Scope.READ, Scope.RESUME}}
    assert ServerSettings(api_keys="a b:read").api_keys == {"a": {Scope.ADMIN}, "b": {Scope.READ}}
    with pytest.raises(ValueError, match="rate limit"):
        ServerSettings(rate_limit="lots")
    with pytest.raises(ValueError, match="public URL"):
        ServerSettings(public_url="ftp://x")
