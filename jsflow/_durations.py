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
MAX_TEXT = 100
"""Longer duration strings are refused before parsing (no real duration needs more)."""
# The grammar is mirrored in runtime/prelude.js (durationMs), which refuses bad
# durations in JS as catchable errors; keep the two identical. ASCII only: in
# Python, \d and IGNORECASE would also accept non-ASCII digits and letters.
_FLAGS = re.ASCII | re.IGNORECASE
_NUMBER = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|sec|min|s|m|h|d|w)", _FLAGS)
_ISO = re.compile(
    r"P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?",
    _FLAGS,
)
_BLANKS = " \t\n\r"


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse a duration; raises ValueError with the offending text otherwise.

    Linear in the input, and strings over ``MAX_TEXT`` characters are refused
    up front: a script controls the text, and parsing runs outside its budget.
    """
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
        raise ValueError(f"invalid duration {_short(value)}: use a string like '5m' or milliseconds")
    if len(value) > MAX_TEXT:
        raise ValueError(f"invalid duration {_short(value)}: longer than {MAX_TEXT} characters")
    return _parse_text(value.strip(_BLANKS))


def _parse_text(text: str) -> timedelta:
    if not text:
        raise ValueError("invalid duration '': empty")
    if text[0] in "pP":
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
    if _NUMBER.fullmatch(text):
        return timedelta(milliseconds=float(text))
    pos, total = 0, 0.0
    compact = text.replace(" ", "")
    while pos < len(compact):
        match = _PART.match(compact, pos)  # anchored: each character is looked at once
        if match is None:
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
        raise ValueError(f"invalid duration {_short(original)}: negative")
    return delta
