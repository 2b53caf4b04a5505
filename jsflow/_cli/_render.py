"""Output for people (tables, aligned timelines, colour on a TTY) and for scripts (``--json``).

Why hand-rolled tables: the output is a few columns of short strings, and a
dependency for that would be heavier than the code. Colour goes through
``click.style``; ``click.echo`` strips it when stdout is not a terminal, so
pipes and tests see plain text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click

from jsflow.host import EventReceipt, HistoryItem, ReplayReport, WaitInfo, WorkflowInstance

from ._session import IssuedToken
from ._values import dumps

STATUS_COLOURS = {
    "completed": "green",
    "suspended": "yellow",
    "running": "cyan",
    "faulted": "red",
    "cancelled": "magenta",
    "continued_as_new": "blue",
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


def emit_json(value: Any) -> None:
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
    text = value if isinstance(value, str) else dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        return "event " + " | ".join(w.event_names)
    if w.kind in ("sleep", "retry"):
        return w.kind
    args = ", ".join(compact(a, 20) for a in w.arguments) if w.kind != "hook" else ""
    return f"{w.function_name}({args})" if w.kind != "hook" else "createHook"


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
        f"workflow {click.style(inst.workflow_id, bold=True)}  "
        f"({inst.script_name}@{inst.script_hash[:12]}, {inst.entry_point})  {status_text(inst.status)}"
    )
    if inst.status == "completed":
        click.echo(f"  value: {dumps(inst.value)}")
    elif inst.status == "faulted" and inst.error:
        click.echo(click.style(f"  error: {error_text(inst.error)}", fg="red"))
    elif inst.status == "cancelled":
        click.echo(f"  reason: {inst.cancel_reason or '-'}")
    if inst.waits:
        click.echo("  waits:")
        echo_lines(wait_rows(inst.waits, now), "    ")
    if tokens:
        click.echo("  resume tokens (shown once; pass to `jsflow resume-token`):")
        rows = [
            [t.function_name, str(t.wait_id if t.wait_id is not None else "-"), t.token, when(t.expires_at)]
            for t in tokens
        ]
        echo_lines(table(["FUNCTION", "WAIT", "TOKEN", "EXPIRES"], rows), "    ")
    if hints and not inst.is_finished:
        for hint in next_steps(inst, tokens):
            click.echo(click.style(f"  next: {hint}", dim=True))


def error_text(error: dict[str, Any]) -> str:
    """``Name: message``; a script error's stored message already starts with its JS name."""
    name = error.get("js_name") or error.get("name") or error.get("type") or "Error"
    message = str(error.get("message", ""))
    return message if message.startswith(f"{name}: ") else f"{name}: {message}"


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
    return word if word.replace("-", "").replace("_", "").replace(".", "").isalnum() else repr(word)


def instance_rows(instances: Sequence[WorkflowInstance]) -> list[str]:
    rows = [
        [
            i.workflow_id,
            i.script_name,
            status_text(i.status),
            ", ".join(waiting_on(w) for w in i.waits) or "-",
            when(i.updated_at),
        ]
        for i in instances
    ]
    return table(["ID", "SCRIPT", "STATUS", "WAITING FOR", "UPDATED"], rows)


# -- timelines ---------------------------------------------------------------------------------
_NAME_KEYS = ("name", "function_name", "event", "kind")
#: lifecycle details that are noise in a timeline (still in ``--json``)
_HIDDEN_KEYS = frozenset({"run_id", "script_hash", "parent_run_id", "worker"})
_MISSING = object()


def detail_text(detail: dict[str, Any]) -> str:
    """A journal entry or lifecycle detail as ``name  slot=1  -> result``."""
    parts: list[str] = []
    rest = {k: v for k, v in detail.items() if k not in _HIDDEN_KEYS}
    for key in _NAME_KEYS:
        if isinstance(rest.get(key), str):
            parts.append(rest.pop(key))
            break
    waits = rest.pop("waits", None)
    if isinstance(waits, list):
        parts.append("on " + ", ".join(_wait_ref(w) for w in waits))
    error = rest.pop("error", None)
    result = rest.pop("result", _MISSING)
    for key, value in rest.items():
        if value is not None and value != [] and value != {}:
            parts.append(f"{key}={compact(value, 40)}")
    if result is not _MISSING and (result is not None or error is None):
        parts.append("-> " + compact(result))
    if error:
        text = error_text(error) if isinstance(error, dict) else str(error)
        parts.append(click.style("!! " + compact(text, 100), fg="red"))
    return "  ".join(parts)


def _wait_ref(wait: Any) -> str:
    if isinstance(wait, dict):
        return f"{wait.get('function', '?')}#{wait.get('wait_id', '?')}"
    return compact(wait, 30)


def timeline(items: Sequence[HistoryItem]) -> list[str]:
    """One aligned line per item: offset from the first, UTC time, source, kind, detail."""
    if not items:
        return ["(no history)"]
    start = items[0].at
    same_day = all(i.at.date() == start.date() for i in items)
    fmt = "%H:%M:%S.%f" if same_day else "%Y-%m-%d %H:%M:%S.%f"
    rows = [
        [
            "+" + span((i.at - start).total_seconds()) if i.at != start else "+0",
            i.at.astimezone(UTC).strftime(fmt)[:-3],
            "journal" if i.source == "journal" else "-",
            click.style(i.kind, fg="cyan" if i.source == "journal" else None),
            detail_text(i.detail),
        ]
        for i in items
    ]
    return table(["OFFSET", "TIME (UTC)", "SOURCE", "EVENT", "DETAIL"], rows)


def replay_rows(reports: Sequence[ReplayReport]) -> list[str]:
    rows = [
        [
            r.workflow_id,
            r.status,
            click.style("ok", fg="green") if r.ok else click.style("DRIFT", fg="red", bold=True),
            r.message or "",
        ]
        for r in reports
    ]
    return table(["ID", "STATUS", "RESULT", "DETAIL"], rows)
