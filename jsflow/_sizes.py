"""Byte counts as operators write them: ``1048576``, ``512KiB``, ``64MiB``,
``1GiB``, ``2MB`` (powers of 1000) or ``1M`` (binary). One grammar for every
size option (``--hook-max-body``, ``--warm-bytes``) and their Python twins."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$", re.IGNORECASE | re.ASCII)
_UNITS = {"b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2}
_UNITS |= {"g": 1024**3, "gb": 1000**3, "gib": 1024**3}


def parse_size(text: str | int) -> int:
    """A byte count (an int passes through); ``ValueError`` for anything that is
    not one, or is negative. Zero is a size: a caller that refuses it says so."""
    if isinstance(text, int) and not isinstance(text, bool):
        size = text
    else:
        match = _SIZE.match(str(text))
        if match is None:
            raise ValueError(f"size {text!r} must look like 1048576, 512KiB or 64MiB")
        size = int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
    if size < 0:
        raise ValueError(f"size {text!r} must not be negative")
    return size
