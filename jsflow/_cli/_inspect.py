"""The read-only commands: ``list`` (newest first, paged), ``show`` (one
instance, its buffered events and its timeline, ``--tail``/``--follow``) and
``steps`` (its journal, numbered for ``fork --step``).

Neither ever creates a store or changes one (see ``_store``).
"""

from __future__ import annotations

import time
from typing import Any

import click

from jsflow.host import HistoryItem, WorkflowInstance

from . import _render as out
from ._filters import Filters, filter_options, shell_words
from ._options import db_option, id_argument, json_option
from ._session import Session, open_existing
from ._store import HostSettings, host_options
from ._text import safe

#: how many instances ``list`` counts past a page to say "N more" (then "over N")
COUNT_CAP = 10_000


@click.command("list")
@filter_options
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Instances per page."
)
@click.option("--cursor", metavar="CURSOR", help="Start after the page that printed this cursor.")
@db_option
@json_option
def list_cmd(filters: Filters, limit: int, cursor: str | None, db: str | None, as_json: bool) -> None:
    """List workflow instances, newest first, a page at a time.

    A footer says how many more match and prints the command for the next
    page (--cursor). --since/--until take an ISO date or time (UTC unless
    it says otherwise) or a duration ago (2h, 30d).

    Example:

    \b
        jsflow list --status suspended --since 7d --limit 20
        jsflow list --waiting-on event --search order-
    """
    with open_existing(db) as sess:
        page = filters.page(sess.host, limit, cursor)
        more = _count_more(sess, filters, cursor, page) if page.next_cursor else 0
    if as_json:
        items = [out.instance_data(i) for i in page.items]
        out.emit_json({"items": items, "next_cursor": page.next_cursor, "more": more})
        return
    if not page.items:
        click.echo("no workflows" + (" match" if filters.any() else ""))
        return
    out.echo_lines(out.instance_rows(page.items))
    if page.next_cursor:
        count = f"over {COUNT_CAP}" if more > COUNT_CAP else str(more)
        words = ["jsflow", "list", *filters.argv(), "--limit", str(limit), "--cursor", page.next_cursor]
        click.echo(click.style(f"{count} more (newest first); next page: {shell_words(words)}", dim=True))


def _count_more(sess: Session, filters: Filters, cursor: str | None, page: Any) -> int:
    """How many instances match after this page (up to ``COUNT_CAP`` + 1).

    With the status as the only filter and on the first page, the per-status
    counts answer at once; otherwise the rest is paged through, ids only.
    """
    if cursor is None and filters.only_statuses():
        counts = sess.host.count_by_status()
        total = sum(counts[s] for s in filters.statuses) if filters.statuses else sum(counts.values())
        return total - len(page.items)
    more, nxt = 0, page.next_cursor
    while nxt is not None and more <= COUNT_CAP:
        rest = filters.page(sess.host, 1000, nxt)
        more += len(rest.items)
        nxt = rest.next_cursor
    return more


@click.command()
@id_argument
@click.option(
    "--token",
    "token_only",
    is_flag=True,
    help="Print only the resume tokens of its createHook waits, one per line (for $(...)).",
)
@click.option("--tail", type=click.IntRange(1), metavar="N", help="Only the last N timeline entries.")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new timeline entries until the workflow finishes (or Ctrl-C).",
)
@click.option(
    "--poll-interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.01),
    help="Seconds between looks, with --follow.",
)
@host_options
@db_option
@json_option
def show(
    workflow_id: str,
    token_only: bool,
    tail: int | None,
    follow: bool,
    poll_interval: float,
    settings: HostSettings,
    db: str | None,
    as_json: bool,
) -> None:
    """Show one instance: status, value or error, waits, buffered events and its timeline.

    With --follow, new timeline entries are printed as they happen (with
    --json: one JSON object per line) until the workflow finishes.

    Example:

    \b
        jsflow show order-17
        jsflow show order-17 --tail 5
        jsflow resume-token "$(jsflow show hire-1 --token)" '{"approved": true}'
    """
    with open_existing(db, settings=settings) as sess:
        inst = sess.host.get(workflow_id)
        if token_only:
            for tok in sess.tokens_for(inst):
                click.echo(tok.token)
            return
        history = sess.host.history(workflow_id)
        buffered = [out.inbox_data(e) for e in sess.host.pending_events(workflow_id)]
        shown = history[-tail:] if tail else history
        family = {"parent_id": inst.parent_id, "children": sess.host.children(workflow_id)}
        if as_json and not follow:
            data = out.instance_data(inst, sess.tokens_for(inst))
            out.emit_json({**data, **family, "buffered_events": buffered, "history": out.history_data(shown)})
            return
        if as_json:
            out.emit_json_line(out.instance_data(inst, sess.tokens_for(inst)))
            for item in shown:
                out.emit_json_line(out.history_data([item])[0])
        else:
            _echo_show(sess, inst, buffered, history, len(history) - len(shown))
            _echo_family(family)
        if follow:
            _follow(sess, inst, len(history), history[0].at if history else None, poll_interval, as_json)


def _echo_family(family: dict[str, Any]) -> None:
    """Parent and child workflows (``startWorkflow``), as ids to pass to ``jsflow show``."""
    if family["parent_id"]:
        click.echo(f"  parent: {safe(family['parent_id'])}  (jsflow show {safe(family['parent_id'])})")
    if family["children"]:
        click.echo("  children: " + ", ".join(safe(c) for c in family["children"]))


def _echo_show(
    sess: Session,
    inst: WorkflowInstance,
    buffered: list[dict[str, Any]],
    history: list[HistoryItem],
    skipped: int,
) -> None:
    out.echo_instance(inst, sess.tokens_for(inst), now=sess.host.clock())
    _echo_why(sess, inst)
    if buffered:
        click.echo("  buffered events (delivered when the workflow waits for them):")
        out.echo_lines(out.buffered_rows(buffered, sess.host.clock()), "    ")
    click.echo("  timeline:" + (f" (last {len(history) - skipped} of {len(history)})" if skipped else ""))
    out.echo_lines(out.timeline(history, skip=skipped), "    ")


def _echo_why(sess: Session, inst: WorkflowInstance) -> None:
    """For each pending wait: what it waits for in words, and the script line that made it."""
    if not inst.waits:
        return
    try:
        lines = sess.host.get_script(inst.script_name, inst.script_hash).source.splitlines()
    except Exception:  # a script missing from the store: the descriptions still help
        lines = []
    click.echo("  why:")
    for w in inst.waits:
        click.echo(f"    wait {w.wait_id}: {safe(w.description or out.waiting_on(w))}")
        loc = w.location
        if loc and 0 < loc.get("line", 0) <= len(lines):
            text = lines[loc["line"] - 1].strip()
            click.echo(f"      line {loc['line']}: {safe(out.compact(text, 100))}")


def _follow(
    sess: Session,
    inst: WorkflowInstance,
    seen: int,
    start: Any,
    poll_interval: float,
    as_json: bool,
) -> None:
    """Print timeline entries as they are stored, until the instance finishes.
    Ctrl-C ends it quietly (exit 0): following is watching, not a failure."""
    try:
        while not inst.is_finished:
            time.sleep(poll_interval)
            history = sess.host.history(inst.workflow_id)
            inst = sess.host.get(inst.workflow_id)
            start = start or (history[0].at if history else None)
            for item in history[seen:]:
                if as_json:
                    out.emit_json_line(out.history_data([item])[0])
                else:
                    click.echo("    " + out.timeline_row(item, start))
            seen = len(history)
    except KeyboardInterrupt:
        return
    if as_json:
        out.emit_json_line(out.instance_data(inst))
    else:
        click.echo(f"workflow {safe(inst.workflow_id)} {out.status_text(inst.status)}")


@click.command()
@id_argument
@db_option
@json_option
def steps(workflow_id: str, db: str | None, as_json: bool) -> None:
    """List the journal of workflow ID, numbered: what `fork --step N` keeps is
    the entries before N.

    Each entry is a completion the script saw: a step result or error, an
    event, a resume, a timeout.

    Example:

    \b
        jsflow steps order-17
    """
    with open_existing(db) as sess:
        journal = [h for h in sess.host.history(workflow_id) if h.source == "journal"]
    if as_json:
        out.emit_json([{"step": n, **out.history_data([h])[0]} for n, h in enumerate(journal)])
    elif not journal:
        click.echo("(empty journal)")
    else:
        out.echo_lines(out.journal_rows(journal))
