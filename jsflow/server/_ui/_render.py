"""Templates, filters and the response headers every page of the web view sends.

Why here: escaping and the Content-Security-Policy are decided once, not per
page. Jinja2 autoescapes every ``{{ value }}`` in HTML and attributes; values
from scripts and payloads are only ever rendered that way (never ``|safe``).
The policy allows scripts and styles only from this origin, so even markup
that slipped through could not run: there is no inline script or event
handler anywhere in the templates (the behaviour lives in ``static/ui.js``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"
UI_PREFIX = "/ui"

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# C0 controls and DEL shown as their Unicode "control pictures" so they are seen, not acted on;
# C1 controls and bidirectional overrides (which can make one id look like another) as escapes
_VISIBLE = (
    {c: chr(0x2400 + c) for c in range(0x20)}
    | {0x7F: "\u2421"}
    | {c: f"\\x{c:02x}" for c in range(0x80, 0xA0)}
    | {c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)
# what json.dumps leaves raw that a reader cannot see: DEL and the C1 controls
_JSON_INVISIBLE = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}


def workflow_url(workflow_id: str, **query: Any) -> str:
    """The page of one instance; the id is percent-encoded whole (it may hold ``/``)."""
    url = f"{UI_PREFIX}/workflows/{quote(workflow_id, safe='')}"
    return with_query(url, **query)


def with_query(url: str, **query: Any) -> str:
    pairs = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{url}?{urlencode(pairs)}" if pairs else url


def visible(text: object) -> str:
    """``text`` with control characters replaced by visible symbols."""
    return str(text).translate(_VISIBLE)


def pretty_json(value: Any) -> str:
    """Indented JSON for display; every control character comes out as a ``\\u`` escape."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    return text.translate(_JSON_INVISIBLE)


def compact_json(value: Any, limit: int = 600) -> str:
    """One-line JSON for a timeline cell, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    text = text.translate(_JSON_INVISIBLE)
    return text if len(text) <= limit else text[:limit] + "…"


def iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def human_delta(delta: timedelta) -> str:
    """``3d 4h``, ``5m 02s``, ``now``: the coarse two units an operator reads."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "due now"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def remaining(due: datetime | None, now: datetime) -> str:
    return "" if due is None else human_delta(due - now)


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(visible=visible, pretty=pretty_json, compact=compact_json, iso=iso)
    env.globals.update(workflow_url=workflow_url, with_query=with_query, remaining=remaining, ui=UI_PREFIX)
    return env


class Renderer:
    """Renders templates into responses carrying the security headers."""

    def __init__(self) -> None:
        self.env = make_environment()

    def page(self, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def json_response(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(json_ready(data), status_code=status_code, headers=SECURITY_HEADERS)


def json_ready(value: Any) -> Any:
    """Datetimes as ISO strings, tuples as lists: what ``JSONResponse`` can encode."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
