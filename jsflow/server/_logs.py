"""Keep hook tokens out of access logs.

Why: ``POST /hooks/{token}`` carries its credential in the path, and
uvicorn's access log prints paths. A log line must not let its reader resume
someone's workflow, so the app redacts the token in uvicorn's access records
while it runs.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_HOOK_PATH = re.compile(r"^(/hooks/)[^/?\s]+")


class HookTokenFilter(logging.Filter):
    """Rewrites ``/hooks/<token>`` to ``/hooks/***`` in access-log arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "/hooks/" in a for a in record.args):
            record.args = tuple(_HOOK_PATH.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


_FILTER = HookTokenFilter()


def redact_access_log() -> None:
    """Install the filter on uvicorn's access logger (idempotent)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
