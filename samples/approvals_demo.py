"""Approval flows written in JS alone, end to end on SQLite through the ``jsflow`` CLI
(in ``make demo``'s style: each command is printed before it runs).

1. ``two_of_three.js``: a 2-of-3 approval with ``waitForEvents`` (each approver
   counted once); ``jsflow show`` says how many votes are still needed and points
   at the script line that waits.
2. ``order_approvals.js``: one wait per order, each ``match``-ing its order's
   approval; an approval for an order nobody waits for stays buffered, and a
   malformed one is refused by the wait's schema before anything is stored.

Run it: ``.venv/bin/python samples/approvals_demo.py``. The store is
``.jsflow/approvals-demo.db`` (recreated each time).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from jsflow.cli import cli

HERE = Path(__file__).resolve().parent
DB = Path(".jsflow/approvals-demo.db")


def jsflow(*args: str, note: str = "", ok: bool = True) -> None:
    """Run one CLI command in-process, echoing it like a shell session."""
    if note:
        click.echo(click.style(f"\n# {note}", fg="blue"))
    click.echo(click.style("$ " + " ".join(["jsflow", *(_quoted(a) for a in args)]), bold=True))
    try:
        cli.main(args=list(args), prog_name="jsflow", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        if ok:
            raise SystemExit(exc.exit_code) from None


def _quoted(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' {}"[]') else arg


def _script(name: str) -> str:
    path = HERE / name
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def two_of_three() -> None:
    script = _script("two_of_three.js")
    request = '{"id": "PR-7", "approvers": ["ann", "bob", "cy"]}'
    jsflow("run", script, request, "--id", "pr-7", note="a 2-of-3 approval: it waits for two 'yes' votes")
    jsflow("event", "pr-7", "vote", '{"voter": "ann", "yes": true}', note="ann votes yes")
    jsflow("event", "pr-7", "vote", '{"voter": "ann", "yes": true}', note="ann again: not counted twice")
    jsflow("show", "pr-7", "--tail", "3", note="why it waits, and where in the script")
    jsflow("event", "pr-7", "vote", '{"voter": "bob", "yes": true}', note="bob votes yes: approved")
    jsflow("show", "pr-7", "--tail", "2")


def order_approvals() -> None:
    script = _script("order_approvals.js")
    jsflow("run", script, '["A-17", "A-18"]', "--id", "batch-1", note="one matched wait per order")
    no_such_order = '{"order": "A-99", "approved": true}'
    jsflow("event", "batch-1", "approval", no_such_order, note="no order A-99: buffered")
    jsflow(
        "event",
        "batch-1",
        "approval",
        '{"order": "A-18", "approved": "yes"}',
        note="a malformed approval is refused by the wait's schema (nothing stored)",
        ok=False,
    )
    jsflow("event", "batch-1", "approval", '{"order": "A-18", "approved": true}', note="A-18 approved")
    jsflow("event", "batch-1", "approval", '{"order": "A-17", "approved": false}', note="A-17 rejected")
    jsflow("show", "batch-1", "--tail", "3")


def main() -> None:
    DB.parent.mkdir(parents=True, exist_ok=True)
    for path in DB.parent.glob(DB.name + "*"):
        path.unlink()
    os.environ["JSFLOW_DB"] = f"sqlite:///{DB}"
    click.echo(click.style(f"$ export JSFLOW_DB=sqlite:///{DB}", bold=True))
    two_of_three()
    order_approvals()
    click.echo(f"\nDone. Look around: .venv/bin/jsflow list --db {DB}")


if __name__ == "__main__":
    sys.exit(main())
