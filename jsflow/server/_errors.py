"""Every failure becomes one JSON shape and one status code, in one place.

Why one handler: handlers spread over routes drift (one forgets a class and
a caller sees a 500 and a traceback). Routes raise the host's own errors;
``error_response`` maps them by class (walking the MRO, so a subclass the
table forgot still gets its parent's status) to
``{"error": {"type", "message", ...fields}}``, where the fields are the
exception's structured attributes (``workflow_id``, ``wait_id``, ...).
``STATUS`` lists every ``HostError`` subclass explicitly; a test checks that
none is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from jsflow import InvalidPayloadError, PayloadTooLargeError, WorkflowError
from jsflow.host import (
    AdvanceFailedError,
    AlreadyResumedError,
    CorruptStateError,
    HostClosedError,
    HostError,
    IdempotencyKeyConflictError,
    InvalidCursorError,
    InvalidScheduleError,
    InvalidWorkflowIdError,
    MissingRegistrationError,
    QueryError,
    QueryNotFoundError,
    TokenError,
    TokenExpiredError,
    TokenNotFoundError,
    TokenUsedError,
    UnknownScheduleError,
    UnknownScriptError,
    UnknownWorkflowError,
    UpgradeError,
    WaitSelectionError,
    WorkflowBusyError,
    WorkflowExistsError,
    WorkflowFinishedError,
    WorkflowNotFaultedError,
)
from jsflow.host.store import StoreError

from ._logs import redact

log = logging.getLogger("jsflow.server")


class ApiError(Exception):
    """An HTTP-level refusal raised by the server itself (auth, limits, bodies,
    conflicts the host does not know about)."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = dict(headers or {})
        self.fields = fields


#: host error class -> HTTP status (the error table of docs/reference/http.md)
STATUS: dict[type[BaseException], int] = {
    HostError: 500,
    HostClosedError: 503,
    UnknownWorkflowError: 404,
    UnknownScriptError: 404,
    TokenNotFoundError: 404,
    WorkflowFinishedError: 409,
    WorkflowExistsError: 409,
    WorkflowNotFaultedError: 409,
    AlreadyResumedError: 409,
    TokenUsedError: 409,
    UpgradeError: 409,
    TokenExpiredError: 410,
    TokenError: 400,
    InvalidCursorError: 400,
    InvalidWorkflowIdError: 422,
    # the instance needs steps this server was not started with (--app): it cannot run here
    MissingRegistrationError: 409,
    WaitSelectionError: 409,
    WorkflowBusyError: 503,
    IdempotencyKeyConflictError: 409,
    # the stored state is damaged: nothing the request did; the instance was left alone
    CorruptStateError: 500,
    # the advance ran and the workflow faulted on an unexpected error: the request
    # was accepted, the instance is now faulted (409, like acting on a finished one)
    AdvanceFailedError: 409,
    # a query handler failed (threw, was async, called a step/suspend/wait): the script's fault
    QueryError: 422,
    QueryNotFoundError: 404,
    UnknownScheduleError: 404,
    InvalidScheduleError: 422,
    PayloadTooLargeError: 413,
    InvalidPayloadError: 422,
    # input the engine refuses (a payload nested too deep, a non-JSON value)
    TypeError: 422,
    ValueError: 422,
    WorkflowError: 422,
    StoreError: 503,
}
#: read-only view of ``STATUS`` for callers that map errors the same way
ERROR_STATUS: Mapping[type[BaseException], int] = MappingProxyType(STATUS)
#: statuses that tell the caller to come back
RETRY_AFTER = {503: "1"}
#: attributes never copied into an error body
_HIDDEN = frozenset({"args", "report"})
#: what a caller without an API key (``/hooks``) is told, by error type: never
#: a workflow id, wait id, time or file path, only what to do about it
PUBLIC_MESSAGES = {
    "TokenNotFoundError": "unknown token",
    "TokenUsedError": "this token was already used",
    "TokenExpiredError": "this token has expired",
    "WorkflowFinishedError": "the workflow behind this token has finished",
    "AlreadyResumedError": "the wait behind this token is no longer pending",
}
#: the same, by status, for every other error type
STATUS_MESSAGES = {
    404: "not found",
    409: "the request conflicts with the workflow's state",
    410: "gone",
    500: "internal error; the server log has the details",
    503: "the store is busy or unavailable; retry shortly",
}
#: statuses whose messages describe the request itself (its body, its size, its rate),
#: which its sender may read whoever they are
_ABOUT_THE_REQUEST = frozenset({400, 413, 422, 429})
#: fields a caller without a key never sees, whatever the status
_PRIVATE_FIELDS = frozenset({"workflow_id", "wait_id", "used_at", "expires_at", "token_hash", "pending"})


def http_status(exc: BaseException) -> int:
    """The HTTP status the server answers ``exc`` with: that of the nearest class
    of ``exc`` in ``ERROR_STATUS`` (500 if none)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    return str(value)


def error_body(type_: str, message: str, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    extra = {k: _jsonable(v) for k, v in (fields or {}).items() if k not in ("type", "message")}
    return {"error": {"type": type_, "message": message, **extra}}


def _fields(exc: BaseException) -> dict[str, Any]:
    fields = {k: v for k, v in vars(exc).items() if not k.startswith("_") and k not in _HIDDEN}
    if isinstance(exc, UpgradeError):
        fields["report"] = exc.report
    return fields


def _validation(exc: RequestValidationError | ValidationError) -> tuple[int, str, str, dict[str, Any]]:
    """Query/path/header problems and unparseable JSON are 400; a JSON body of
    the wrong shape is 422."""
    errors = exc.errors()
    details = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors[:20]
    ]
    in_body = all(e.get("loc", ("body",))[0] == "body" for e in errors) and isinstance(
        exc, (RequestValidationError, ValidationError)
    )
    bad_json = any(e.get("type") == "json_invalid" for e in errors)
    status = 422 if in_body and not bad_json else 400
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"])
    message = f"{where}: {first['msg']}" if where else first["msg"]
    return status, "ValidationError" if status == 422 else "BadRequestError", message, {"errors": details}


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: every error the app lets escape ends here."""
    metrics = getattr(request.app.state, "metrics", None)
    status, headers, body = error_reply(exc, request.method, request.url.path, _has_key(request), metrics)
    return JSONResponse(body, status_code=status, headers=headers)


def error_reply(
    exc: Exception, method: str, path: str, has_key: bool, metrics: Any = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """``exc`` as (status, headers, JSON body), counted in ``metrics``: what
    ``error_response`` sends, for callers that answer without a ``Request`` (``_hot``).
    ``has_key``: the request presented an API key the server accepted."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        status, type_, message, fields = exc.status, exc.type, exc.message, exc.fields
        headers.update(exc.headers)
    elif isinstance(exc, (RequestValidationError, ValidationError)):
        status, type_, message, fields = _validation(exc)
    elif isinstance(exc, StarletteHTTPException):
        status, type_, message, fields = exc.status_code, _http_type(exc.status_code), str(exc.detail), {}
        headers.update(exc.headers or {})
    else:
        status, type_, message, fields = _host_error(method, path, has_key, exc)
    if status in RETRY_AFTER:
        headers.setdefault("Retry-After", RETRY_AFTER[status])
    if metrics is not None:
        metrics.error(status)
    return status, headers, error_body(type_, message or type_, fields)


def _host_error(
    method: str, path: str, has_key: bool, exc: Exception
) -> tuple[int, str, str, dict[str, Any]]:
    """A host or store error's answer. Server-side failures (5xx) are logged with
    their details (the path's credentials masked) and answered in general words:
    a store's message may name a file or a host. A caller without an API key
    (``/hooks``) learns no workflow id, wait id or time either."""
    status, type_ = http_status(exc), type(exc).__name__
    message, fields = str(exc), _fields(exc)
    if status >= 500:
        log.error("%s %s failed: %s", method, redact(path), exc, exc_info=exc)
        message = STATUS_MESSAGES.get(status, STATUS_MESSAGES[500])
        if status == 500:
            message = f"internal error ({type_}); the server log has the details"
        fields = {}
        if status == 500 and hasattr(exc, "workflow_id") and has_key:
            fields = {"workflow_id": exc.workflow_id}
    elif not has_key and status not in _ABOUT_THE_REQUEST:
        message = PUBLIC_MESSAGES.get(type_) or STATUS_MESSAGES.get(status, "refused")
        fields = {}
    elif not has_key:
        fields = {k: v for k, v in fields.items() if k not in _PRIVATE_FIELDS}
    return status, type_, message, fields


def _has_key(request: Request) -> bool:
    """Whether the request presented an API key the server accepted."""
    return getattr(request.state, "principal", None) is not None


def _http_type(status: int) -> str:
    return {404: "NotFoundError", 405: "MethodNotAllowedError", 413: "PayloadTooLargeError"}.get(
        status, "HTTPError"
    )


def install(app: FastAPI) -> None:
    """Register ``error_response`` for everything (the catch-all too)."""
    handled = (ApiError, RequestValidationError, ValidationError, StarletteHTTPException)
    for cls in (
        *handled,
        HostError,
        WorkflowError,
        StoreError,
        LookupError,
        TypeError,
        ValueError,
        Exception,
    ):
        app.add_exception_handler(cls, error_response)  # type: ignore[arg-type]
