"""Keep credentials out of every log line the server writes.

Why: ``POST /hooks/{token}`` carries its credential in the path, a caller
may put an API key in a query string (``?api_key=``) or a header value may
end up in a message, and uvicorn's access and error logs print paths. A log
line must not let its reader resume someone's workflow or call the API, so
while the app runs a filter rewrites the records of uvicorn's loggers and the
server's own: a hook path's token (whatever the slashes or case around it),
every query value and every ``Bearer`` credential become ``***``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: loggers whose records the filter rewrites (uvicorn's access and error logs, the server's)
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "jsflow.server")
MASK = "***"
_HOOK_PATH = re.compile(r"(/hooks/+)[^\s\"'?#]+", re.IGNORECASE)
_QUERY = re.compile(r"\?([^\s\"'#]*)")
_BEARER = re.compile(r"(bearer\s+)[^\s\"',;]+", re.IGNORECASE)


def _query(match: re.Match[str]) -> str:
    parts = []
    for part in match.group(1).split("&"):
        name, eq, _ = part.partition("=")
        parts.append(f"{name}={MASK}" if eq else MASK if part else "")
    return "?" + "&".join(parts)


def redact(text: str) -> str:
    """``text`` with hook tokens, query values and bearer credentials masked."""
    if "/" in text or "?" in text:
        text = _HOOK_PATH.sub(rf"\1{MASK}", text)
        text = _QUERY.sub(_query, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(rf"\1{MASK}", text)
    return text


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message and arguments (kept a tuple:
    uvicorn's access formatter unpacks it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


_FILTER = RedactingFilter()


def redact_logs() -> None:
    """Install the filter on the server's loggers and uvicorn's (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
