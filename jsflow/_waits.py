"""What a wait accepts and how it is described: matching, counting, schemas.

Why one module: the bare engine (``raise_event``) and the durable host (its
inbox) must decide identically which wait an event reaches, so the decision
is one public function, ``Wait.accepts``, built on ``payload_matches`` and
the ``distinct`` rule here; the host only feeds it the waits it stored.

- ``match`` is a deep subset: an object pattern matches an object payload
  key by key, recursively; anything else (arrays included) must be equal, and
  ``true`` is not ``1`` (JSON types, not Python's).
- ``distinct: 'by'`` (``waitForEvents``): an event whose top-level ``by``
  value repeats one already counted is not counted (it stays buffered).
- ``schema`` is a JSON Schema (Draft 2020-12), checked with ``jsonschema``
  after ``match``; a violation is a ``PayloadSchemaError`` whose ``path`` is
  the RFC 6901 pointer of the first violation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._errors import PayloadSchemaError

if TYPE_CHECKING:  # jsonschema costs ~10 MB of RSS: loaded by the first schema
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_MISSING = object()


def payload_matches(pattern: Any, payload: Any) -> bool:
    """True when ``pattern`` is a deep subset of ``payload`` (see the module doc)."""
    if isinstance(pattern, Mapping):
        if not isinstance(payload, Mapping):
            return False
        for key, sub in pattern.items():
            value = payload.get(key, _MISSING)
            if value is _MISSING or not payload_matches(sub, value):
                return False
        return True
    return _json_equal(pattern, payload)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def distinct_value(payload: Any, field: str) -> Any:
    """The value a ``distinct`` wait counts an event by (None when absent)."""
    return payload.get(field) if isinstance(payload, Mapping) else None


def received_payload(item: Any, array: bool) -> Any:
    """The payload of one received item (``{name, payload}`` in the array form)."""
    return item.get("payload") if array and isinstance(item, Mapping) else item


# -- JSON Schema ---------------------------------------------------------------------
_VALIDATORS: dict[str, Draft202012Validator] = {}


def schema_validator(schema: Any) -> Draft202012Validator:
    """A validator for ``schema`` (cached by its JSON text); ``SchemaError`` if it is not one."""
    from jsonschema import Draft202012Validator

    key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    found = _VALIDATORS.get(key)
    if found is None:
        Draft202012Validator.check_schema(schema)
        found = Draft202012Validator(schema)
        if len(_VALIDATORS) > 256:
            _VALIDATORS.clear()
        _VALIDATORS[key] = found
    return found


def schema_of(schema: Any) -> Any:
    """A JSON Schema from a dict (checked) or a pydantic model class; None stays None."""
    if schema is None:
        return None
    to_schema = getattr(schema, "model_json_schema", None)
    if isinstance(schema, type) and callable(to_schema):
        schema = to_schema()
    if not isinstance(schema, Mapping | bool):
        raise TypeError(f"schema must be a JSON Schema dict or a pydantic model, not {type(schema).__name__}")
    problem = schema_problem(schema)
    if problem is not None:
        raise ValueError(f"not a valid JSON Schema: {problem}")
    return dict(schema) if isinstance(schema, Mapping) else schema


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema, or None."""
    from jsonschema.exceptions import SchemaError

    try:
        schema_validator(schema)
    except SchemaError as exc:
        return exc.message
    return None


def json_pointer(parts: Sequence[Any]) -> str:
    """RFC 6901: ``~`` is ``~0`` and ``/`` is ``~1`` inside a token."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_schema(schema: Any, value: Any, what: str = "the payload") -> None:
    """Raise ``PayloadSchemaError`` when ``value`` violates ``schema``."""
    if schema is None:
        return
    errors = list(schema_validator(schema).iter_errors(value))
    if not errors:
        return
    first = min(errors, key=_error_order)
    parts = list(first.absolute_path)
    if first.validator == "required" and isinstance(first.instance, Mapping):
        missing = [k for k in first.validator_value if k not in first.instance]
        if missing:
            parts.append(missing[0])
    raise PayloadSchemaError(what, json_pointer(parts), first.message)


def _error_order(error: ValidationError) -> tuple[Any, ...]:
    """Violations in document order: the first one by path, then the deepest."""
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in error.absolute_path)


# -- where a wait was made ------------------------------------------------------------
#: how the script spells a call of an internal wait function
_CALLED_AS = {"__jhook_wait": "wait"}
_SEARCH_LINES = 30


def call_site(lines: Sequence[str], site: Mapping[str, Any], name: str) -> dict[str, int]:
    """The call's own line: QuickJS reports a call spread over several lines at
    its last argument, so when that line does not name the function, the
    nearest line above that does (``name(``) is taken, with its column."""
    line, column = int(site.get("line", 0)), int(site.get("column", 1))
    called = _CALLED_AS.get(name, name)
    if not 0 < line <= len(lines) or f"{called}(" in lines[line - 1].replace(" ", ""):
        return {"line": line, "column": column}
    for number in range(line - 1, max(0, line - _SEARCH_LINES), -1):
        text = lines[number - 1]
        at = text.find(called)
        if at >= 0 and text[at + len(called) :].lstrip().startswith("("):
            return {"line": number, "column": at + 1}
    return {"line": line, "column": column}


# -- descriptions -----------------------------------------------------------------------
def js_literal(value: Any, limit: int = 60) -> str:
    """A value as a script author would write it: strings in single quotes."""
    if isinstance(value, str):
        text = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_time(when: datetime) -> str:
    """``2026-12-07 09:00Z`` (seconds shown only when there are some)."""
    return when.strftime("%Y-%m-%d %H:%M" + (":%S" if when.second else "")) + "Z"


def _names(names: Sequence[str]) -> str:
    return " or ".join(js_literal(n) for n in names)


def describe_event_wait(
    names: Sequence[str],
    options: Mapping[str, Any],
    received: Sequence[Any] | None,
    array: bool,
) -> str:
    """``waitForEvent``/``waitForEvents`` in words, with progress for a counting wait."""
    match = options.get("match")
    matching = f" matching {js_literal(match, 80)}" if match is not None else ""
    count = options.get("count")
    if not isinstance(count, int):
        return f"waiting for event {_names(names)}{matching}"
    got = list(received or ())
    left = count - len(got)
    plural = "s" if left != 1 else ""
    if not got:
        return f"waiting for {count} {_names(names)} event{plural}{matching}"
    have = ""
    by = options.get("distinct")
    if isinstance(by, str):
        values = [distinct_value(received_payload(i, array), by) for i in got]
        have = " (have: " + ", ".join(v if isinstance(v, str) else js_literal(v) for v in values) + ")"
    progress = f"{len(got)} of {count} received"
    return f"waiting for {left} more {_names(names)} event{plural}{matching}{have}, {progress}"


def describe_call(name: str, args: Sequence[Any]) -> str:
    return f"waiting for {name}({', '.join(js_literal(a) for a in args)})"


def lost_race_message(info: Mapping[str, Any]) -> str:
    """Why a run awaits nothing: a wait it awaits was cancelled by a race it lost."""
    names = info.get("names")
    what = f"{info.get('name')}({_names(names)})" if names else f"{info.get('name')}()"
    loc = info.get("loc")
    where = f" made at line {loc['line']}" if isinstance(loc, Mapping) and "line" in loc else ""
    at = info.get("at")
    race_line = f" at line {at['line']}" if isinstance(at, Mapping) and "line" in at else ""
    how = info.get("how") or "Promise.race"
    lost = "was cancelled by cancelWait" if how == "cancelWait" else f"lost the {how}"
    return (
        f"the workflow is awaiting something the engine does not know about: the {what}{where} "
        f"{lost}{race_line}: a cancelled wait never settles, so awaiting it later waits forever. "
        "To wait for several events, use waitForEvents(name, { count }) (with distinct to count "
        "each sender once) instead of a loop of Promise.race"
    )
