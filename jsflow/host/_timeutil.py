"""Millisecond timestamps, the unit of journal times and wait due times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_to_datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")
    return (value - _EPOCH) // timedelta(milliseconds=1)
