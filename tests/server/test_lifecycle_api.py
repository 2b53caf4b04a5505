"""Issue 20 over HTTP: POST /v1/events (start-with-event), queries, cancel with cleanup."""

from __future__ import annotations

import asyncio
import time

from _server_helpers import READER, RESUMER, Served, register

QUERIED = """
let got = [];
defineQuery('got', () => got);
defineQuery('bad', () => sleep('1s'));
async function main(n) {
  try {
    while (got.length < n) got.push(await waitForEvent('item'));
    return got;
  } catch (e) {
    got = ['cancelled:' + e.reason];
    throw e;
  }
}
"""


def test_post_events_with_start(served: Served) -> None:
    register(served, queried=QUERIED)
    body = {"workflow_id": "p1", "name": "item", "payload": 1, "start": {"script": "queried", "args": [2]}}
    with served.client(RESUMER) as c:
        refused = c.post("/v1/events", json=body)
        assert refused.status_code == 403 and refused.json()["error"]["needed_scope"] == "admin"
        assert c.post("/v1/events", json={"workflow_id": "p1", "name": "item"}).status_code == 404
    with served.client() as c:
        r = c.post("/v1/events", json=body, headers={"Idempotency-Key": "k1"})
        assert r.status_code == 202 and r.json()["delivered"] is True
        again = c.post("/v1/events", json=body, headers={"Idempotency-Key": "k1"})
        assert again.status_code == 202 and again.json()["duplicate"] is True
        other = {**body, "start": {"script": "collect", "args": [2]}}
        conflict = c.post("/v1/events", json=other)
        assert conflict.status_code == 409 and conflict.json()["error"]["type"] == "WorkflowExistsError"
        assert c.post("/v1/events", json={"workflow_id": "p1"}).status_code == 422
    with served.client(RESUMER) as c:  # an existing instance: resume scope is enough
        r = c.post("/v1/events", json={"workflow_id": "p1", "name": "item", "payload": 2}, params={"wait": 5})
        assert r.status_code == 202 and r.json()["delivered"] is True and r.json()["instance"] is None
    with served.client() as c:
        assert c.get("/v1/workflows/p1").json()["value"] == [1, 2]


def test_twenty_concurrent_start_with_event_requests(served: Served) -> None:
    register(served, queried=QUERIED)

    async def burst() -> list[int]:
        async with served.aclient() as c:
            body = {"workflow_id": "burst", "name": "item", "start": {"script": "queried", "args": [20]}}
            rs = await asyncio.gather(*(c.post("/v1/events", json={**body, "payload": i}) for i in range(20)))
            return [r.status_code for r in rs]

    assert asyncio.run(burst()) == [202] * 20
    with served.client() as c:
        inst = c.get("/v1/workflows/burst").json()
        assert inst["status"] == "completed" and sorted(inst["value"]) == list(range(20))


def test_queries_and_cancel_cleanup(served: Served) -> None:
    register(served, queried=QUERIED)
    with served.client() as c:
        assert (
            c.post("/v1/workflows", json={"script": "queried", "args": [3], "workflow_id": "q"}).status_code
            == 201
        )
        c.post("/v1/workflows/q/events/item", json="a")
    with served.client(READER) as c:
        r = c.get("/v1/workflows/q/queries/got")
        assert r.status_code == 200 and r.json() == {"value": ["a"]}
        assert c.get("/v1/workflows/q/queries/nope").status_code == 404
        bad = c.get("/v1/workflows/q/queries/bad")
        assert bad.status_code == 422 and bad.json()["error"]["type"] == "QueryError"
        assert bad.json()["error"]["js_name"] == "TypeError"
        assert c.get("/v1/workflows/q/queries/got", params={"args": "{}"}).status_code == 422
        assert c.get("/v1/workflows/nope/queries/got").status_code == 404
    with served.client() as c:
        r = c.post("/v1/workflows/q/cancel", json={"reason": "bye"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert c.get("/v1/workflows/q/queries/got").json() == {"value": ["cancelled:bye"]}
        c.post("/v1/workflows", json={"script": "queried", "args": [3], "workflow_id": "q2"})
        r = c.post("/v1/workflows/q2/cancel", json={"cleanup": False})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert c.get("/v1/workflows/q2/queries/got").json() == {"value": []}


def test_new_routes_in_the_openapi_schema(served: Served) -> None:
    with served.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    post = paths["/v1/events"]["post"]
    assert {"202", "401", "403", "404", "409", "422"} <= set(post["responses"])
    assert "admin" in post["description"] and "resume" in post["description"]
    query = paths["/v1/workflows/{workflow_id}/queries/{name}"]["get"]
    assert {"200", "404", "422"} <= set(query["responses"]) and "read" in query["description"]


def test_schedules_routes(served: Served) -> None:
    register(served, queried=QUERIED)
    body = {
        "name": "nightly",
        "cron": "0 2 * * *",
        "script": "queried",
        "args": [1],
        "timezone": "Europe/Paris",
    }
    with served.client(READER) as c:
        assert c.post("/v1/schedules", json=body).status_code == 403
        assert c.get("/v1/schedules").json() == {"items": []}
    with served.client() as c:
        r = c.post("/v1/schedules", json=body)
        assert r.status_code == 201 and r.json()["name"] == "nightly" and r.json()["next_run"]
        assert c.post("/v1/schedules", json={**body, "cron": "nope"}).status_code == 422
        assert c.post("/v1/schedules", json={**body, "script": "missing"}).status_code == 404
        assert c.post("/v1/schedules", json={**body, "overlap": "x"}).status_code == 422
        paused = c.post("/v1/schedules/nightly/pause")
        assert (
            paused.status_code == 200
            and paused.json()["paused"] is True
            and paused.json()["next_run"] is None
        )
        assert c.post("/v1/schedules/nightly/resume").json()["paused"] is False
        assert c.post("/v1/schedules/none/pause").status_code == 404
    with served.client(READER) as c:
        items = c.get("/v1/schedules").json()["items"]
        assert [i["name"] for i in items] == ["nightly"]
        assert c.delete("/v1/schedules/nightly").status_code == 403
    with served.client() as c:
        assert c.delete("/v1/schedules/nightly").status_code == 204
        assert c.delete("/v1/schedules/nightly").status_code == 404
        paths = c.get("/openapi.json").json()["paths"]
    assert {"201", "403", "404", "422"} <= set(paths["/v1/schedules"]["post"]["responses"])
    assert "admin" in paths["/v1/schedules"]["post"]["description"]
    assert "read" in paths["/v1/schedules"]["get"]["description"]
    assert "204" in paths["/v1/schedules/{name}"]["delete"]["responses"]
    assert "200" in paths["/v1/schedules/{name}/pause"]["post"]["responses"]


def test_parent_and_children_in_the_instance_json(served: Served) -> None:
    parent = (
        "async function main() { const c = await startWorkflow('collect', [1]); return await c.result(); }"
    )
    register(served, parent=parent)
    with served.client() as c:
        assert c.post("/v1/workflows", json={"script": "parent", "workflow_id": "pa"}).status_code == 201
        body = c.get("/v1/workflows/pa").json()
        assert body["children"] == ["pa.child-0"] and body["parent_id"] is None
        child = c.get("/v1/workflows/pa.child-0").json()
        assert child["parent_id"] == "pa" and child["children"] == []
        # the event is answered once stored; the child's end then reaches the parent
        c.post("/v1/workflows/pa.child-0/events/item?wait=10", json="x")
        deadline = time.monotonic() + 10
        while c.get("/v1/workflows/pa").json()["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/v1/workflows/pa").json()["value"] == 1
