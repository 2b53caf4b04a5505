"""``make demo``: one workflow end to end on SQLite, through the ``jsflow`` CLI.

It prints each command before running it, so a new user sees what to type:
start (the workflow suspends on an event), send the event, let the worker
fire a timer, resume the approval, and read the timeline. The store is
``.jsflow/demo.db`` (recreated each time), so you can poke at it afterwards:
``.venv/bin/jsflow show demo-order --db .jsflow/demo.db``.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import click

from jsflow.cli import cli

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "demo_order.js"
DB = Path(".jsflow/demo.db")
WID = "demo-order"


def jsflow(*args: str, note: str = "") -> None:
    """Run one CLI command in-process, echoing it like a shell session."""
    if note:
        click.echo(click.style(f"\n# {note}", fg="blue"))
    click.echo(click.style("$ " + shlex.join(["jsflow", *args]), bold=True))
    try:
        cli.main(args=list(args), prog_name="jsflow", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None


def main() -> None:
    DB.parent.mkdir(parents=True, exist_ok=True)
    for path in DB.parent.glob(DB.name + "*"):
        path.unlink()
    os.environ["JSFLOW_DB"] = f"sqlite:///{DB}"  # every command below uses this store
    script = str(SCRIPT.relative_to(Path.cwd())) if SCRIPT.is_relative_to(Path.cwd()) else str(SCRIPT)
    click.echo(click.style(f"# the workflow: {script}", fg="blue"))
    click.echo(SCRIPT.read_text(encoding="utf-8").rstrip())
    click.echo(click.style(f"\n$ export JSFLOW_DB=sqlite:///{DB}", bold=True))
    jsflow("check", script, "--suspend", "getApproval", note="1. check the script without running it")
    jsflow(
        "run",
        script,
        "A-17",
        "--id",
        WID,
        "--suspend",
        "getApproval",
        note="2. start it: the step runs, then it suspends waiting for the payment event",
    )
    jsflow(
        "event",
        WID,
        "payment",
        '{"amount": 42}',
        note="3. the payment arrives: the workflow resumes and sleeps for 1s (a durable timer)",
    )
    time.sleep(1.05)
    jsflow("worker", "--once", note="4. a worker fires the due timer; the workflow now waits for approval")
    jsflow("resume", WID, "true", note="5. the manager approves: the workflow completes")
    jsflow("show", WID, note="6. its timeline: what ran, what was journaled, and when")
    click.echo(f"\nDone. Look around: .venv/bin/jsflow list --db {DB}   (or .venv/bin/jsflow --help)")
    click.echo("To type `jsflow` without the path: source .venv/bin/activate (see docs/getting-started.md)")


if __name__ == "__main__":
    sys.exit(main())
