"""``jsflow check`` (does the script load, is the entry a function) and
``jsflow replay`` (would a changed script drift from stored journals).

Why check loads the script in a sandbox instead of parsing it in Python:
QuickJS is the only parser whose verdict matters, and loading it exactly as
the engine does (same prelude, same plain-script vs module rule) catches
top-level errors too. Nothing of the workflow runs: only the script's
top-level code, which should only define functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from jsflow import ScriptError, WorkflowEngine
from jsflow.host import WorkflowInstance

from . import _render as out
from ._errors import CliError
from ._options import db_option, entry_option, json_option, read_script, registration_options
from ._session import UNFINISHED, Registrations, Session, load_app, open_session

#: globals every host-run script has besides the engine's own
HOST_GLOBALS = ("createHook",)


@dataclass
class CheckResult:
    """What ``check`` found; ``ok`` is False when the workflow could not start at all."""

    ok: bool
    kind: str
    entry: str
    entry_type: str = "undefined"
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def check_engine(regs: Registrations) -> WorkflowEngine:
    """An engine with what ``--app``, ``--suspend`` and ``--fetch-allow`` register."""
    engine = WorkflowEngine()
    if regs.app:
        app: Any = load_app(regs.app)
        engine = getattr(app, "engine", app)
    for name in regs.suspends:
        if name not in engine.step_names and name not in engine.suspend_names:
            engine.register_suspend_function(name)
    if regs.fetch_allow and "fetch" not in engine.step_names:
        engine.enable_fetch(allow_hosts=list(regs.fetch_allow))
    return engine


def check_source(source: str, entry: str, regs: Registrations) -> CheckResult:
    """Load ``source`` as a run would (``WorkflowEngine.check``) and look at ``entry``."""
    found = check_engine(regs).check(source, entry)
    result = CheckResult(ok=found.ok, kind=found.kind, entry=entry, entry_type=found.entry_type)
    error = found.error
    if isinstance(error, ScriptError) and not str(error).startswith("entry point"):
        result.message = f"{error.js_name}: {error}"
    elif error is not None:
        result.message = str(error)
    result.warnings = [
        f"{name}() is called but not defined: declare it with --suspend {name}, or load your steps with --app"
        for name in found.undefined_calls
        if name not in HOST_GLOBALS
    ]
    return result


@click.command()
@click.argument("script", metavar="SCRIPT")
@entry_option
@registration_options
@json_option
def check(script: str, entry: str, regs: Registrations, as_json: bool) -> None:
    """Check SCRIPT without running it: syntax, and that the entry point is a function.

    Also warns about awaited functions that are not defined (declare them
    with --suspend or load them with --app). Exit code 1 if the script
    cannot start.

    Example:

    \b
        jsflow check samples/payment_race.js
    """
    _, source = read_script(script)
    res = check_source(source, entry, regs)
    if as_json:
        out.emit_json(res.__dict__)
    elif res.ok:
        click.echo(
            f"{click.style('ok', fg='green', bold=True)}: {script}: {res.kind}, "
            f"entry point {entry!r} is a function"
        )
    for warning in [] if as_json else res.warnings:
        click.echo(click.style("warning: ", fg="yellow") + warning, err=True)
    if not res.ok:
        raise CliError(f"{script}: {res.message}")


@click.command()
@click.argument("script", metavar="SCRIPT")
@click.option(
    "--id", "workflow_ids", multiple=True, metavar="ID", help="Check only this instance (repeatable)."
)
@click.option("--all", "include_finished", is_flag=True, help="Also check finished instances.")
@click.option("--name", help="Script name to check instances of (default: the file stem).")
@registration_options
@db_option
@json_option
def replay(
    script: str,
    workflow_ids: tuple[str, ...],
    include_finished: bool,
    name: str | None,
    regs: Registrations,
    db: str | None,
    as_json: bool,
) -> None:
    """Replay stored journals against a changed SCRIPT and report each instance that would drift.

    Nothing runs and nothing is written. By default every unfinished instance
    of the script (named by the file stem) is checked; exit code 1 if any
    would drift.

    Example:

    \b
        jsflow replay samples/payment_race.js --all
    """
    stem, source = read_script(script)
    name = name or stem
    with open_session(db, regs) as sess:
        for inst in _instances(sess, list(workflow_ids), name, include_finished):
            sess.prepare(inst)
        reports = sess.host.replay_check(
            source,
            list(workflow_ids) or None,
            script_name=None if workflow_ids else name,
            include_finished=include_finished or bool(workflow_ids),
        )
    drifted = [r for r in reports if not r.ok]
    if as_json:
        out.emit_json([out.report_data(r) for r in reports])
    elif not reports:
        click.echo(f"no {'' if include_finished else 'unfinished '}instances of {name!r} to check")
    else:
        out.echo_lines(out.replay_rows(reports))
    if drifted:
        raise CliError(f"{len(drifted)} of {len(reports)} instance(s) would drift with {script}")


def _instances(sess: Session, ids: list[str], name: str, include_finished: bool) -> list[WorkflowInstance]:
    if ids:
        return [sess.host.get(i) for i in ids]
    found: list[WorkflowInstance] = []
    while True:
        page = sess.host.list(
            script=name, status=None if include_finished else UNFINISHED, limit=500, offset=len(found)
        )
        found += page
        if len(page) < 500:
            return found
