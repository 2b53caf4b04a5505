"""One payload validator for every entrance: engine, host, CLI and HTTP server.

Why one: three validators that disagreed let a 200-level nested event be
stored by the inbox and then poison every later delivery to that instance.
Every value that enters a workflow from outside (an argument, a resume value,
an event payload, a token payload) goes through ``validate_payload`` before
anything is stored or run, so what is accepted once is accepted everywhere.

The rules: JSON types only (no NaN/Infinity, no integers past Python's
4,300-digit conversion limit, no lone surrogates, which cannot be stored as
UTF-8), nested at most ``MAX_NESTING`` levels, and at most ``limit`` bytes of
compact UTF-8 JSON.
"""

from __future__ import annotations

import json
from typing import Any

from js_runtime import MAX_NESTING, nesting_over

from ._errors import InvalidPayloadError, PayloadTooLargeError

__all__ = ["MAX_NESTING", "validate_payload"]


def validate_payload(value: Any, *, limit: int, what: str = "the payload") -> str:
    """The compact JSON text of ``value``, or a typed error before anything happens.

    Raises ``InvalidPayloadError`` (a ``TypeError`` and ``ValueError``) for a
    value that is not JSON, nests too deeply or cannot be stored as UTF-8,
    and ``PayloadTooLargeError`` for one over ``limit`` bytes.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except RecursionError:
        raise InvalidPayloadError(what, f"nests more than {MAX_NESTING} levels deep") from None
    except (TypeError, ValueError) as exc:
        raise InvalidPayloadError(what, f"is not JSON: {str(exc)[:200]}") from None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayloadError(what, "contains a lone surrogate, which is not valid Unicode") from None
    if len(data) > limit:
        raise PayloadTooLargeError(what, len(data), limit)
    if nesting_over(text):
        raise InvalidPayloadError(what, f"nests more than {MAX_NESTING} levels deep")
    return text
