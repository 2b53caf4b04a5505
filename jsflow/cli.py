"""The ``jsflow`` command line: a thin click group over ``jsflow.host``.

Why thin: everything a command does is one or two ``WorkflowHost`` calls, so
the CLI and an embedding Python backend behave the same. The commands live
in ``jsflow._cli`` (one module per concern); this module assembles the group
and owns the error boundary: any exception a command lets escape becomes one
``error: ...`` line on stderr and a non-zero exit code, never a traceback
(``JSFLOW_DEBUG=1`` shows it).

::

    jsflow run samples/payment_race.js A-17 --id order-17
    jsflow event order-17 payment '{"amount": 42}'
    jsflow show order-17
"""

from __future__ import annotations

from typing import Any

import click

from ._cli._checks import check, replay
from ._cli._commands import (
    cancel,
    event,
    list_cmd,
    resume,
    resume_token,
    retry_cmd,
    run,
    show,
    upgrade,
    worker,
)
from ._cli._dev import dev
from ._cli._errors import CliError, debug_enabled, translate
from ._cli._serve import serve

__all__ = ["cli", "main"]


class JsflowGroup(click.Group):
    """A group whose commands never leak a traceback to the user."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise CliError("interrupted", exit_code=130) from None
        except Exception as exc:
            if debug_enabled():
                raise
            raise translate(exc) from None


@click.group(cls=JsflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jsflow", prog_name="jsflow")
def cli() -> None:
    """Durable JavaScript workflows: start, inspect and drive them from the shell.

    State lives in a SQLite file (--db, $JSFLOW_DB, default .jsflow/jsflow.db).
    Payloads are JSON; a bare word is a string; @file.json reads a file.
    Add --json to any command for machine-readable output.

    Example:

    \b
        jsflow run samples/payment_race.js A-17 --id order-17
        jsflow event order-17 payment '{"amount": 42}'
        jsflow show order-17
    """


for _command in (
    run,
    list_cmd,
    show,
    event,
    resume,
    resume_token,
    cancel,
    retry_cmd,
    upgrade,
    worker,
    replay,
    check,
    dev,
    serve,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point (``jsflow = "jsflow.cli:main"``)."""
    return cli.main(args=argv, prog_name="jsflow")
