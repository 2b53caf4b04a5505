"""Every host error has an explicit status in the server's error table."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import jsflow.host
from jsflow.host import HostError
from jsflow.server import ERROR_STATUS, http_status

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_every_host_error_is_mapped() -> None:
    public = {
        obj for _, obj in inspect.getmembers(jsflow.host, inspect.isclass) if issubclass(obj, HostError)
    }
    missing = sorted(c.__name__ for c in (public | _subclasses(HostError)) if c not in ERROR_STATUS)
    assert not missing, f"add these to jsflow.server ERROR_STATUS: {missing}"


def test_spec_statuses() -> None:
    h = jsflow.host
    assert http_status(h.UnknownWorkflowError("x")) == 404
    assert http_status(h.TokenUsedError("0" * 64, "w", 1, NOW)) == 409
    assert http_status(h.TokenExpiredError("0" * 64, "w", 1, NOW)) == 410
    assert http_status(h.WorkflowFinishedError("w", "completed")) == 409
    assert http_status(h.AlreadyResumedError("w", 1, [])) == 409
    assert http_status(h.InvalidCursorError("c", "bad")) == 400
