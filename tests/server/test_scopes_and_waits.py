"""Scopes that hold, requests that do not wait on workflow code, ids that reach
every endpoint, and HEAD (issue 18, items 6, 12 and 13), through HTTP on a real
uvicorn over SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from _server_helpers import ADMIN, HOOKED, READER, RESUMER, Served, register, serve

from jsflow.host import WorkflowHost

SLOW_SECONDS = 5.0
#: a reply that did not wait for the slow step comes well before it ends, even on a loaded machine
PROMPT = 2.5
SLOW_AFTER_EVENT = """
async function main() {
  const got = await waitForEvent('go');
  const done = await slow();
  return {got, done};
}"""
SLOW_AFTER_HOOK = """
async function main() {
  const hook = await createHook({timeout: '1h'});
  const got = await hook.wait();
  return {got, done: await slow()};
}"""
SLOW_AFTER_TOKEN = "async function main() { const got = await approve(); return {got, done: await slow()}; }"
MANUAL = "async function main(a) { const v = await manual(); return {a, v}; }"
SLOW_FIRST = "async function main() { return await slow(); }"


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'w.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    tokens: list[str] = []
    with WorkflowHost(url, hook_secret="scopes-secret") as host:
        host.register_step_function("slow", lambda: time.sleep(SLOW_SECONDS) or "slept")
        host.engine.register_suspend_function("manual")
        host.register_suspend_function(
            "approve", before_suspend=lambda token, exp, args: tokens.append(token)
        )
        with serve(host, threads=8) as s:  # one engine thread per slow step in flight
            register(
                s,
                hooked=HOOKED,
                slow_event=SLOW_AFTER_EVENT,
                slow_hook=SLOW_AFTER_HOOK,
                slow_token=SLOW_AFTER_TOKEN,
                manual=MANUAL,
                slow_first=SLOW_FIRST,
            )
            s.tokens = tokens  # type: ignore[attr-defined]
            yield s


def test_a_read_key_never_sees_a_credential(served: Served) -> None:
    with served.client() as admin:
        inst = admin.post("/v1/workflows", json={"script": "hooked", "workflow_id": "cred"}).json()
    url = inst["waits"][0]["url"]
    token = url.rsplit("/", 1)[1]
    with served.client(READER) as reader:
        one = reader.get("/v1/workflows/cred")
        listed = reader.get("/v1/workflows")
        for reply in (one, listed):
            assert reply.status_code == 200 and token not in reply.text
        assert one.json()["waits"][0]["url"] is None and one.json()["tokens"] == []
    with served.client() as admin:  # an admin key still gets the URL
        assert admin.get("/v1/workflows/cred").json()["waits"][0]["url"] == url


def test_a_resume_key_gets_receipts_and_statuses_only(served: Served) -> None:
    with served.client() as admin:
        admin.post(
            "/v1/workflows", json={"script": "manual", "args": [{"secret": "arg"}], "workflow_id": "r1"}
        )
        hooked = admin.post("/v1/workflows", json={"script": "hooked", "workflow_id": "r2"}).json()
    with served.client(RESUMER) as resumer:
        assert resumer.get("/v1/workflows/r1").status_code == 403
        r = resumer.post("/v1/workflows/r1/events/x", json=1, params={"wait": 0.001})
        assert r.status_code == 202 and "instance" not in r.json() and "secret" not in r.text
        assert r.json()["status"] == "suspended"
        token = hooked["waits"][0]["url"].rsplit("/", 1)[1]
        waited = resumer.post("/v1/resume", json={"token": token, "payload": 5}, params={"wait": 5})
        assert waited.status_code == 200 and waited.json() == {"status": "completed"}


def _elapsed(fn) -> tuple[float, object]:
    started = time.monotonic()
    result = fn()
    return time.monotonic() - started, result


def test_requests_do_not_wait_on_workflow_code(served: Served) -> None:
    with served.client() as admin:
        for wid, script in (
            ("e", "slow_event"),
            ("h", "slow_hook"),
            ("t", "slow_token"),
            ("e2", "slow_event"),
            ("e3", "slow_event"),
        ):
            assert admin.post("/v1/workflows", json={"script": script, "workflow_id": wid}).status_code == 201
        hook_path = urlsplit(admin.get("/v1/workflows/h").json()["waits"][0]["url"]).path
        took, r = _elapsed(lambda: admin.post("/v1/workflows/e/events/go", json=1))
        assert r.status_code == 202 and took < PROMPT, took
        took, r = _elapsed(lambda: admin.post("/v1/workflows/e2/events/go", json=1, params={"wait": 1}))
        assert r.status_code == 202 and took < 1 + PROMPT, took
        assert r.json()["status"] == "running"
        took, r = _elapsed(lambda: admin.post("/v1/events", json={"workflow_id": "e3", "name": "go"}))
        assert r.status_code == 202 and took < PROMPT, took
        with served.client(key=None) as anon:
            took, r = _elapsed(lambda: anon.post(hook_path, json={"n": 1}))
            assert r.status_code == 204 and took < PROMPT, took
        with served.client(RESUMER) as resumer:
            token = served.tokens[-1]  # type: ignore[attr-defined]
            took, r = _elapsed(lambda: resumer.post("/v1/resume", json={"token": token, "payload": 2}))
            assert r.status_code == 204 and took < PROMPT, took
        # the work goes on in the server: every instance completes
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            statuses = {i["workflow_id"]: i["status"] for i in admin.get("/v1/workflows").json()["items"]}
            if all(statuses[w] == "completed" for w in ("e", "e2", "e3", "h", "t")):
                break
            time.sleep(0.2)
        assert admin.get("/v1/workflows/t").json()["value"] == {"got": 2, "done": "slept"}
        assert admin.get("/v1/workflows/h").json()["value"] == {"got": {"n": 1}, "done": "slept"}


def test_wait_on_v1_resume_and_on_resume(served: Served) -> None:
    with served.client() as admin:
        body = {"script": "slow_first", "workflow_id": "sf"}
        took, r = _elapsed(lambda: admin.post("/v1/workflows", json=body, params={"wait": 1}))
        assert r.status_code == 201 and r.json()["status"] == "running" and took < 1 + PROMPT, took
        admin.post("/v1/workflows", json={"script": "slow_token", "workflow_id": "w"})
        token = served.tokens[-1]  # type: ignore[attr-defined]
        took, r = _elapsed(
            lambda: admin.post("/v1/resume", json={"token": token, "payload": 1}, params={"wait": 1})
        )
        assert r.status_code == 200 and r.json()["status"] == "running" and took < 1 + PROMPT, took
        r = admin.post("/v1/resume", json={"token": token, "payload": 1})
        assert r.status_code == 409
        admin.post("/v1/workflows", json={"script": "manual", "workflow_id": "m"})
        r = admin.post("/v1/workflows/m/resume", json={"value": 3}, params={"wait": 5})
        assert r.status_code == 200 and r.json()["value"] == {"v": 3}


@pytest.mark.parametrize("workflow_id", ["a/b c", "%2F/%25 x?#", "ü/ä"])
def test_any_id_that_starts_reaches_every_endpoint(served: Served, workflow_id: str) -> None:
    path = f"/v1/workflows/{quote(workflow_id, safe='')}"
    with served.client() as admin:
        r = admin.post("/v1/workflows", json={"script": "manual", "workflow_id": workflow_id})
        assert r.status_code == 201 and r.json()["workflow_id"] == workflow_id
        assert admin.get(path).json()["workflow_id"] == workflow_id
        assert admin.get(f"{path}/history").status_code == 200
        assert admin.post(f"{path}/events/{quote('a/b', safe='')}", json=1).json()["name"] == "a/b"
        assert (
            admin.post(f"{path}/resume", json={"value": 1}, params={"wait": 5}).json()["status"]
            == "completed"
        )
        other = admin.post("/v1/workflows", json={"script": "manual", "workflow_id": workflow_id + "/2"})
        assert other.status_code == 201
        assert admin.post(f"{path}%2F2/cancel").json()["status"] == "cancelled"


def test_a_long_id_follows_the_one_rule(served: Served) -> None:
    from jsflow import MAX_WORKFLOW_ID_LENGTH

    longest = "x" * MAX_WORKFLOW_ID_LENGTH
    with served.client() as admin:
        assert (
            admin.post("/v1/workflows", json={"script": "manual", "workflow_id": longest}).status_code == 201
        )
        assert admin.get(f"/v1/workflows/{longest}").json()["workflow_id"] == longest
        for refused in (
            admin.post("/v1/workflows", json={"script": "manual", "workflow_id": "y" * 600}),
            admin.get(f"/v1/workflows/{'y' * 600}"),
            admin.post(f"/v1/workflows/{'y' * 600}/events/go", json=1),
        ):
            assert refused.status_code == 422, refused.text
            message = refused.json()["error"]["message"]
            assert "600 characters" in message and str(MAX_WORKFLOW_ID_LENGTH) in message, message


def test_nul_in_text_is_422_on_every_store(served: Served) -> None:
    with served.client() as admin:
        assert (
            admin.post("/v1/workflows", json={"script": "manual", "workflow_id": "a\x00b"}).status_code == 422
        )
        assert admin.get("/v1/workflows/a%00b").status_code == 422
        assert admin.get("/v1/workflows", params={"search": "a\x00"}).status_code == 422


def test_head_answers_on_every_get_route(served: Served) -> None:
    with served.client() as admin:
        admin.post("/v1/workflows", json={"script": "manual", "workflow_id": "hd"})
        for path in (
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/v1/workflows",
            "/v1/workflows/hd",
            "/v1/workflows/hd/history",
            "/v1/scripts",
            "/v1/scripts/manual",
            "/ui/login",
        ):
            got, head = admin.get(path), admin.head(path)
            assert head.status_code == got.status_code == 200, path
            assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
        routes = [r for r in served.app.routes if "GET" in getattr(r, "methods", ())]
        assert routes and all(admin.head(r.path).status_code != 405 for r in routes if "{" not in r.path)
        assert admin.head("/nope").status_code == 404
        assert admin.head("/v1/workflows", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert ADMIN


def test_starting_an_existing_id_again(served: Served) -> None:
    with served.client() as admin:
        first = admin.post("/v1/workflows", json={"script": "manual", "args": [1], "workflow_id": "x1"})
        assert first.status_code == 201
        same = admin.post("/v1/workflows", json={"script": "manual", "args": [1], "workflow_id": "x1"})
        assert same.status_code == 200 and same.json()["workflow_id"] == "x1"
        for body in ({"script": "manual", "args": [2]}, {"script": "hooked", "args": [1]}):
            other = admin.post("/v1/workflows", json={**body, "workflow_id": "x1"})
            assert other.status_code == 409 and other.json()["error"]["type"] == "WorkflowExistsError"


def test_idempotency_key_reused_for_another_event_is_409(served: Served) -> None:
    with served.client() as admin:
        admin.post("/v1/workflows", json={"script": "manual", "workflow_id": "idem"})
        key = {"Idempotency-Key": "k-1"}
        first = admin.post("/v1/workflows/idem/events/a", json=1, headers=key)
        again = admin.post("/v1/workflows/idem/events/a", json=1, headers=key)
        assert first.status_code == again.status_code == 202 and again.json()["duplicate"] is True
        assert again.json()["event_id"] == first.json()["event_id"]
        for name, payload in (("b", 1), ("a", 2)):
            clash = admin.post(f"/v1/workflows/idem/events/{name}", json=payload, headers=key)
            assert clash.status_code == 409 and clash.json()["error"]["type"] == "IdempotencyKeyConflictError"
