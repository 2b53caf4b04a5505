"""Turning command-line words into JSON values.

Why this convention: payloads are JSON, but typing ``'"ann"'`` in a shell is
hostile, so a word that is not valid JSON is taken as a plain string
(``approve`` -> ``"approve"``), while ``42``, ``true`` and ``{"a": 1}`` keep
their JSON meaning. ``@file.json`` reads the value from a file (``@-`` from
stdin), which is the only sane way to pass large or multi-line payloads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ._errors import CliError


def parse_value(text: str, what: str = "value") -> Any:
    """A JSON value from a command-line word, ``@file.json`` or ``@-``.

    Text in a file must be valid JSON (a file is never a bare word: a typo in
    it should fail loudly, not become a string).
    """
    if text.startswith("@") and len(text) > 1:
        return _from_file(text[1:], what)
    try:
        return json.loads(text)
    except RecursionError:
        raise CliError(f"{what} nests too deeply", exit_code=2) from None
    except ValueError:
        if _looks_like_json(text):
            raise CliError(f"{what} is not valid JSON: {text!r}", exit_code=2) from None
        literal = near_literal(text)
        if literal is not None:
            raise CliError(
                f"{what} {text!r} looks like a misspelt JSON {literal}; pass {literal}, "
                f"or quote it as a string: '{json.dumps(text)}'",
                exit_code=2,
            ) from None
        return text


JSON_LITERALS = ("true", "false", "null")


def near_literal(word: str) -> str | None:
    """The JSON literal ``word`` is a near miss of (``flase``, ``ture``, ``nul``, ``Null``), or None.

    Why refuse instead of taking the word as a string: ``resume ID flase``
    would otherwise resume with the *truthy* string "flase". A near miss is
    another case (``True``, ``NULL``, Python's ``None``) or one slip away: a
    letter missing or doubled/extra, or two neighbours swapped. A changed
    letter is not counted: ``tree`` and ``full`` are words people send.
    """
    lowered = word.strip().lower()
    if lowered == "none":
        return "null"
    if len(lowered) < 3:
        return None
    for literal in JSON_LITERALS:
        if _edits(lowered, literal) <= 1:
            return literal
    return None


def _edits(a: str, b: str) -> int:
    """Edit distance with insertions, deletions and adjacent swaps (no substitutions)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] if ca == cb else len(a) + len(b))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            row.append(cost)
        prev2, prev = prev, row
    return prev[-1]


def _looks_like_json(text: str) -> bool:
    """A word that starts like an object, array or quoted string was meant as JSON."""
    stripped = text.strip()
    return bool(stripped) and stripped[0] in '{["'


def _from_file(name: str, what: str) -> Any:
    try:
        raw = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {what} from {name}: {exc.strerror or exc}", exit_code=2) from None
    try:
        return json.loads(raw)
    except RecursionError:
        raise CliError(f"{what} in {name} nests too deeply", exit_code=2) from None
    except ValueError as exc:
        raise CliError(f"{what} in {name} is not valid JSON: {exc}", exit_code=2) from None


def parse_named(text: str, what: str = "event") -> tuple[str, Any]:
    """``NAME=JSON`` (or ``NAME`` alone for a null payload), as used by ``dev --event``."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not name:
        raise CliError(f"{what} {text!r} has no name; use NAME=JSON", exit_code=2)
    return name, (parse_value(value, f"payload of {what} {name!r}") if sep else None)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON for people and scripts alike: non-ASCII kept, datetimes as ISO strings."""
    return json.dumps(value, ensure_ascii=False, indent=indent, default=_default)


def _default(value: Any) -> Any:
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return iso()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
