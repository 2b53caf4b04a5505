"""One clear line and a non-zero exit code, never a traceback.

Why at one boundary: every command may hit a missing file, a bad JSON word,
an unknown id, a spent token or a store problem. Commands raise; the click
group catches everything here and prints ``error: <message>`` on stderr.
Exit codes: 1 for a failed operation (unknown id, finished workflow, drift,
faulted run), 2 for bad input (usage, JSON, files), 130 for Ctrl-C.
``JSFLOW_DEBUG=1`` re-raises so developers still get the traceback.
"""

from __future__ import annotations

import os

import click

from jsflow import PayloadTooLargeError, WorkflowError
from jsflow.host import HostError
from jsflow.host.store import StoreError

DEBUG_ENV = "JSFLOW_DEBUG"


class CliError(click.ClickException):
    """A failure the user can act on; ``exit_code`` 1 (operation) or 2 (input)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: object = None) -> None:
        click.echo(click.style("error: ", fg="red", bold=True) + self.format_message(), err=True)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def translate(exc: BaseException) -> CliError:
    """The ``CliError`` for any exception a command let escape."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, (PayloadTooLargeError, TypeError, ValueError)) and not isinstance(exc, HostError):
        return CliError(_first_line(exc), exit_code=2)
    if isinstance(exc, (HostError, StoreError, WorkflowError)):
        return CliError(_first_line(exc))
    if isinstance(exc, OSError):
        return CliError(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
    return CliError(
        f"internal error: {type(exc).__name__}: {_first_line(exc)} (set {DEBUG_ENV}=1 for a traceback)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
