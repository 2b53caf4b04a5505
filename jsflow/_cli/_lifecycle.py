"""Issue 20 on the command line: ``query`` (read a script's ``defineQuery``
answers) and ``schedule`` (cron schedules that start workflows).

Thin, like the other commands: each is one or two ``WorkflowHost`` calls.
"""

from __future__ import annotations

import json

import click

from . import _render as out
from ._options import db_option, id_argument, json_option, registration_options
from ._session import Registrations, open_existing
from ._store import HostSettings, host_options
from ._text import safe
from ._values import parse_value


@click.command()
@id_argument
@click.argument("name")
@click.argument("args", nargs=-1)
@registration_options
@host_options
@db_option
@json_option
def query(
    workflow_id: str,
    name: str,
    args: tuple[str, ...],
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Answer query NAME of workflow ID (a ``defineQuery`` handler in its script).

    The answer comes from the instance's current state (a finished one from its
    final state); nothing is journaled or changed. Each ARG is JSON; a bare
    word that is not JSON is a string. Exit 1 when the handler fails
    (QueryError) or the script defines no such query (QueryNotFoundError).

    Example:

    \b
        jsflow query order-17 status
        jsflow query order-17 approver 2 --json
    """
    values = [parse_value(a, f"argument {i + 1}") for i, a in enumerate(args)]
    with open_existing(db, regs, settings) as sess:
        sess.prepare(sess.host.get(workflow_id))
        value = sess.host.query(workflow_id, name, *values)
    if as_json:
        out.emit_json({"workflow_id": workflow_id, "query": name, "value": value})
    else:
        for line in json.dumps(value, indent=2, ensure_ascii=False).splitlines():
            click.echo(safe(line))
