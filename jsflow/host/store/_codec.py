"""Value conversions shared by every store backend.

Why here and not in the SQL store: the memory store must behave exactly like
the SQL stores (the same contract suite runs against both), so it rounds
timestamps to milliseconds and validates inputs with the same functions.
SQL columns hold timestamps as integer milliseconds since the Unix epoch (UTC),
which sorts and compares the same way in SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jsflow import datetime_to_ms, ms_to_datetime

from ._errors import CorruptRecordError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HASH_RE = re.compile(r"[0-9a-f]{64}")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock: an aware UTC datetime."""
    return datetime.now(UTC)


def to_ms(value: datetime) -> int:
    """Aware datetime -> integer milliseconds since the epoch (naive is refused)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is not UTC and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"naive datetime {value.isoformat()} (the store needs aware UTC)")
    return datetime_to_ms(value)


def from_ms(value: int) -> datetime:
    """Integer milliseconds since the epoch -> aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"timestamp must be an integer, got {type(value).__name__}")
    return ms_to_datetime(value)


def normalize_time(value: datetime) -> datetime:
    """Round an aware datetime to what the store keeps (UTC, millisecond precision)."""
    return from_ms(to_ms(value))


def optional_time(value: datetime | None) -> datetime | None:
    return None if value is None else normalize_time(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def dump_json(value: Any) -> str:
    """Compact, key-sorted JSON (stable text for equal values)."""
    return _ENCODER.encode(value)


def check_token_hash(token_hash: str) -> str:
    """Refuse anything that is not a sha256 hex digest: raw tokens must never be stored."""
    if not isinstance(token_hash, str) or not _HASH_RE.fullmatch(token_hash):
        raise ValueError(
            "token_hash must be a lowercase sha256 hex digest; "
            "hash raw tokens with jsflow.host.hash_token first"
        )
    return token_hash


def check_metadata(metadata: Any) -> dict[str, str]:
    """Metadata is a flat str -> str mapping (copied, so callers cannot mutate stored data)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TypeError("metadata must be a dict of str to str")
    return dict(metadata)


def check_json_text(value: str | None, what: str) -> str | None:
    """Opaque JSON columns must at least be valid JSON text."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a JSON string, got {type(value).__name__}")
    try:
        json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from exc
    return value


def same_request(event_name: str, payload_json: str, name: str, other_json: str) -> bool:
    """Whether an idempotent send repeats a stored event: the same name and the same
    JSON value (key order aside; ``1`` and ``true`` differ, as they do in JSON)."""
    if event_name != name:
        return False
    if payload_json == other_json:
        return True
    try:
        return dump_json(json.loads(payload_json)) == dump_json(json.loads(other_json))
    except ValueError:
        return False


class RowDecoder:
    """Decode columns of one stored row, turning any failure into CorruptRecordError."""

    def __init__(self, table: str, key: object) -> None:
        self.table = table
        self.key = key

    def fail(self, reason: str) -> CorruptRecordError:
        return CorruptRecordError(self.table, self.key, reason)

    def time(self, column: str, value: Any) -> datetime:
        try:
            return from_ms(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise self.fail(f"{column}: bad timestamp {value!r}") from exc

    def opt_time(self, column: str, value: Any) -> datetime | None:
        return None if value is None else self.time(column, value)

    def text(self, column: str, value: Any, *, optional: bool = False) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{column}: expected text, got {type(value).__name__}")
        return value

    def integer(self, column: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{column}: expected an integer, got {value!r}")
        return value

    def json(self, column: str, value: Any, expect: type | None = None) -> Any:
        try:
            decoded = json.loads(value)
        except (TypeError, ValueError) as exc:
            raise self.fail(f"{column}: invalid JSON") from exc
        if expect is not None and not isinstance(decoded, expect):
            raise self.fail(f"{column}: expected JSON {expect.__name__}")
        return decoded

    def metadata(self, column: str, value: Any) -> dict[str, str]:
        decoded = self.json(column, value, dict)
        try:
            return check_metadata(decoded)
        except TypeError as exc:
            raise self.fail(f"{column}: {exc}") from exc

    def json_text(self, column: str, value: Any) -> str | None:
        if value is None:
            return None
        self.json(column, value)
        return value


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only: what SQL ``LOWER`` does on every backend,
    so id searches match the same rows in memory and in SQL."""
    return text.translate(_ASCII_LOWER)


def like_escape(text: str) -> str:
    """``text`` as a literal inside a ``LIKE ... ESCAPE '!'`` pattern."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
