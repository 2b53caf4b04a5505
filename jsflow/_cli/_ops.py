"""Operations on stuck, old or many instances: ``recover``, ``fork``, ``purge`` and ``batch``.

Why a confirmation for ``purge`` and ``batch``: they act on every instance a
filter matches, so a typo in a filter is expensive. ``--dry-run`` lists what
would be touched; without it a terminal asks once, and anything else
(scripts, CI) must say ``--yes``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from jsflow.host import WorkflowInstance

from . import _render as out
from ._commands import exists, report, retry_one, upgrade_one
from ._errors import CliError, translate
from ._filters import Filters, filter_options
from ._options import db_option, id_argument, json_option, read_script, registration_options
from ._session import Registrations, Session, open_existing
from ._store import DURATION, HostSettings, host_options
from ._text import safe

FINISHED = ["completed", "faulted", "cancelled"]
ACTIONS = ["cancel", "retry", "upgrade", "recover"]


@click.command()
@id_argument
@click.option(
    "--force",
    is_flag=True,
    help="Recover even if the instance was active within the lease (its process may still run).",
)
@registration_options
@host_options
@db_option
@json_option
def recover(
    workflow_id: str,
    force: bool,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Finish an instance left "running" by a process that died (or a Ctrl-C).

    Its journal is replayed and only the steps that were in flight run
    again. A worker does this by itself once the instance has been silent
    for the lease (--lease, default 5m); this command does it now. An
    instance active within the lease may still be running somewhere, so that
    needs --force.

    Example:

    \b
        jsflow recover order-17
    """
    with open_existing(db, regs, settings) as sess:
        inst = sess.host.get(workflow_id)
        sess.prepare(inst)
        _check_running(inst)
        if not force:
            _check_silent(sess, inst)
        with sess.advancing(workflow_id):
            done = sess.host.recover(workflow_id)
        report(sess, done, as_json)


def _check_running(inst: WorkflowInstance) -> None:
    if inst.status != "running":
        raise CliError(f"workflow {inst.workflow_id!r} is {inst.status}, not running; nothing to recover")


def _check_silent(sess: Session, inst: WorkflowInstance) -> None:
    """Refuse an instance active within the lease: its process may still be running it."""
    silent = (sess.host.clock() - inst.updated_at).total_seconds() if inst.updated_at else None
    if silent is not None and silent < sess.host.lease.total_seconds():
        raise CliError(
            f"workflow {inst.workflow_id!r} was active {out.span(silent)} ago, within the lease "
            f"({out.span(sess.host.lease.total_seconds())}); if the process running it is gone, "
            f"pass --force"
        )


@click.command()
@id_argument
@click.option(
    "--step",
    type=click.IntRange(0),
    help="Keep this many journal entries (see `jsflow steps ID`); default: all of them.",
)
@click.option("--id", "new_id", help="Id of the new instance (default: generated).")
@registration_options
@host_options
@db_option
@json_option
def fork(
    workflow_id: str,
    step: int | None,
    new_id: str | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Start a new instance from workflow ID's journal, up to a step (reset / re-run).

    The new instance replays the first --step journal entries of ID (steps,
    events, resumes, timeouts exactly as recorded) and runs everything after
    them live, on the same script version; ID itself is not touched. Use it
    to re-run a workflow from a point, e.g. after fixing what a step called.
    Time inside the script stays the journal's (a timer started before that
    point keeps its deadline); buffered events and tokens are not copied.

    Example:

    \b
        jsflow steps order-17
        jsflow fork order-17 --step 1 --id order-17-again
    """
    with open_existing(db, regs, settings) as sess:
        sess.prepare(sess.host.get(workflow_id))
        if new_id is not None and exists(sess, new_id):
            raise CliError(f"workflow {new_id!r} already exists; pick another --id")
        with sess.advancing(workflow_id):
            inst = sess.host.fork(workflow_id, step=step, new_id=new_id)
        report(sess, inst, as_json)


@click.command()
@click.option(
    "--older-than",
    type=DURATION,
    required=True,
    help="Only instances that finished (last changed) longer ago than this, e.g. 30d.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(FINISHED),
    help="Only this finished status (repeatable; default: every finished one).",
)
@click.option("--script", help="Only instances of this script name.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@db_option
@json_option
def purge(
    older_than: timedelta,
    statuses: tuple[str, ...],
    script: str | None,
    dry_run: bool,
    yes: bool,
    db: str | None,
    as_json: bool,
) -> None:
    """Delete finished instances (retention), with their history, events and tokens.

    Only completed, faulted and cancelled instances whose
    last change is older than --older-than are deleted; running and
    suspended ones never are.

    Example:

    \b
        jsflow purge --older-than 30d --status completed --dry-run
        jsflow purge --older-than 90d --yes
    """
    with open_existing(db) as sess:
        cutoff = sess.host.clock() - older_than
        filters = Filters(statuses=statuses or tuple(FINISHED), script=script, until=cutoff)
        ids = [i.workflow_id for i in filters.each(sess.host) if i.updated_at and i.updated_at < cutoff]
        what = f"{len(ids)} finished instance(s) last changed before {out.when(cutoff)}"
        if dry_run or not ids:
            _echo_ids(ids, as_json, f"would delete {what}" if ids else "nothing to purge", "would_delete")
            return
        _confirm(yes, f"delete {what}?")
        deleted: list[str] = []
        for start in range(0, len(ids), 500):
            deleted += sess.host.purge(ids[start : start + 500])
    _echo_ids(deleted, as_json, f"deleted {len(deleted)} instance(s)", "deleted")


def _echo_ids(ids: list[str], as_json: bool, summary: str, key: str) -> None:
    if as_json:
        out.emit_json({key: ids})
        return
    for wid in ids:
        click.echo(safe(wid))
    click.echo(summary, err=bool(ids))


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} pass --yes to go ahead (or --dry-run to list them)", exit_code=2)
    click.confirm(question, abort=True, err=True)


@click.command()
@click.argument("action", type=click.Choice(ACTIONS))
@click.argument("script_file", metavar="[SCRIPT]", required=False)
@filter_options
@click.option("--reason", help="For cancel: why; kept with each instance.")
@click.option("--dry-run", is_flag=True, help="List the instances the action would touch; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@registration_options
@host_options
@db_option
@json_option
def batch(
    action: str,
    script_file: str | None,
    filters: Filters,
    reason: str | None,
    dry_run: bool,
    yes: bool,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Cancel, retry, upgrade or recover every instance the filters match.

    The filters are those of `jsflow list` (at least one is required). retry
    takes an optional SCRIPT (a fixed copy), upgrade a required one; each
    instance is checked by replay as the single-instance command does. One
    instance failing does not stop the others; the exit code is 1 if any
    failed. Defaults: cancel and upgrade act on unfinished instances, retry
    on faulted ones, recover on running ones.

    Example:

    \b
        jsflow batch cancel --script payment_race --status suspended --dry-run
        jsflow batch retry fixed/strict.js --script strict --yes
    """
    if not filters.any():
        raise CliError("give at least one filter (--status, --script, --since, ...)", exit_code=2)
    source = _batch_source(action, script_file)
    if not filters.statuses:
        filters = _default_statuses(action, filters)
    with open_existing(db, regs, settings) as sess:
        ids = [i.workflow_id for i in filters.each(sess.host)]
        if dry_run or not ids:
            _echo_ids(ids, as_json, f"would {action} {len(ids)} instance(s)", f"would_{action}")
            return
        _confirm(yes, f"{action} {len(ids)} instance(s)?")
        do = _batch_action(sess, action, source, script_file or "", reason)
        results = [_apply(do, wid, as_json) for wid in ids]
    failed = [r for r in results if not r["ok"]]
    if as_json:
        out.emit_json({"action": action, "results": results})
    else:
        click.echo(f"{action}: {len(results) - len(failed)} done, {len(failed)} failed")
    if failed:
        raise CliError(f"{len(failed)} of {len(results)} instance(s) could not {action}", kind="BatchFailed")


def _batch_source(action: str, script: str | None) -> str | None:
    if action == "upgrade" and script is None:
        raise CliError("batch upgrade needs SCRIPT (the new version)", exit_code=2)
    if script is not None and action not in ("retry", "upgrade"):
        raise CliError(f"batch {action} takes no SCRIPT", exit_code=2)
    return read_script(script)[1] if script is not None else None


def _default_statuses(action: str, filters: Filters) -> Filters:
    statuses = {"retry": ("faulted",), "recover": ("running",)}.get(action, ("running", "suspended"))
    return Filters(statuses, filters.script, filters.waiting_on, filters.since, filters.until, filters.search)


def _batch_action(
    sess: Session, action: str, source: str | None, script: str, reason: str | None
) -> Callable[[str], WorkflowInstance]:
    host = sess.host

    def cancel(wid: str) -> WorkflowInstance:
        return host.cancel(wid, reason)

    def retry(wid: str) -> WorkflowInstance:
        return retry_one(sess, wid, source)

    def upgrade(wid: str) -> WorkflowInstance:
        return upgrade_one(sess, wid, source or "", script)[0]

    def recover(wid: str) -> WorkflowInstance:
        inst = host.get(wid)
        sess.prepare(inst)
        _check_running(inst)
        _check_silent(sess, inst)
        with sess.advancing(wid):
            return host.recover(wid)

    return {"cancel": cancel, "retry": retry, "upgrade": upgrade, "recover": recover}[action]


def _apply(do: Callable[[str], WorkflowInstance], wid: str, as_json: bool) -> dict[str, Any]:
    try:
        inst = do(wid)
    except Exception as exc:  # one failure must not stop the batch
        err = translate(exc)
        if not as_json:
            click.echo(f"{safe(wid)}  {click.style('failed', fg='red')}  {safe(err.message)}")
        return {"workflow_id": wid, "ok": False, "error": err.message}
    if not as_json:
        click.echo(f"{safe(wid)}  {out.status_text(inst.status)}")
    return {"workflow_id": wid, "ok": True, "status": inst.status}
