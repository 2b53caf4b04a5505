"""Shared helpers for the WorkflowHost tests (not collected)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jsflow.host import WorkflowHost
from jsflow.host.store import Store


class FakeClock:
    """A settable clock: the host, engine and store all read it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def open_host(url: Store | str, clock: FakeClock | None = None, **kwargs: Any) -> WorkflowHost:
    return WorkflowHost(url, clock=clock, hook_secret="test-secret", **kwargs)
