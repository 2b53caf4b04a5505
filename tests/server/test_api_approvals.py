"""The HTTP API of approval flows: wait objects say where and why (location,
description, count, received), matched events stay buffered, and a payload
that violates a wait's schema is 422 PayloadSchemaError with its JSON Pointer,
on events, resumes, token resumes and hook calls (the token stays usable)."""

from __future__ import annotations

import json

from _server_helpers import Served, register

VOTES = """
async function main() {
  const votes = await waitForEvents('vote', { count: 2, distinct: 'voter', timeout: '1d' });
  return votes.map(v => v.voter);
}"""
ORDERS = """
async function main() {
  return await waitForEvent('approval', { match: { order: 'A-17' },
    schema: { type: 'object', properties: { lines: { type: 'array', items: {
      type: 'object', properties: { qty: { type: 'integer' } } } } } } });
}"""
HOOK = """
async function main() {
  const hook = await createHook({ timeout: '1h', schema: { type: 'object', required: ['ok'] } });
  return await hook.wait();
}"""


def test_wait_objects_carry_location_description_and_progress(served: Served) -> None:
    register(served, votes=VOTES)
    with served.client() as c:
        assert c.post("/v1/workflows", json={"script": "votes", "workflow_id": "v"}).status_code == 201
        # the reply comes once the event is stored; ?wait holds it until delivery
        assert c.post("/v1/workflows/v/events/vote", json={"voter": "ann"}, params={"wait": 5}).json()[
            "delivered"
        ]
        wait = c.get("/v1/workflows/v").json()["waits"][0]
        assert wait["location"] == {"line": 3, "column": wait["location"]["column"]}
        assert wait["description"] == "waiting for 1 more 'vote' event (have: ann), 1 of 2 received"
        assert (wait["count"], wait["received"]) == (2, [{"voter": "ann"}])
        again = c.post("/v1/workflows/v/events/vote", json={"voter": "ann"}, params={"wait": 5}).json()
        assert again["buffered"]
        assert [e["name"] for e in c.get("/v1/workflows/v").json()["inbox"]] == ["vote"]
        done = c.post("/v1/workflows/v/events/vote", json={"voter": "bo"}, params={"wait": 5}).json()
        assert done["instance"]["value"] == ["ann", "bo"]


def test_schema_violations_are_422_with_a_pointer(served: Served) -> None:
    register(served, orders=ORDERS)
    with served.client() as c:
        c.post("/v1/workflows", json={"script": "orders", "workflow_id": "o"})
        wait = c.get("/v1/workflows/o").json()["waits"][0]
        assert wait["match"] == {"order": "A-17"} and wait["schema"]["type"] == "object"
        other = c.post("/v1/workflows/o/events/approval", json={"order": "A-18", "lines": "x"})
        assert other.status_code == 202 and other.json()["buffered"]  # matches nothing: buffered
        bad = c.post(
            "/v1/workflows/o/events/approval", json={"order": "A-17", "lines": [{"qty": 1}, {"qty": "2"}]}
        )
        assert bad.status_code == 422
        error = bad.json()["error"]
        assert error["type"] == "PayloadSchemaError" and error["path"] == "/lines/1/qty"
        assert len(c.get("/v1/workflows/o").json()["inbox"]) == 1  # the refused one was not stored
        ok = c.post(
            "/v1/workflows/o/events/approval", json={"order": "A-17", "lines": []}, params={"wait": 5}
        )
        assert ok.json()["instance"]["status"] == "completed"


def test_hook_call_violating_schema_is_422_and_the_token_still_works(served: Served) -> None:
    register(served, hook=HOOK)
    with served.client() as c:
        started = c.post("/v1/workflows", json={"script": "hook", "workflow_id": "h"}).json()
        url = started["waits"][0]["url"]
        assert "__j" not in json.dumps(started)
        path = url.replace(served.url, "")
        with served.client(key=None) as anon:
            bad = anon.post(path, json={"nope": 1})
            assert bad.status_code == 422 and bad.json()["error"]["type"] == "PayloadSchemaError"
            assert bad.json()["error"]["path"] == "/ok"
            assert anon.post(path, json={"ok": True}).status_code == 204
        assert c.get("/v1/workflows/h").json()["value"] == {"ok": True}
        history = c.get("/v1/workflows/h/history").json()
        assert "__j" not in json.dumps(history)
