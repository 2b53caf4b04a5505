"""Idempotency keys over HTTP: a repeat is 202 with the first receipt; the same
key for another event name or payload is 409 IdempotencyKeyConflictError."""

from __future__ import annotations

from _server_helpers import Served


def test_idempotency_key_reuse_is_409(served: Served) -> None:
    with served.client() as c:
        started = c.post("/v1/workflows", json={"script": "events", "workflow_id": "idem"})
        assert started.status_code == 201, started.text
        headers = {"Idempotency-Key": "pay-1"}
        first = c.post("/v1/workflows/idem/events/other", json={"n": 1}, headers=headers)
        assert first.status_code == 202, first.text
        again = c.post("/v1/workflows/idem/events/other", json={"n": 1}, headers=headers)
        assert again.status_code == 202 and again.json()["duplicate"] is True
        assert again.json()["event_id"] == first.json()["event_id"]
        for name, body in (("other", {"n": 2}), ("another", {"n": 1})):
            refused = c.post(f"/v1/workflows/idem/events/{name}", json=body, headers=headers)
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"]["type"] == "IdempotencyKeyConflictError"
