"""``jsflow check`` (does the script load, is the entry a function) and
``jsflow replay`` (would a changed script drift from stored journals).

Why check loads the script in a sandbox instead of parsing it in Python:
QuickJS is the only parser whose verdict matters, and loading it exactly as
the engine does (same prelude, same plain-script vs module rule) catches
top-level errors too. Nothing of the workflow runs: only the script's
top-level code, which should only define functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import click

from js_runtime import JSError, ResourceLimitExceeded, Sandbox, SandboxLimits
from jsflow._prelude import prelude_for
from jsflow._run import _is_module
from jsflow.host import WorkflowInstance

from . import _render as out
from ._errors import CliError
from ._options import db_option, entry_option, json_option, read_script, registration_options
from ._session import UNFINISHED, Registrations, Session, load_app, open_session

#: globals every host-run script has besides the engine's own
HOST_GLOBALS = ("createHook",)
_CALLED = re.compile(r"\bawait\s+([A-Za-z_$][\w$]*)\s*\(")
_DECLARED = r"(?:function\s*\*?\s*{0}\b|(?:const|let|var|class)\s+{0}\b)"


@dataclass
class CheckResult:
    """What ``check`` found; ``ok`` is False when the workflow could not start at all."""

    ok: bool
    kind: str
    entry: str
    entry_type: str = "undefined"
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def known_names(regs: Registrations) -> tuple[list[str], list[str]]:
    """(steps, suspends) the script may call, from ``--app`` and ``--suspend``."""
    steps: list[str] = []
    suspends: list[str] = list(regs.suspends)
    if regs.app:
        app: Any = load_app(regs.app)
        engine = getattr(app, "engine", app)
        steps += list(getattr(engine, "_steps", {}))  # engine internals: no public accessor
        suspends += list(getattr(engine, "_suspends", {}))
    if regs.fetch_allow:
        steps.append("fetch")
    return sorted(set(steps)), sorted(set(suspends) - set(steps))


def check_source(source: str, entry: str, regs: Registrations) -> CheckResult:
    """Load ``source`` in a fresh sandbox with the engine prelude and look at ``entry``."""
    steps, suspends = known_names(regs)
    kind = "module" if _is_module(source) else "script"
    result = CheckResult(ok=False, kind=kind, entry=entry)
    sb = Sandbox(SandboxLimits(time=2.0, memory=64 * 2**20, stack=1 * 2**20))
    try:
        sb.start_budget()
        sb.install(prelude_for([source], bool(regs.fetch_allow)))
        sb.call("__define", [s for s in steps if not s.startswith("__")], suspends)
        if kind == "module":
            result.entry_type = sb.run_module(source, [entry]).get(entry, "undefined")
        else:
            sb.run_script(source)
            result.entry_type = sb.call("__typeofGlobal", entry)
        result.warnings = _undefined_calls(sb, source, kind, set(steps) | set(suspends))
    except JSError as exc:
        line = _line_of(exc)
        result.message = f"{exc.name}: {exc.message}" + (f" (line {line})" if line else "")
        return result
    except ResourceLimitExceeded as exc:
        result.message = f"top-level code {exc.message}"
        return result
    finally:
        sb.close()
    if result.entry_type != "function":
        where = "exported" if kind == "module" else "defined"
        result.message = f"entry point {entry!r} is not {where} as a function (it is {result.entry_type})"
        return result
    result.ok = True
    return result


def _undefined_calls(sb: Sandbox, source: str, kind: str, known: set[str]) -> list[str]:
    """``await name(...)`` where ``name`` is neither a global nor declared in the
    source: almost always a suspend function or step that needs ``--suspend``/``--app``."""
    names = dict.fromkeys(_CALLED.findall(source))
    warnings = []
    for name in names:
        if name in known or name in HOST_GLOBALS or re.search(_DECLARED.format(re.escape(name)), source):
            continue
        if sb.call("__typeofGlobal", name) != "undefined":
            continue
        warnings.append(
            f"{name}() is called but not defined: declare it with --suspend {name}, or load your steps "
            f"with --app"
        )
    return warnings


def _line_of(exc: JSError) -> int | None:
    match = re.search(r":(\d+)(?::\d+)?\)?\s*$", exc.stack.splitlines()[0]) if exc.stack else None
    if match is None:
        match = re.search(r"line (\d+)", exc.message)
    return int(match.group(1)) if match else None


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
