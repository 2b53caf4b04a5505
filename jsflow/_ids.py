"""The one rule for workflow ids and for text a store must hold.

Why here, in the engine package: the engine, the host, the CLI and the HTTP
server all take workflow ids from outside, and each used to check them its
own way (the server allowed 1,000 characters where the host allowed 512).
Everything now asks these two functions, and quotes ``MAX_WORKFLOW_ID_LENGTH``.

- A workflow id is a non-empty string of valid Unicode (no lone surrogates),
  at most ``MAX_WORKFLOW_ID_LENGTH`` characters, without NUL (U+0000). Any
  other character is allowed: ``/``, spaces and the like reach an instance
  over HTTP as percent-encoded path segments.
- Text that goes into a store as text (ids, event names, script names and
  sources, search terms, reasons, idempotency keys) holds no NUL: PostgreSQL
  cannot store it, and the same input must get the same answer on every
  store. (JSON payloads are stored as JSON, where NUL is the escape
  ``\\u0000``: they may contain it.)
"""

from __future__ import annotations

from typing import Any

#: the longest workflow id, in characters (README and the HTTP API quote this)
MAX_WORKFLOW_ID_LENGTH = 512


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as text, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which no store can hold"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate, which is not valid Unicode"
    return None


def workflow_id_problem(workflow_id: Any) -> str | None:
    """Why ``workflow_id`` is not a valid workflow id, or None when it is."""
    if not isinstance(workflow_id, str):
        return f"must be a string, not {type(workflow_id).__name__}"
    if not workflow_id:
        return "must not be empty"
    if len(workflow_id) > MAX_WORKFLOW_ID_LENGTH:
        return f"is {len(workflow_id)} characters long; the limit is {MAX_WORKFLOW_ID_LENGTH}"
    return text_problem(workflow_id)
