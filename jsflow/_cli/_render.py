"""Output for people (tables, aligned timelines, colour on a TTY) and for scripts (``--json``).

Why hand-rolled tables: the output is a few columns of short strings, and a
dependency for that would be heavier than the code. Colour goes through
``click.style``; ``click.echo`` strips it when stdout is not a terminal, so
pipes and tests see plain text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click

from jsflow.host import EventReceipt, HistoryItem, ReplayReport, WaitInfo, WorkflowInstance
from jsflow.host.store import InboxEvent

from ._errors import JSON_EMITTED
from ._session import IssuedToken
from ._text import safe
from ._values import dumps

STATUS_COLOURS = {
    "completed": "green",
    "suspended": "yellow",
    "running": "cyan",
    "faulted": "red",
    "cancelled": "magenta",
}
MAX_CELL = 60


# -- plain data for --json ---------------------------------------------------------------
def wait_data(w: WaitInfo) -> dict[str, Any]:
    return asdict(w)


def token_data(t: IssuedToken) -> dict[str, Any]:
    return asdict(t)


def instance_data(inst: WorkflowInstance, tokens: Sequence[IssuedToken] = ()) -> dict[str, Any]:
    """The instance's fields (waits included) plus the tokens this command saw."""
    return {**asdict(inst), "tokens": [asdict(t) for t in tokens]}


def history_data(items: Iterable[HistoryItem]) -> list[dict[str, Any]]:
    return [asdict(i) for i in items]


def receipt_data(r: EventReceipt) -> dict[str, Any]:
    return asdict(r)


def report_data(r: ReplayReport) -> dict[str, Any]:
    return asdict(r)


def inbox_data(event: InboxEvent) -> dict[str, Any]:
    """A buffered event: its payload parsed (it is stored as JSON text)."""
    return {
        "event_id": event.event_id,
        "name": event.name,
        "payload": json.loads(event.payload_json),
        "received_at": event.received_at,
    }


def emit_json_line(value: Any) -> None:
    """One JSON document on one line (``show --follow --json`` streams these)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[JSON_EMITTED] = True
    click.echo(dumps(value))


def emit_json(value: Any) -> None:
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[JSON_EMITTED] = True
    click.echo(dumps(value, indent=2))


# -- small formatting helpers --------------------------------------------------------------
def status_text(status: str) -> str:
    return click.style(status, fg=STATUS_COLOURS.get(status), bold=True)


def when(dt: datetime | None, now: datetime | None = None) -> str:
    """``2026-01-02 09:00:00 UTC (in 3h)``: absolute and, against ``now``, relative."""
    if dt is None:
        return "-"
    text = dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if now is not None:
        delta = (dt - now).total_seconds()
        text += f" (in {span(delta)})" if delta >= 0 else f" ({span(-delta)} ago)"
    return text


def span(seconds: float) -> str:
    """A short human duration: ``950ms``, ``42s``, ``3m 5s``, ``2h 10m``, ``3d 4h``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    s = int(seconds)
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if s >= size:
            rest = (s % size) // subsize
            return f"{s // size}{unit}" + (f" {rest}{sub}" if rest else "")
    return f"{s}s"


def compact(value: Any, limit: int = MAX_CELL) -> str:
    """A value on one short line, control characters escaped (``safe``)."""
    text = value if isinstance(value, str) else dumps(value)
    text = safe(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: Any) -> str:
    """A whole value as JSON for people: exact, but with control characters escaped."""
    return safe(dumps(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces; header dimmed."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(click.unstyle(c))) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (w - len(click.unstyle(c))) for c, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip()

    return [click.style(line(headers), dim=True), *(line(r) for r in rows)]


def echo_lines(lines: Iterable[str], indent: str = "") -> None:
    for ln in lines:
        click.echo(indent + ln)


# -- instances ------------------------------------------------------------------------------
def waiting_on(w: WaitInfo) -> str:
    """What a wait needs from the outside world, in a few words."""
    if w.kind == "event" and w.event_names:
        return "event " + " | ".join(safe(n) for n in w.event_names)
    if w.kind in ("sleep", "retry"):
        return w.kind
    if w.kind == "hook":
        return "hook.wait"
    args = ", ".join(compact(a, 20) for a in w.arguments)
    return f"{safe(w.function_name)}({args})"


def wait_rows(waits: Sequence[WaitInfo], now: datetime | None) -> list[str]:
    rows = [
        [str(w.wait_id), w.kind, waiting_on(w), when(w.resume_at, now) if w.resume_at else "-"] for w in waits
    ]
    return table(["ID", "KIND", "WAITING FOR", "DUE / TIMEOUT"], rows)


def echo_instance(
    inst: WorkflowInstance,
    tokens: Sequence[IssuedToken] = (),
    *,
    now: datetime | None = None,
    hints: bool = True,
) -> None:
    """Status line, value or error, pending waits, tokens, and what to type next."""
    click.echo(
        f"workflow {click.style(safe(inst.workflow_id), bold=True)}  "
        f"({safe(inst.script_name)}@{inst.script_hash[:12]}, {safe(inst.entry_point)})  "
        f"{status_text(inst.status)}"
    )
    if inst.status == "completed":
        click.echo(f"  value: {shown(inst.value)}")
    elif inst.status == "faulted" and inst.error:
        click.echo(click.style(f"  error: {error_text(inst.error)}", fg="red"))
    elif inst.status == "cancelled":
        click.echo(f"  reason: {safe(inst.cancel_reason or '-')}")
    if inst.waits:
        click.echo("  waits:")
        echo_lines(wait_rows(inst.waits, now), "    ")
    if tokens:
        click.echo("  resume tokens (shown once; pass to `jsflow resume-token`):")
        rows = [
            [
                safe(t.function_name),
                str(t.wait_id if t.wait_id is not None else "-"),
                safe(t.token),
                when(t.expires_at),
            ]
            for t in tokens
        ]
        echo_lines(table(["FUNCTION", "WAIT", "TOKEN", "EXPIRES"], rows), "    ")
    if hints and not inst.is_finished:
        for hint in next_steps(inst, tokens):
            click.echo(click.style(f"  next: {hint}", dim=True))


def error_text(error: dict[str, Any]) -> str:
    """``Name: message``; a script error's stored message already starts with its JS name.
    Control characters are escaped (the message came from a script)."""
    name = str(error.get("js_name") or error.get("name") or error.get("type") or "Error")
    message = str(error.get("message", ""))
    return safe(message if message.startswith(f"{name}: ") else f"{name}: {message}")


def next_steps(inst: WorkflowInstance, tokens: Sequence[IssuedToken]) -> list[str]:
    """Copy-pasteable commands that move a suspended instance on."""
    wid = _quote(inst.workflow_id)
    out: list[str] = []
    for w in inst.waits:
        if w.kind == "event" and w.event_names:
            out.append(f"jsflow event {wid} {_quote(w.event_names[0])} '<json>'")
        elif w.kind in ("sleep", "retry"):
            out.append("jsflow worker --once   (fires due timers)")
        elif not any(t.wait_id == w.wait_id for t in tokens):
            out.append(f"jsflow resume {wid} '<json>' --wait-id {w.wait_id}")
    if tokens:
        out.append("jsflow resume-token <token> '<json>'")
    return list(dict.fromkeys(out))


def _quote(word: str) -> str:
    plain = word.replace("-", "").replace("_", "").replace(".", "")
    return word if plain.isascii() and plain.isalnum() else safe(repr(word))


def instance_rows(instances: Sequence[WorkflowInstance]) -> list[str]:
    rows = [
        [
            safe(i.workflow_id),
            safe(i.script_name),
            status_text(i.status),
            ", ".join(waiting_on(w) for w in i.waits) or "-",
            when(i.updated_at),
        ]
        for i in instances
    ]
    return table(["ID", "SCRIPT", "STATUS", "WAITING FOR", "UPDATED"], rows)


# -- timelines ---------------------------------------------------------------------------------
_NAME_KEYS = ("name", "function_name", "event", "kind")
#: host-internal function names -> what the script wrote
SCRIPT_NAMES = {
    "__jhook_create": "createHook",
    "__jhook_wait": "hook.wait",
    "__jchild_start": "startWorkflow",
}
#: lifecycle details that are noise in a timeline (still in ``--json``)
_HIDDEN_KEYS = frozenset({"run_id", "script_hash", "parent_run_id", "worker"})
_MISSING = object()


def detail_text(detail: dict[str, Any]) -> str:
    """A journal entry or lifecycle detail as ``name  slot=1  -> result``."""
    parts: list[str] = []
    rest = {k: v for k, v in detail.items() if k not in _HIDDEN_KEYS}
    for key in _NAME_KEYS:
        if isinstance(rest.get(key), str):
            name = rest.pop(key)
            parts.append(safe(SCRIPT_NAMES.get(name, name)))
            break
    waits = rest.pop("waits", None)
    if isinstance(waits, list):
        parts.append("on " + ", ".join(_wait_ref(w) for w in waits))
    error = rest.pop("error", None)
    result = rest.pop("result", _MISSING)
    for key, value in rest.items():
        if value is not None and value != [] and value != {}:
            parts.append(f"{safe(key)}={compact(value, 40)}")
    if result is not _MISSING and (result is not None or error is None):
        parts.append("-> " + compact(result))
    if error:
        text = error_text(error) if isinstance(error, dict) else str(error)
        parts.append(click.style("!! " + compact(text, 100), fg="red"))
    return "  ".join(parts)


def _wait_ref(wait: Any) -> str:
    if isinstance(wait, dict):
        name = str(wait.get("function", "?"))
        return f"{safe(SCRIPT_NAMES.get(name, name))}#{wait.get('wait_id', '?')}"
    return compact(wait, 30)


def timeline(items: Sequence[HistoryItem], *, skip: int = 0) -> list[str]:
    """One aligned line per item after the first ``skip`` (``--tail``): offset from
    the first item, UTC time, source, kind, detail."""
    if not items:
        return ["(no history)"]
    start = items[0].at
    same_day = all(i.at.date() == start.date() for i in items)
    fmt = "%H:%M:%S.%f" if same_day else "%Y-%m-%d %H:%M:%S.%f"
    rows = [_timeline_cells(i, start, fmt) for i in items[skip:]]
    return table(["OFFSET", "TIME (UTC)", "SOURCE", "EVENT", "DETAIL"], rows)


def _timeline_cells(item: HistoryItem, start: datetime, fmt: str) -> list[str]:
    return [
        "+" + span((item.at - start).total_seconds()) if item.at != start else "+0",
        item.at.astimezone(UTC).strftime(fmt)[:-3],
        "journal" if item.source == "journal" else "-",
        click.style(safe(item.kind), fg="cyan" if item.source == "journal" else None),
        detail_text(item.detail),
    ]


def timeline_row(item: HistoryItem, start: datetime | None) -> str:
    """One timeline line on its own (``show --follow``), in fixed-width columns."""
    cells = _timeline_cells(item, start or item.at, "%Y-%m-%d %H:%M:%S.%f")
    widths = (8, 23, 7, 16)
    padded = [c + " " * max(0, w - len(click.unstyle(c))) for c, w in zip(cells, widths, strict=False)]
    return "  ".join([*padded, cells[-1]]).rstrip()


def journal_rows(items: Sequence[HistoryItem]) -> list[str]:
    """``steps``: one numbered row per journal entry."""
    rows = [
        [
            str(n),
            i.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            safe(i.kind),
            detail_text(i.detail),
        ]
        for n, i in enumerate(items)
    ]
    return table(["STEP", "TIME (UTC)", "KIND", "DETAIL"], rows)


def buffered_rows(events: Sequence[dict[str, Any]], now: datetime | None) -> list[str]:
    rows = [
        [f"#{e['event_id']}", safe(e["name"]), compact(e["payload"]), when(e["received_at"], now)]
        for e in events
    ]
    return table(["EVENT", "NAME", "PAYLOAD", "RECEIVED"], rows)


VERDICT_STYLE = {
    "ok": ("ok", "green"),
    "drift": ("DRIFT", "red"),
    "no_entry": ("NO ENTRY", "red"),
    "script_error": ("SCRIPT ERROR", "red"),
    "corrupt": ("CORRUPT", "magenta"),
    "failed": ("FAILED", "red"),
}


def replay_rows(reports: Sequence[ReplayReport], verdicts: Sequence[tuple[str, str]]) -> list[str]:
    rows = []
    for r, (verdict, reason) in zip(reports, verdicts, strict=True):
        label, colour = VERDICT_STYLE[verdict]
        rows.append(
            [safe(r.workflow_id), r.status, click.style(label, fg=colour, bold=verdict != "ok"), safe(reason)]
        )
    return table(["ID", "STATUS", "RESULT", "DETAIL"], rows)
