"""``jsflow check`` (does the script load, is the entry a function) and
``jsflow replay`` (would a changed script replay the stored journals, and if
not, why).

Why check loads the script in a sandbox instead of parsing it in Python:
QuickJS is the only parser whose verdict matters, and loading it exactly as
the engine does (same prelude, same plain-script vs module rule) catches
top-level errors too. Nothing of the workflow runs: only the script's
top-level code, which should only define functions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import click

from jsflow import ScriptError, WorkflowEngine
from jsflow.host import ReplayReport, WorkflowInstance

from . import _render as out
from ._errors import CliError
from ._filters import Filters
from ._options import db_option, entry_option, json_option, read_script, registration_options
from ._progress import progress
from ._session import UNFINISHED, Registrations, Session, load_app, open_existing

#: globals every host-run script has besides the engine's own
HOST_GLOBALS = ("createHook", "startWorkflow")


@dataclass
class CheckResult:
    """What ``check`` found; ``ok`` is False when the workflow could not start at all,
    ``loaded`` False when the script did not even load (syntax, top-level error)."""

    ok: bool
    kind: str
    entry: str
    entry_type: str = "undefined"
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    undefined_calls: list[dict[str, Any]] = field(default_factory=list)
    event_names: list[str] = field(default_factory=list)
    loaded: bool = True


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
    detail = str(getattr(error, "message", error))  # a ScriptError's str() starts with its JS name
    if isinstance(error, ScriptError) and not detail.startswith("entry point"):
        result.message = f"{error.js_name}: {detail}"
        result.loaded = False
    elif error is not None:
        result.message = detail
        result.loaded = detail.startswith("entry point")
    sites = [site for site in found.undefined_calls if site.name not in HOST_GLOBALS]
    result.undefined_calls = [{"name": s.name, "line": s.line, "column": s.column} for s in sites]
    result.event_names = list(found.event_names)
    result.warnings = [
        f"{site.name} at {site.line}:{site.column}: {site.name}() is called but not defined: "
        f"declare it with --suspend {site.name}, or load your steps with --app"
        for site in sites
    ]
    return result


@click.command()
@click.argument("script", metavar="SCRIPT")
@entry_option
@registration_options
@json_option
def check(script: str, entry: str, regs: Registrations, as_json: bool) -> None:
    """Check SCRIPT without running it: syntax, and that the entry point is a function.

    Also warns about every call of a function that nothing defines, as
    NAME at LINE:COLUMN, wherever it stands (declare it with --suspend or
    load your steps with --app). Exit code 1 if the script cannot start.

    Example:

    \b
        jsflow check samples/payment_race.js
    """
    _, source = read_script(script)
    res = check_source(source, entry, regs)
    if as_json:
        out.emit_json({k: v for k, v in res.__dict__.items() if k != "loaded"})
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
@click.argument("script", metavar="[SCRIPT]", required=False)
@click.option(
    "--against",
    metavar="NEW.js",
    help="The changed script to replay the stored journals against (the same as SCRIPT).",
)
@click.option(
    "--id", "workflow_ids", multiple=True, metavar="ID", help="Check only this instance (repeatable)."
)
@click.option("--all", "include_finished", is_flag=True, help="Also check finished instances.")
@click.option("--name", help="Script name to check instances of (default: the file stem).")
@registration_options
@db_option
@json_option
def replay(
    script: str | None,
    against: str | None,
    workflow_ids: tuple[str, ...],
    include_finished: bool,
    name: str | None,
    regs: Registrations,
    db: str | None,
    as_json: bool,
) -> None:
    """Replay stored journals against a changed SCRIPT and say, for each instance,
    whether it would replay and if not why.

    With --json, each report also lists ``patches``: the names whose
    ``patched()`` returned true during that replay (the new path taken).
    Nothing runs and nothing is written. By default every unfinished instance
    of the script (named by the file stem) is checked; exit code 1 if any
    would not replay. Verdicts: ok; DRIFT (the script now makes other calls
    than its journal recorded); NO ENTRY (its entry point is not a function
    in SCRIPT); SCRIPT ERROR (SCRIPT does not load); CORRUPT (its stored
    state is unreadable); FAILED (replay threw for another reason).

    Example:

    \b
        jsflow replay samples/payment_race.js --all
        jsflow replay --against new/order.js --json
    """
    if (script is None) == (against is None):
        raise CliError("give the changed script once: as SCRIPT or as --against NEW.js", exit_code=2)
    script = script if script is not None else against
    assert script is not None
    stem, source = read_script(script)
    name = name or stem
    with open_existing(db, regs) as sess:
        instances = _instances(sess, list(workflow_ids), name, include_finished)
        for inst in instances:
            sess.prepare(inst)
        entries = {e: check_source(source, e, regs) for e in sorted({i.entry_point for i in instances})}
        entry_of = {i.workflow_id: i.entry_point for i in instances}
        reports = []
        for n, inst in enumerate(instances, 1):
            with progress(lambda n=n, inst=inst: f"replay {n}/{len(instances)}: {inst.workflow_id}"):
                reports += sess.host.replay_check(source, [inst.workflow_id], include_finished=True)
    verdicts = [verdict(r, entries[entry_of[r.workflow_id]]) for r in reports]
    _echo_replay(
        reports,
        verdicts,
        as_json,
        f"no {'' if include_finished else 'unfinished '}instances of {name!r} to check",
    )
    failed = [v for v, _ in verdicts if v != "ok"]
    if failed:
        counts = ", ".join(f"{n} {v}" for v, n in sorted(Counter(failed).items()))
        raise CliError(
            f"{len(failed)} of {len(reports)} instance(s) would not replay with {script} ({counts})",
            kind="ReplayFailed",
        )


def _echo_replay(
    reports: list[ReplayReport], verdicts: list[tuple[str, str]], as_json: bool, nothing: str
) -> None:
    if as_json:
        pairs = zip(reports, verdicts, strict=True)
        out.emit_json([{**out.report_data(r), "verdict": v, "reason": why} for r, (v, why) in pairs])
    elif not reports:
        click.echo(nothing)
    else:
        out.echo_lines(out.replay_rows(reports, verdicts))


VERDICTS = ("ok", "drift", "no_entry", "script_error", "corrupt", "failed")


def verdict(report: ReplayReport, entry: CheckResult) -> tuple[str, str]:
    """(verdict, reason) for one replay report: one of ``VERDICTS``.

    Why not just ``report.ok``: an instance that cannot replay because its
    entry point is gone, or because the new script does not even load, is
    not drift, and the fix is different (keep the entry, fix the syntax).
    """
    if report.ok:
        return "ok", report.message
    if report.message.startswith("stored state of workflow"):
        return "corrupt", report.message
    if report.slot_index is not None or report.expected_name is not None:
        return "drift", report.message
    if not entry.ok:
        return ("no_entry" if entry.loaded else "script_error"), entry.message
    return "failed", report.message


def _instances(sess: Session, ids: list[str], name: str, include_finished: bool) -> list[WorkflowInstance]:
    if ids:
        return [sess.host.get(i) for i in ids]
    status = None if include_finished else UNFINISHED
    return list(Filters(statuses=tuple(status or ()), script=name).each(sess.host))
