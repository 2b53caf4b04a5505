"""Fixtures for the server tests: a host on a real SQLite file and a real
uvicorn serving it on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _server_helpers import APPROVER, COLLECT, ECHO, EVENTS, FAILS, HOOKED, MANUAL, Served, register, serve

from jsflow.host import WorkflowHost


@pytest.fixture
def host(tmp_path: Path) -> Iterator[WorkflowHost]:
    h = WorkflowHost(f"sqlite:///{tmp_path / 'server.db'}", hook_secret="server-test-secret")
    h.engine.register_suspend_function("manual")
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first call fails")
        return "fine"

    h.register_step_function("flaky", flaky)
    h.register_suspend_function("approve", before_suspend=lambda token, expires_at, args: None)
    yield h
    h.close()


@pytest.fixture
def served(host: WorkflowHost) -> Iterator[Served]:
    with serve(host) as s:
        register(
            s,
            hooked=HOOKED,
            events=EVENTS,
            collect=COLLECT,
            echo=ECHO,
            fails=FAILS,
            manual=MANUAL,
            approver=APPROVER,
        )
        yield s
