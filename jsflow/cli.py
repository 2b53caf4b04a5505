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

import os
import sys
from typing import Any

import click

from ._cli._checks import check, replay
from ._cli._commands import (
    cancel,
    event,
    resume,
    resume_token,
    retry_cmd,
    run,
    upgrade,
    worker,
)
from ._cli._dev import dev
from ._cli._errors import JSON_MODE, CliError, debug_enabled, mark_json, translate
from ._cli._inspect import list_cmd, show, steps
from ._cli._lifecycle import query, schedule
from ._cli._ops import batch, fork, purge, recover
from ._cli._serve import serve
from ._cli._token_cmd import token_cmd
from ._cli._types_cmd import types_cmd

__all__ = ["cli", "main"]
ARGV = "jsflow.argv"


class JsflowGroup(click.Group):
    """A group whose commands never leak a traceback to the user."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGV] = list(args)  # so a usage error can still honour --json
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            raise mark_json(ctx, exc) from None
        except click.exceptions.UsageError as exc:
            if not (ctx.meta.get(JSON_MODE) or "--json" in ctx.meta.get(ARGV, ())):
                raise
            ctx.meta[JSON_MODE] = True  # parsing may have stopped before --json was seen
            err = CliError(exc.format_message(), exit_code=2, kind=type(exc).__name__)
            raise mark_json(ctx, err) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise mark_json(ctx, CliError("interrupted", exit_code=130, kind="Interrupted")) from None
        except BrokenPipeError:
            _quiet_stdout()
            raise click.exceptions.Exit(0) from None
        except Exception as exc:
            if debug_enabled():
                raise
            raise mark_json(ctx, translate(exc)) from None


def _quiet_stdout() -> None:
    """The reader went away (``jsflow show ID | head -1``): end quietly, as Unix tools do.

    stdout is pointed at /dev/null so the interpreter's final flush does not
    complain about the closed pipe.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (CliRunner): nothing to flush
        pass


@click.group(cls=JsflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jsflow", prog_name="jsflow")
def cli() -> None:
    """Durable JavaScript workflows: start, inspect and drive them from the shell.

    State lives in a SQLite file: --db PATH (or $JSFLOW_DB; default
    .jsflow/jsflow.db), or a URL (sqlite:////absolute/path.db). Commands
    about existing instances never create a store. Payloads are JSON; a bare word is a string;
    @file.json reads a file. Add --json to any command for machine-readable
    output (errors too). Shell completion: eval "$(_JSFLOW_COMPLETE=bash_source jsflow)".

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
    steps,
    event,
    resume,
    resume_token,
    token_cmd,
    cancel,
    query,
    schedule,
    retry_cmd,
    upgrade,
    recover,
    fork,
    batch,
    purge,
    worker,
    replay,
    check,
    dev,
    serve,
    types_cmd,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point (``jsflow = "jsflow.cli:main"``)."""
    try:
        return cli.main(args=argv, prog_name="jsflow")
    except BrokenPipeError:  # while click itself wrote (help, usage)
        _quiet_stdout()
        sys.exit(0)
