"""Pieces every router shares: the documented error responses, ``?wait`` and
the path parameters that carry ids and names."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator

from jsflow import MAX_WORKFLOW_ID_LENGTH

from ._http import decode_segment
from ._schemas import ErrorBody

_WHY = {
    400: "body is not JSON, or a bad query value",
    401: "missing or unknown API key",
    403: "the API key lacks the scope",
    404: "unknown workflow, script or token",
    409: "token already used, wait already resumed, workflow finished, id conflict",
    410: "token expired",
    413: "body over the payload limit",
    422: "well-formed JSON that fails validation",
    429: "rate limited (see Retry-After)",
    503: "the store is busy or unavailable; retry",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error shape under each status it may answer."""
    return {status: {"model": ErrorBody, "description": _WHY[status]} for status in statuses}


#: errors any authenticated route may answer
AUTH = (400, 401, 403, 413, 429, 503)

WaitQuery = Query(
    default=None,
    ge=0,
    le=3600,
    description="hold the reply until the instance suspends again or finishes, at most this many seconds",
)

#: a workflow id in a path: percent-encoded, ``%2F`` included (``_http``); the
#: host's id rule decides what is valid, so a refusal gives its real reason
WorkflowId = Annotated[
    str,
    Path(
        min_length=1,
        description=f"the workflow id, percent-encoded (at most {MAX_WORKFLOW_ID_LENGTH} characters, no NUL)",
    ),
    AfterValidator(decode_segment),
]
#: an event or query name in a path, percent-encoded like ids
PathName = Annotated[
    str,
    Path(min_length=1, max_length=1000, description="the name, percent-encoded"),
    AfterValidator(decode_segment),
]
