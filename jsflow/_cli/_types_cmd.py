"""``jsflow types``: TypeScript declarations for the scripts this app runs.

Why a command and not a shipped file: the declarations include the app's own
step and suspend functions (``--app``, ``--suspend``), typed from their
Python annotations, so they are generated where the app is known.
"""

from __future__ import annotations

from pathlib import Path

import click

from jsflow import WorkflowEngine

from ._errors import CliError
from ._options import registration_options
from ._session import Registrations, load_app


@click.command("types")
@registration_options
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    default=None,
    help="Write the declarations to FILE (e.g. jsflow.d.ts) instead of standard output.",
)
def types_cmd(regs: Registrations, output: str | None) -> None:
    """Write global TypeScript declarations for workflow scripts.

    They cover every built-in (sleep, waitForEvent, waitForEvents,
    createHook, step, ...) with its options, and each step and suspend
    function the app registers, with parameter and result types from the
    Python annotations (any where there are none). Check a script with
    `tsc --noEmit --strict --allowJs --checkJs --lib es2022 jsflow.d.ts flow.js`.

    Example:

    \b
        jsflow types --app myapp.flows:host -o jsflow.d.ts
        jsflow types --suspend getApproval > jsflow.d.ts
    """
    app = load_app(regs.app) if regs.app else WorkflowEngine()
    engine = app if isinstance(app, WorkflowEngine) else app.engine
    for name in regs.suspends:
        if name not in engine.step_names and name not in engine.suspend_names:
            engine.register_suspend_function(name)
    if regs.fetch_allow and "fetch" not in engine.step_names:
        engine.enable_fetch(allow_hosts=list(regs.fetch_allow))
    text = app.type_declarations()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc}", exit_code=2) from None
    click.echo(f"wrote {output}", err=True)
