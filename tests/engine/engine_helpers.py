"""Helpers shared by the engine tests (imported by name: tests/ is not a package)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_MS = 1704067200000


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class FakeClock:
    """A settable aware-UTC clock; every engine time read goes through it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now
