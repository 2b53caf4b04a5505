"""Escaping what came from a script before it reaches a terminal."""

from __future__ import annotations

import unicodedata

#: invisible characters that reorder text (the "Trojan Source" bidi controls)
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def safe(text: str) -> str:
    """``text`` with control characters shown escaped (``\\x1b``, ``\\n``, ``\\u202e``).

    Why: ids, names, values, errors and console lines come from scripts and
    payloads, which may be hostile; printed raw, ``\\x1b]52;`` writes the
    operator's clipboard and ``\\x1b[2J`` clears the screen. Every text the
    CLI prints for people goes through this before it is styled (``--json``
    output is exact: JSON already escapes C0 controls).
    """
    if text.isprintable() and not _BIDI.intersection(text):
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch == " " or (ch.isprintable() and ch not in _BIDI):
        return ch
    if ch in "\n\r\t":
        return repr(ch)[1:-1]
    if unicodedata.category(ch) in ("Zs", "Zl", "Zp") and ch not in _BIDI:
        return ch if ch not in "\u2028\u2029" else f"\\u{ord(ch):04x}"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
