"""What an instance waits for, in one sentence, and the script lines that made its waits.

Why a module of its own: the list and the instance page say the same sentence
("waiting for 2 more 'vote' events (have: ann); times out in 1d 3h"), built
from the host's wait descriptions (which the engine writes, never naming an
internal function) plus the deadline that comes next and what happens then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jsflow.host import WaitInfo, WorkflowHost, WorkflowInstance

from ._render import human_delta

#: lines of script shown above and below a waiting line
EXCERPT_CONTEXT = 3
MAX_EXCERPTS = 5


def _what(wait: WaitInfo) -> str:
    if wait.description:
        return wait.description
    if wait.event_names:
        return "waiting for event " + " or ".join(repr(n) for n in wait.event_names)
    return f"waiting for {wait.function_name}"


def _deadline(wait: WaitInfo, now: datetime) -> str:
    """What happens when this wait's timer fires, and in how long."""
    assert wait.resume_at is not None
    left = human_delta(wait.resume_at - now)
    when = "now" if left == "due now" else f"in {left}"
    if wait.kind == "event":
        then = " (then it goes on with its default)" if wait.has_default else ""
        return f"times out {when}{then}"
    if wait.kind in ("token", "hook"):
        return f"token expires {when}"
    if wait.kind == "retry":
        return f"retries {when}"
    if wait.kind == "sleep":
        return f"wakes {when}"
    return f"resumes {when}"


def wait_sentence(inst: WorkflowInstance, now: datetime) -> str:
    """One sentence: what every pending wait waits for, then the next deadline."""
    if not inst.waits:
        return ""
    what = " and ".join(_what(w) for w in inst.waits)
    timed = [w for w in inst.waits if w.resume_at is not None]
    if not timed:
        return what
    first = min(timed, key=lambda w: w.resume_at)  # type: ignore[arg-type,return-value]
    if first.kind == "sleep" and len(inst.waits) == 1:
        return f"{what} ({_deadline(first, now)})"
    return f"{what}; {_deadline(first, now)}"


def excerpts(host: WorkflowHost, inst: WorkflowInstance) -> list[dict[str, Any]]:
    """For each pending wait with a location: the script around that line, the line marked."""
    located = [w for w in inst.waits if w.location and w.location.get("line")][:MAX_EXCERPTS]
    if not located:
        return []
    try:
        lines = host.get_script(inst.script_name, inst.script_hash).source.splitlines()
    except Exception:  # a missing script version: the sentence still says why
        return []
    out = []
    for wait in located:
        assert wait.location is not None
        line, column = int(wait.location["line"]), int(wait.location.get("column", 1))
        if not 0 < line <= len(lines):
            continue
        first, last = max(1, line - EXCERPT_CONTEXT), min(len(lines), line + EXCERPT_CONTEXT)
        out.append(
            {
                "wait_id": wait.wait_id,
                "description": _what(wait),
                "line": line,
                "column": column,
                "lines": [
                    {"number": n, "text": lines[n - 1], "current": n == line} for n in range(first, last + 1)
                ],
            }
        )
    return out
