"""Issue 17 over HTTP: an admin reissues a resume token (201, the old one is
refused), the server logs each issuance without the token, and an idempotent
repeat after the workflow finished is still 202 with the first receipt."""

from __future__ import annotations

import logging

import pytest
from _server_helpers import READER, RESUMER, Served


def _start(c, script: str, **body) -> dict:
    r = c.post("/v1/workflows", json={"script": script, **body})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_reissue_token_201_and_the_old_token_dies(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jsflow.server")
    with served.client() as c, served.client(RESUMER) as resumer, served.client(READER) as reader:
        inst = _start(c, "approver", args=[250], workflow_id="rt")
        old, wait_id = inst["tokens"][0]["token"], inst["waits"][0]["wait_id"]
        path = f"/v1/workflows/rt/waits/{wait_id}/token"
        assert reader.post(path).status_code == 403
        r = c.post(path)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["token"] and body["token"] != old and body["url"].endswith(body["token"])
        assert body["expires_at"] == inst["tokens"][0]["expires_at"]
        assert c.post("/v1/workflows/rt/waits/99/token").status_code == 409
        assert resumer.post("/v1/resume", json={"token": old, "payload": 1}).status_code == 404
        assert resumer.post("/v1/resume", json={"token": body["token"], "payload": 2}).status_code == 204
    lines = [r.getMessage() for r in caplog.records if "resume token issued" in r.getMessage()]
    assert any("'rt'" in line and f"wait {wait_id}" in line for line in lines)
    assert not any(old in line or body["token"] in line for line in lines)


def test_idempotent_repeat_after_the_end_is_202_with_the_first_receipt(served: Served) -> None:
    with served.client() as c:
        _start(c, "events", workflow_id="ie")
        assert c.post("/v1/workflows/ie/events/go?wait=5", json=1).status_code == 202
        key = {"Idempotency-Key": "k"}
        first = c.post("/v1/workflows/ie/events/next?wait=5", json=2, headers=key)
        assert first.status_code == 202, first.text
        assert c.get("/v1/workflows/ie").json()["status"] == "completed"
        again = c.post("/v1/workflows/ie/events/next", json=2, headers=key)
        assert again.status_code == 202, again.text
        assert again.json()["event_id"] == first.json()["event_id"] and again.json()["duplicate"] is True
