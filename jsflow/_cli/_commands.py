"""The commands that move instances on: run, event, resume, resume-token, cancel,
retry, upgrade, worker.

Each is a few lines over one ``WorkflowHost`` call; the host does the work,
these only parse, print and pick an exit code (see ``_errors``).
"""

from __future__ import annotations

import contextlib
import difflib
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from jsflow import script_events
from jsflow.host import EventReceipt, StartSpec, UnknownScriptError, UnknownWorkflowError, WorkflowInstance

from . import _render as out
from ._errors import CliError
from ._options import db_option, id_argument, json_option, read_script, registration_options, script_and_args
from ._session import IssuedToken, Registrations, Session, open_existing, open_session
from ._store import HostSettings, host_options, warm_options
from ._text import safe
from ._values import parse_value


def _now() -> datetime:
    return datetime.now(UTC)


def report(sess: Session, inst: WorkflowInstance, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Print an instance after a command advanced it; exit 1 if it faulted."""
    tokens = sess.tokens_for(inst)
    if as_json:
        out.emit_json({**(extra or {}), **out.instance_data(inst, tokens)})
    else:
        out.echo_instance(inst, tokens, now=sess.host.clock())
    if inst.status == "faulted":
        raise CliError(
            f"workflow {inst.workflow_id!r} faulted: {out.error_text(inst.error or {})}", kind="Faulted"
        )


def exists(sess: Session, workflow_id: str | None) -> bool:
    if workflow_id is None:
        return False
    try:
        sess.host.get(workflow_id)
    except UnknownWorkflowError:
        return False
    return True


@click.command()
@script_and_args
@click.option(
    "--id",
    "workflow_id",
    help="Workflow id (default: generated). Starting an existing id returns that instance and runs nothing.",
)
@registration_options
@host_options
@db_option
@json_option
def run(
    script: str,
    args: tuple[str, ...],
    entry: str,
    workflow_id: str | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Start SCRIPT and run it to its first suspension (or its end).

    The script is registered under its file stem (content-addressed: editing
    it makes a new version; running instances keep theirs). Each ARG is JSON;
    a bare word that is not JSON is a string; @file.json reads a file.
    Prints the status, the pending waits and any resume tokens.

    Example:

    \b
        jsflow run samples/payment_race.js A-17 --id order-17
        jsflow run approval.js '{"amount": 250}' --suspend getApproval
    """
    name, source = read_script(script)
    values = [parse_value(a, f"argument {i + 1}") for i, a in enumerate(args)]
    with open_session(db, regs, settings) as sess:
        existed = exists(sess, workflow_id)
        version = sess.host.register_script(name, source)
        inst = sess.host.start(
            name,
            *values,
            workflow_id=workflow_id,
            entry_point=entry,
            version=version.hash,
            metadata=regs.metadata() or None,
        )
        if existed:
            click.echo(
                f"note: workflow {safe(repr(workflow_id))} already exists; nothing was started", err=True
            )
        report(sess, inst, as_json)


@click.command()
@id_argument
@click.argument("name")
@click.argument("payload", required=False)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Store the event once per KEY for this workflow: a repeated send (a retried script) "
    "is a no-op that reports the first one.",
)
@click.option(
    "--start",
    "start_script",
    metavar="SCRIPT",
    help="Start-with-event: if workflow ID does not exist, start it from SCRIPT (a registered "
    "name, or a file registered under its stem as for run) in the same transaction that "
    "stores the event.",
)
@click.option(
    "--args",
    "start_args",
    metavar="JSON-ARRAY",
    help="With --start: the arguments of the entry point, as a JSON array (default []).",
)
@registration_options
@host_options
@db_option
@json_option
def event(
    workflow_id: str,
    name: str,
    payload: str | None,
    idempotency_key: str | None,
    start_script: str | None,
    start_args: str | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Send event NAME (with a JSON PAYLOAD) to workflow ID.

    The event is stored first; if the workflow is not waiting for NAME yet it
    stays buffered and is delivered when it does (`jsflow show` lists buffered
    events). A warning says when neither the current waits nor the script
    ever name NAME (a typo would stay buffered forever).

    Example:

    \b
        jsflow event order-17 payment '{"amount": 42}'
        jsflow event order-17 payment '{"amount": 42}' --idempotency-key pay-42
        jsflow event poll-7 vote '"ann"' --start samples/collect_votes.js --args '[3]'
    """
    value = parse_value(payload, "payload") if payload is not None else None
    if start_args is not None and start_script is None:
        raise CliError("--args is given without --start", exit_code=2)
    if start_script is not None:
        _event_with_start(
            workflow_id, name, value, idempotency_key, start_script, start_args, regs, settings, db, as_json
        )
        return
    with open_existing(db, regs, settings) as sess:
        before = sess.host.get(workflow_id)
        sess.prepare(before)
        with sess.advancing(workflow_id):
            receipt = sess.host.send_event(workflow_id, name, value, idempotency_key=idempotency_key)
        if not receipt.delivered and not receipt.duplicate:
            _warn_unknown_event(sess, before, name)
        if not as_json:
            click.echo(_receipt_line(receipt))
        report(sess, sess.host.get(workflow_id), as_json, {"event": out.receipt_data(receipt)})


def _event_with_start(
    workflow_id: str,
    name: str,
    value: Any,
    idempotency_key: str | None,
    script: str,
    args_text: str | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """``event --start``: the host's start-with-event, SCRIPT a file or a registered name."""
    args = _json_array(args_text)
    with open_session(db, regs, settings) as sess:
        script_name, version = script, None
        if Path(script).is_file():
            script_name, source = read_script(script)
            version = sess.host.register_script(script_name, source).hash
        spec = StartSpec(script_name, args, version=version, metadata=regs.metadata() or {})
        with sess.advancing(None):
            receipt = sess.host.send_event(
                workflow_id, name, value, idempotency_key=idempotency_key, start=spec
            )
        click.echo(_receipt_line(receipt), err=as_json)
        report(sess, sess.host.get(workflow_id), as_json, {"event": out.receipt_data(receipt)})


def _json_array(text: str | None) -> list[Any]:
    if text is None:
        return []
    value = parse_value(text, "--args")
    if not isinstance(value, list):
        raise CliError("--args must be a JSON array, like '[1, \"two\"]'", exit_code=2)
    return value


def _receipt_line(receipt: EventReceipt) -> str:
    name = safe(repr(receipt.name))
    if receipt.duplicate:
        return f"event {name} was already stored (#{receipt.event_id}) with this idempotency key; nothing new"
    if receipt.delivered:
        return f"event {name} stored (#{receipt.event_id}), delivered to wait {receipt.wait_id}"
    return (
        f"event {name} stored (#{receipt.event_id}), buffered: no pending wait accepts it yet "
        "(none listens for it, or its match or distinct rule leaves this payload out)"
    )


def _warn_unknown_event(sess: Session, inst: WorkflowInstance, name: str) -> None:
    """Warn when nothing suggests the workflow will ever wait for ``name``: not its
    pending waits, not a name or pattern its script can wait for (read from the
    script's parse tree; a typo, or an event for another script)."""
    awaited = {n for w in inst.waits for n in (w.event_names or ())}
    try:
        source = sess.host.get_script(inst.script_name, inst.script_hash).source
    except UnknownScriptError:
        source = ""
    events = script_events(source)
    if name in awaited or events.matches(name):
        return
    known = sorted(awaited | set(events.names))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {safe(repr(close[0]))}?)" if close else ""
    click.echo(
        f"warning: workflow {safe(repr(inst.workflow_id))} does not wait for event {safe(repr(name))} "
        f"and its script never names it; it stays buffered{hint}",
        err=True,
    )


@click.command()
@id_argument
@click.argument("value", required=False)
@click.option(
    "--wait-id",
    type=int,
    help=(
        "The wait to complete (a number from `jsflow show`). Without it, resume completes the single "
        "pending suspend or token wait; with none or several pending it fails and lists their ids. "
        "Timers complete early only by id."
    ),
)
@registration_options
@host_options
@db_option
@json_option
def resume(
    workflow_id: str,
    value: str | None,
    wait_id: int | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Resume a pending wait of workflow ID with a JSON VALUE.

    Example:

    \b
        jsflow resume order-17 true --wait-id 1
    """
    parsed = parse_value(value, "value") if value is not None else None
    with open_existing(db, regs, settings) as sess:
        sess.prepare(sess.host.get(workflow_id))
        with sess.advancing(workflow_id):
            inst = sess.host.resume(workflow_id, parsed, wait_id)
        report(sess, inst, as_json)


@click.command("resume-token")
@click.argument("token")
@click.argument("payload", required=False)
@registration_options
@host_options
@db_option
@json_option
def resume_token(
    token: str,
    payload: str | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Resume the wait a resume TOKEN belongs to (single use) with a JSON PAYLOAD.

    Example:

    \b
        jsflow resume-token Zk3...q8 '{"approved": true}'
    """
    value = parse_value(payload, "payload") if payload is not None else None
    with open_existing(db, regs, settings) as sess:
        owner = sess.host.token_workflow_id(token) if token else None
        if owner is not None:
            sess.prepare(sess.host.get(owner))
        with sess.advancing(owner):
            inst = sess.host.resume_with_token(token, value)
        report(sess, inst, as_json)


@click.command()
@id_argument
@click.option("--reason", help="Why; kept with the instance, and on the script's CancelledError.")
@click.option(
    "--no-cleanup",
    "no_cleanup",
    is_flag=True,
    help="Cancel at once: no script code runs (by default every pending wait rejects with a "
    "CancelledError and the script's catch/finally blocks run their compensating steps).",
)
@registration_options
@host_options
@db_option
@json_option
def cancel(
    workflow_id: str,
    reason: str | None,
    no_cleanup: bool,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Cancel a running or suspended workflow; its waits and tokens die with it.

    By default the cancellation is delivered into the script, whose cleanup
    (catch/finally blocks, at most 100 journal entries) runs now when this
    command has the steps it needs (--app/--suspend as for run), else on the
    next pass of a worker that has them.

    Example:

    \b
        jsflow cancel order-17 --reason "customer left"
        jsflow cancel order-17 --no-cleanup
    """
    with open_existing(db, regs, settings) as sess:
        if not no_cleanup:
            sess.prepare(sess.host.get(workflow_id))
        report(sess, sess.host.cancel(workflow_id, reason, cleanup=not no_cleanup), as_json)


@click.command("retry")
@id_argument
@click.argument("script", metavar="[SCRIPT]", required=False)
@registration_options
@host_options
@db_option
@json_option
def retry_cmd(
    workflow_id: str,
    script: str | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Run a faulted workflow ID again from its last good state.

    Failed step results at the end of its journal are dropped, so those steps
    run again; everything before them is replayed. With SCRIPT (a fixed copy
    of its script), the instance moves to that version first, checked by
    replaying its journal against it (exit code 1 and nothing changes if it
    would drift).

    Example:

    \b
        jsflow retry order-17
        jsflow retry order-17 fixed/payment_race.js
    """
    source = read_script(script)[1] if script is not None else None
    with open_existing(db, regs, settings) as sess:
        report(sess, retry_one(sess, workflow_id, source), as_json)


def retry_one(sess: Session, workflow_id: str, source: str | None) -> WorkflowInstance:
    """``retry`` for one instance (also used by ``batch retry``)."""
    inst = sess.host.get(workflow_id)
    sess.prepare(inst)
    if inst.status != "faulted":
        raise CliError(f"workflow {workflow_id!r} is {inst.status}, not faulted; nothing to retry")
    version = sess.host.register_script(inst.script_name, source).hash if source is not None else None
    with sess.advancing(workflow_id):  # records --suspend/--fetch-allow/--app as run does
        return sess.host.retry(workflow_id, version=version, metadata=sess.regs.merged(inst.metadata))


@click.command()
@id_argument
@click.argument("script", metavar="SCRIPT")
@registration_options
@host_options
@db_option
@json_option
def upgrade(
    workflow_id: str,
    script: str,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Move unfinished workflow ID to the version of its script in SCRIPT.

    Its journal is replayed against SCRIPT first (as `jsflow replay` does);
    if it would drift, nothing changes and the exit code is 1. Otherwise
    SCRIPT is registered under the instance's script name and the instance
    continues on it from its next event.

    Example:

    \b
        jsflow replay samples/payment_race.js --id order-17
        jsflow upgrade order-17 samples/payment_race.js
    """
    _, source = read_script(script)
    with open_existing(db, regs, settings) as sess:
        inst, changed = upgrade_one(sess, workflow_id, source, script)
        if not changed:
            click.echo(f"note: workflow {safe(repr(workflow_id))} already runs this version", err=True)
        report(sess, inst, as_json)


def upgrade_one(sess: Session, workflow_id: str, source: str, script: str) -> tuple[WorkflowInstance, bool]:
    """``upgrade`` for one instance (also used by ``batch upgrade``): (instance, changed)."""
    inst = sess.host.get(workflow_id)
    sess.prepare(inst)
    if inst.is_finished:
        raise CliError(f"workflow {workflow_id!r} is {inst.status}; only unfinished ones can be upgraded")
    with sess.advancing(workflow_id):
        (check,) = sess.host.replay_check(source, [workflow_id], include_finished=True)
    if not check.ok:
        raise CliError(f"workflow {workflow_id!r} would drift with {script}: {check.message}")
    version = sess.host.register_script(inst.script_name, source)
    if version.hash == inst.script_hash:
        return inst, False
    return sess.host.upgrade(workflow_id, version.hash), True


@click.command()
@click.option("--once", is_flag=True, help="One pass over due timers, then exit.")
@click.option(
    "--poll-interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Longest sleep between passes, in seconds.",
)
@click.option(
    "--max-time", type=click.FloatRange(0), help="Stop after this many seconds (firing until then)."
)
@registration_options
@host_options
@warm_options
@db_option
@json_option
def worker(
    once: bool,
    poll_interval: float,
    max_time: float | None,
    regs: Registrations,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Fire due timers (sleeps, timeouts, retries, token expiry) and recover stuck runs.

    Runs until Ctrl-C (which finishes the current pass, then exits cleanly)
    or --max-time; --once does a single pass. An instance left "running"
    (its process died) is recovered once it has been silent for --lease.

    Example:

    \b
        jsflow worker --once
        jsflow worker --max-time 60 --lease 1m --warm-bytes 256MiB
    """
    with open_session(db, regs, settings) as sess:
        if once:
            fired = _pass(sess, set())
            _echo_pass(fired, sess.tokens.issued, as_json)
            return
        total = _loop(sess, poll_interval, max_time, as_json)
        if not as_json:
            click.echo(f"worker stopped ({total} fired)")


def _pass(sess: Session, warned: set[str]) -> int:
    for wid in sess.prepare_all():
        if wid not in warned:
            warned.add(wid)
            click.echo(
                f"warning: workflow {safe(repr(wid))} was started with another --app; its steps may be "
                "missing here",
                err=True,
            )
    return sess.host.run_due()


def _echo_pass(fired: int, issued: list[IssuedToken], as_json: bool) -> None:
    if as_json:
        out.emit_json({"fired": fired, "tokens": [out.token_data(t) for t in issued]})
        return
    click.echo(f"{out.when(_now())}  fired {fired}")
    for tok in issued:
        click.echo(f"  resume token for {safe(tok.function_name)}: {safe(tok.token)}")


def _loop(sess: Session, poll_interval: float, max_time: float | None, as_json: bool) -> int:
    """Passes until a signal or the deadline; SIGINT/SIGTERM only set a flag, so a
    pass is never cut in the middle of a store transaction."""
    stop = threading.Event()
    previous = _install_signals(stop)
    deadline = None if max_time is None else time.monotonic() + max_time
    total, warned = 0, set[str]()
    if not as_json:
        click.echo("worker started; Ctrl-C to stop")
    try:
        while not stop.is_set():
            seen = len(sess.tokens.issued)
            mark = sess.host.change_marker()  # a timer stored during the pass still wakes us
            fired = _pass(sess, warned)
            total += fired
            if fired or len(sess.tokens.issued) > seen:
                _echo_pass(fired, sess.tokens.issued[seen:], as_json)
            timeout = _sleep_for(sess, poll_interval)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                timeout = min(timeout, left)
            if timeout > 0:  # 0: more timers are due now (a pass fires at most 100)
                _wait(sess, stop, timeout, mark)
    finally:
        _restore_signals(previous)
    return total


def _wait(sess: Session, stop: threading.Event, timeout: float, mark: int) -> None:
    """Sleep ``timeout`` unless stopped or another process stores a timer due soon
    (``store.wait_for_change``: LISTEN/NOTIFY on PostgreSQL; polling elsewhere)."""
    end = time.monotonic() + timeout
    while not stop.is_set() and (left := end - time.monotonic()) > 0:
        if sess.host.wait_for_timers(min(left, 0.1), since=mark):
            return


def _sleep_for(sess: Session, poll_interval: float) -> float:
    due = sess.host.next_due_time()
    if due is None:
        return poll_interval
    return max(0.0, min(poll_interval, (due - sess.host.clock()).total_seconds()))


def _install_signals(stop: threading.Event) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: Ctrl-C raises as usual
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
