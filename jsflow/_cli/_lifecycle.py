"""Issue 20 on the command line: ``query`` (read a script's ``defineQuery``
answers) and ``schedule`` (cron schedules that start workflows).

Thin, like the other commands: each is one or two ``WorkflowHost`` calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from jsflow.host import Schedule

from . import _render as out
from ._options import db_option, id_argument, json_option, read_script, registration_options
from ._session import Registrations, open_existing, open_session
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


def _schedule_data(s: Schedule) -> dict[str, Any]:
    return {
        "name": s.name,
        "cron": s.cron,
        "script": s.script,
        "args": s.args,
        "timezone": s.timezone,
        "overlap": s.overlap,
        "catch_up": s.catch_up,
        "paused": s.paused,
        "next_run": s.next_run.isoformat() if s.next_run else None,
        "last_instance": s.last_instance,
    }


def _schedule_line(s: Schedule) -> str:
    state = "paused" if s.paused else f"next {s.next_run.isoformat() if s.next_run else '-'}"
    how = f"(overlap {s.overlap}, catch-up {s.catch_up})"
    return safe(f"{s.name}  {s.cron!r} {s.timezone}  {s.script}  {state}  {how}")


@click.group()
def schedule() -> None:
    """Cron schedules that start workflows (workers start the due slots).

    Each slot starts an instance with id NAME@YYYYMMDDTHHMMSSZ (UTC), once
    across all workers. Run `jsflow worker` (or `jsflow serve`) to start them.

    Example:

    \b
        jsflow schedule add nightly '0 2 * * *' report '"daily"' --timezone Europe/Paris
        jsflow schedule list
    """


@schedule.command("add")
@click.argument("name")
@click.argument("cron")
@click.argument("script")
@click.argument("args", nargs=-1)
@click.option("--timezone", default="UTC", show_default=True, help="The zone the cron expression is read in.")
@click.option(
    "--overlap",
    type=click.Choice(["skip", "allow"]),
    default="skip",
    show_default=True,
    help="skip: a slot is skipped while the previous slot's instance is unfinished.",
)
@click.option(
    "--catch-up",
    "catch_up",
    type=click.Choice(["latest", "all", "none"]),
    default="latest",
    show_default=True,
    help="Slots seen more than a minute late: start the most recent, all, or none.",
)
@db_option
@json_option
def schedule_add(
    name: str,
    cron: str,
    script: str,
    args: tuple[str, ...],
    timezone: str,
    overlap: str,
    catch_up: str,
    db: str | None,
    as_json: bool,
) -> None:
    """Add (or replace) schedule NAME: start SCRIPT with ARGS at every CRON slot.

    SCRIPT is a registered name, or a file registered under its stem as for
    run. Each ARG is JSON; a bare word that is not JSON is a string.

    Example:

    \b
        jsflow schedule add hourly '0 * * * *' samples/scheduled_report.js '"hourly"'
    """
    values = [parse_value(a, f"argument {i + 1}") for i, a in enumerate(args)]
    with open_session(db, Registrations()) as sess:
        if Path(script).is_file():
            name_, source = read_script(script)
            script = sess.host.register_script(name_, source).name
        s = sess.host.add_schedule(
            name, cron, script, values, timezone=timezone, overlap=overlap, catch_up=catch_up
        )
    _show_schedules([s], as_json, single=True)


@schedule.command("list")
@db_option
@json_option
def schedule_list(db: str | None, as_json: bool) -> None:
    """List the schedules with their next run.

    Example:

    \b
        jsflow schedule list --json
    """
    with open_existing(db, Registrations()) as sess:
        items = sess.host.list_schedules()
    _show_schedules(items, as_json)


def _change(verb: str) -> click.Command:
    @click.command(verb)
    @click.argument("name")
    @db_option
    @json_option
    def command(name: str, db: str | None, as_json: bool) -> None:
        with open_existing(db, Registrations()) as sess:
            host = sess.host
            if verb == "remove":
                host.remove_schedule(name)
                if as_json:
                    out.emit_json({"name": name, "removed": True})
                else:
                    click.echo(safe(f"schedule {name} removed (its instances stay)"))
                return
            s = host.pause_schedule(name) if verb == "pause" else host.resume_schedule(name)
        _show_schedules([s], as_json, single=True)

    command.help = {
        "pause": "Pause schedule NAME: slots that fall while paused are never started.",
        "resume": "Resume schedule NAME from its next slot after now.",
        "remove": "Remove schedule NAME (the instances it started stay).",
    }[verb] + f"\n\n    Example:\n\n    \b\n        jsflow schedule {verb} nightly\n"
    return command


for _verb in ("pause", "resume", "remove"):
    schedule.add_command(_change(_verb))


def _show_schedules(items: list[Schedule], as_json: bool, *, single: bool = False) -> None:
    if as_json:
        data = [_schedule_data(s) for s in items]
        out.emit_json(data[0] if single else {"items": data})
        return
    if not items:
        click.echo("no schedules")
    for s in items:
        click.echo(_schedule_line(s))
