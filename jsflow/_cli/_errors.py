"""One clear line and a non-zero exit code, never a traceback.

Why at one boundary: every command may hit a missing file, a bad JSON word,
an unknown id, a spent token or a store problem. Commands raise; the click
group catches everything here and prints ``error: <message>`` on stderr.
Exit codes: 1 for a failed operation (unknown id, finished workflow, drift,
faulted run), 2 for bad input (usage, JSON, files), 130 for Ctrl-C.
``JSFLOW_DEBUG=1`` re-raises so developers still get the traceback.

With ``--json`` the error is a JSON object instead (``{"error": {"type",
"message", "exit_code", ...}}``), on stdout when the command printed nothing
there yet (so stdout is always one JSON document), else on stderr; the exit
code is the same.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from jsflow import PayloadTooLargeError, WorkflowError
from jsflow.host import HostError
from jsflow.host.store import StoreError

from ._text import safe

DEBUG_ENV = "JSFLOW_DEBUG"
#: ``ctx.meta`` keys (shared by every context of one invocation)
JSON_MODE = "jsflow.json"
JSON_EMITTED = "jsflow.json_emitted"
#: attributes of host/store errors worth passing on in a JSON error object
_FIELDS = ("workflow_id", "status", "operation", "script_name", "reason", "cursor")


class CliError(click.ClickException):
    """A failure the user can act on; ``exit_code`` 1 (operation) or 2 (input).

    ``kind`` names the cause (the exception class, for errors translated
    from the host) and ``fields`` carries its structured attributes; both
    appear in ``--json`` error objects.
    """

    def __init__(self, message: str, exit_code: int = 1, *, kind: str = "CliError") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.kind = kind
        self.fields: dict[str, Any] = {}
        self.json_to: str | None = None  # "stdout" or "stderr" once --json mode is known

    def show(self, file: object = None) -> None:
        if self.json_to is not None:
            data = {"error": {"type": self.kind, "message": self.message, "exit_code": self.exit_code}}
            data["error"].update(self.fields)
            click.echo(json.dumps(data, ensure_ascii=False, default=str), err=self.json_to == "stderr")
            return
        click.echo(click.style("error: ", fg="red", bold=True) + safe(self.format_message()), err=True)


def mark_json(ctx: click.Context, err: CliError) -> CliError:
    """Make ``err`` print as JSON if the command ran with ``--json``."""
    if ctx.meta.get(JSON_MODE):
        err.json_to = "stderr" if ctx.meta.get(JSON_EMITTED) else "stdout"
    return err


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def translate(exc: BaseException) -> CliError:
    """The ``CliError`` for any exception a command let escape."""
    if isinstance(exc, CliError):
        return exc
    kind = type(exc).__name__
    if isinstance(exc, (PayloadTooLargeError, TypeError, ValueError)) and not isinstance(exc, HostError):
        err = CliError(_first_line(exc), exit_code=2, kind=kind)
    elif isinstance(exc, (HostError, StoreError, WorkflowError)):
        err = CliError(_first_line(exc), kind=kind)
    elif isinstance(exc, OSError):
        err = CliError(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", kind=kind)
    else:
        err = CliError(
            f"internal error: {kind}: {_first_line(exc)} (set {DEBUG_ENV}=1 for a traceback)", kind=kind
        )
    for name in _FIELDS:
        value = getattr(exc, name, None)
        if isinstance(value, (str, int)):
            err.fields[name] = value
    return err


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
