"""Durations as scripts write them: ``'3d'``, ``'1h30m'``, ``'500ms'``, ISO 8601
``'PT1H'``, or a number of milliseconds (JavaScript's unit)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS_MS = {
    "ms": 1,
    "s": 1000,
    "sec": 1000,
    "m": 60_000,
    "min": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
MAX_DURATION = timedelta(days=100 * 365)
"""Longer durations are refused: a wait must end at a representable date."""
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w)", re.IGNORECASE)
_ISO = re.compile(
    r"P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse a duration; raises ValueError with the offending text otherwise."""
    try:
        delta = _parse(value)
    except OverflowError:
        delta = timedelta.max
    if delta > MAX_DURATION:
        raise ValueError(f"invalid duration {_short(value)}: longer than {MAX_DURATION.days // 365} years")
    return delta


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _parse(value: str | int | float | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        return _non_negative(value, value)
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"invalid duration {value!r}")
        return _non_negative(timedelta(milliseconds=value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: use a string like '5m' or milliseconds")
    return _non_negative(_parse_text(value.strip()), value)


def _parse_text(text: str) -> timedelta:
    if not text:
        raise ValueError("invalid duration '': empty")
    if text.upper().startswith("P"):
        match = _ISO.fullmatch(text)
        if not match or text.upper() in ("P", "PT"):
            raise ValueError(f"invalid ISO 8601 duration {text!r}")
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        return timedelta(
            weeks=parts.get("w", 0),
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    try:
        return timedelta(milliseconds=float(text))
    except ValueError:
        pass
    pos, total = 0, 0.0
    compact = text.replace(" ", "")
    for match in _PART.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2).lower()]
        pos = match.end()
    if pos != len(compact) or pos == 0:
        raise ValueError(
            f"invalid duration {text!r}: use forms like '500ms', '10s', '5m', '2h', '3d', "
            "'1w', '1h30m' or ISO 8601 'PT1H'"
        )
    return timedelta(milliseconds=total)


def _non_negative(delta: timedelta, original: object) -> timedelta:
    if delta < timedelta(0):
        raise ValueError(f"invalid duration {original!r}: negative")
    return delta
