"""Errors from a run translated into jsflow's error types, at one boundary.

Why a module of its own: the run (``_run``) turns QuickJS failures, the
prelude's error descriptions and drift reports into ``WorkflowError``s in
many places; keeping the translation here keeps each message written once.
"""

from __future__ import annotations

import re
from typing import Any

from js_runtime import MAX_NESTING, JSError, ResourceLimitExceeded, nesting_over

from ._errors import (
    JournalCompatibilityError,
    PayloadTooLargeError,
    ResourceLimitError,
    ScriptError,
    WorkflowError,
)


def value_error(what: str, text: str, limit: int) -> WorkflowError | None:
    """Why a JSON value from the script cannot become part of the state, if it cannot."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        return PayloadTooLargeError(what, size, limit)
    if nesting_over(text):
        return ScriptError(f"{what} nests more than {MAX_NESTING} levels deep", js_name="TypeError")
    return None


def limit_error(exc: ResourceLimitExceeded) -> ResourceLimitError:
    return ResourceLimitError(str(exc), limit=exc.limit)


_LINE_RE = re.compile(r"<input>:(\d+)(?::(\d+))?")


def script_error(exc: JSError, *, loading: bool = False) -> ScriptError:
    message = exc.message
    if loading and exc.name == "SyntaxError":
        match = _LINE_RE.search(exc.stack)
        if match:
            message = f"{message} (line {match.group(1)})"
    return ScriptError(message, js_name=exc.name, stack=exc.stack)


def error_from_description(desc: dict[str, Any]) -> WorkflowError:
    limit = desc.get("limit")
    if limit:
        return ResourceLimitError(f"script exceeded the {limit} limit", limit=str(limit))
    return ScriptError(
        str(desc.get("message", "")), js_name=str(desc.get("name", "Error")), stack=str(desc.get("stack", ""))
    )


def drift_error(d: dict[str, Any]) -> JournalCompatibilityError:
    slot = int(d["slot"])
    exp_t, exp_n = d.get("expected_type"), d.get("expected_name")
    enc_t, enc_n = d.get("encountered_type"), d.get("encountered_name")
    if d.get("patch"):
        what = (
            f"journal entry {slot} is the marker of patched({exp_n!r}), but the script no longer "
            "calls patched or deprecatePatch with that name at that point"
        )
    elif d.get("finished"):
        what = (
            f"the script finished before journal slot {slot} ({exp_t} {exp_n!r}) was "
            "replayed: the script no longer makes that call"
        )
    elif enc_t is None:
        what = (
            f"journal slot {slot} holds a completion of {exp_t} {exp_n!r}, but the script "
            "has not scheduled anything at that slot"
        )
    elif d.get("event") is not None and enc_n == exp_n:
        what = (
            f"journal slot {slot} delivered event {d['event']!r}, but the script now "
            f"waits there for {d.get('encountered_events')}"
        )
    else:
        what = (
            f"journal slot {slot} holds a completion of {exp_t} {exp_n!r}, but the script "
            f"now calls {enc_t} {enc_n!r} there"
        )
    return JournalCompatibilityError(
        f"the script no longer matches the journal: {what}",
        slot_index=slot,
        expected_type=exp_t,
        expected_name=exp_n,
        encountered_type=enc_t,
        encountered_name=enc_n,
    )
