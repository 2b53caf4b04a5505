"""Guest source rewriting that keeps resource limits uncatchable.

QuickJS lets a script catch ``InternalError: out of memory`` (or the ``null``
it throws when it cannot even build that error) and ``RangeError: Maximum
call stack size exceeded``; a script could catch them forever. The bridge
keeps a sticky "limit hit" flag that ends the run at the next return to
Python, and something must set it where a script catches. So every ``catch``
clause of guest code starts with a call of the bridge's guard, and a
``try``/``finally`` without ``catch`` gets a rethrowing ``catch`` that calls it:

    catch (e) {        ->  catch (e) {({}).__jsr_caught(e);
    catch {            ->  catch (__jsr_e) {({}).__jsr_caught(__jsr_e);
    catch ({a, b}) {   ->  catch (__jsr_e) {({}).__jsr_caught(__jsr_e);let {a, b} = __jsr_e;
    try {...} finally  ->  try {...} catch (__jsr_e) {({}).__jsr_caught(__jsr_e);throw __jsr_e;} finally

and the body of every ``finally`` block and of every method or function
property named ``return`` (an iterator's; QuickJS discards what it throws
while another exception propagates) becomes ``{try {...} catch (__jsr_e)
{...; throw __jsr_e;}}``.

``({})`` is a fresh object, so the guard is found on ``Object.prototype``
(where the bridge defines it non-writable and non-configurable) and no
script binding can shadow it. Rejection handlers are guarded by the bridge's
``Promise.prototype.then``; rejections nobody handles are seen by the
sandbox's rejection tracker. Code generated from strings (``eval``,
``Function``) would escape this rewriting, so the bridge refuses it.

The clauses are found in a real parse tree (tree-sitter's JavaScript
grammar, _jsparse.py), never by scanning text, so strings, comments, regular
expressions and template literals can hide nothing. Where that parser finds
a syntax error in a source that contains ``catch`` or ``finally``,
:func:`guard_catches` raises :class:`Unguardable`: the sandbox then lets
QuickJS report its own syntax error, and refuses a source that QuickJS
would run but that cannot be parsed here (fail closed).

Inserted text never contains a newline, and text moved (a destructuring
pattern) keeps its newlines: line numbers of errors stay right. Columns on
a line that gains a guard shift by the inserted length.

Parsing costs about 0.2 ms per kilobyte of script, so results are cached
by content (see :func:`guard_catches`; bench/catchguard.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

from tree_sitter import Node, QueryCursor

from ._jsparse import parse_javascript, query

GUARD = "({}).__jsr_caught"
_ERR = "__jsr_e"
_QUERY = query(
    """
    (catch_clause) @catch
    (try_statement body: (_) @try_body !handler finalizer: (_))
    """
)
# Blocks whose errors QuickJS itself may discard: closing an iterator while
# an exception propagates runs the iterator's return() (for a generator, its
# finally blocks) and drops whatever that throws. Their bodies get a guard.
_DISCARDED = query(
    """
    (finally_clause body: (statement_block) @block)
    (method_definition name: (property_identifier) @name body: (statement_block) @block (#eq? @name "return"))
    (pair key: (property_identifier) @name
      value: [(function_expression body: (statement_block) @block)
              (arrow_function body: (statement_block) @block)]
      (#eq? @name "return"))
    """
)


class Unguardable(Exception):
    """The source contains ``catch``/``finally`` but does not parse as
    JavaScript here; ``line`` and ``column`` (1-based) name the first error."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(f"unparsable source at line {line}, column {column}")
        self.line = line
        self.column = column


def first_error(node: Node) -> tuple[int, int]:
    """1-based (line, byte column) of the first ERROR or missing node under ``node``."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            row, col = current.start_point
            return row + 1, col + 1
        stack.extend(reversed([c for c in current.children if c.has_error or c.is_missing]))
    return 1, 1


# Tokens whose text can contain "<!--" or "-->" without starting a comment.
_OPAQUE = frozenset({"string", "template_string", "regex", "comment", "string_fragment", "regex_pattern"})
_LINE_ENDS = (b"\n", b"\r", "\u2028".encode(), "\u2029".encode())
_MAX_HTML_COMMENTS = 256


def _inside_token(root: Node, pos: int) -> bool:
    node: Node | None = root.descendant_for_byte_range(pos, pos + 1)
    while node is not None:
        if node.type in _OPAQUE:
            return True
        node = node.parent
    return False


def _line_start(data: bytes, pos: int) -> int:
    return max(
        data.rfind(end, 0, pos) + len(end) if data.rfind(end, 0, pos) >= 0 else 0 for end in _LINE_ENDS
    )


def _line_end(data: bytes, pos: int) -> int:
    ends = [i for i in (data.find(end, pos) for end in _LINE_ENDS) if i >= 0]
    return min(ends) if ends else len(data)


def _close_comment_allowed(root: Node, data: bytes, pos: int) -> bool:
    """Whether ``-->`` at ``pos`` starts an HTML-like close comment (ECMAScript
    Annex B.1.1): only white space and comments stand before it on its line,
    or a multi-line comment that spans a line terminator ends there."""
    at = pos
    start = _line_start(data, pos)
    while at > start:
        if data[at - 1 : at] in (b" ", b"\t", b"\v", b"\f"):
            at -= 1
            continue
        node = root.descendant_for_byte_range(at - 1, at)
        if node is None or node.type != "comment" or node.end_byte != at:
            return False
        if node.start_byte < start:  # a /* */ that spans a line terminator
            return True
        at = node.start_byte
    return True


def _html_comment(root: Node, data: bytes) -> int | None:
    """Start of the first HTML-like comment (``<!--``, or ``-->`` at a line
    start) outside strings, templates, regular expressions and comments."""
    found: list[int] = []
    for marker in (b"<!--", b"-->"):
        at = data.find(marker)
        while at >= 0:
            if not _inside_token(root, at) and (marker == b"<!--" or _close_comment_allowed(root, data, at)):
                found.append(at)
                break
            at = data.find(marker, at + 1)
    return min(found) if found else None


def _parse(data: bytes, *, module: bool) -> Node:
    """The parse tree of ``data``. tree-sitter's grammar lacks the HTML-like
    comments that QuickJS accepts in scripts (Annex B, never in modules), so
    in a script, while the tree has errors, the first such comment is blanked
    (same byte length, so offsets keep) and the text parsed again."""
    tree = parse_javascript(data)
    for _ in range(0 if module else _MAX_HTML_COMMENTS):
        if not tree.root_node.has_error:
            break
        start = _html_comment(tree.root_node, data)
        if start is None:
            break
        end = _line_end(data, start)
        data = data[:start] + b" " * (end - start) + data[end:]
        tree = parse_javascript(data)
    if tree.root_node.has_error:
        raise Unguardable(*first_error(tree.root_node))
    return tree.root_node


def _edits(data: bytes, *, module: bool) -> list[tuple[int, int, bytes]]:
    """``(start, end, replacement)`` byte edits guarding every catch clause
    and every catch-less ``try``/``finally`` of the parsed ``data``."""
    root = _parse(data, module=module)
    captures = QueryCursor(_QUERY).captures(root)
    edits: list[tuple[int, int, bytes]] = []
    guard, err = GUARD.encode(), _ERR.encode()
    for clause in captures.get("catch", []):
        body = clause.child_by_field_name("body")
        param = clause.child_by_field_name("parameter")
        if body is None:
            continue
        open_brace = body.start_byte + 1
        if param is None:  # catch { ... }: give it a binding
            keyword_end = clause.children[0].end_byte
            edits.append((keyword_end, keyword_end, b" (" + err + b")"))
            edits.append((open_brace, open_brace, guard + b"(" + err + b");"))
        elif param.type == "identifier":
            edits.append((open_brace, open_brace, guard + b"(" + param.text + b");"))
        else:  # a destructuring pattern: bind it after the guard has run
            pattern = param.text
            edits.append((param.start_byte, param.end_byte, err))
            edits.append(
                (open_brace, open_brace, guard + b"(" + err + b");let " + pattern + b" = " + err + b";")
            )
    rethrow = b" catch (" + err + b") {" + guard + b"(" + err + b");throw " + err + b";}"
    for try_body in captures.get("try_body", []):
        edits.append((try_body.end_byte, try_body.end_byte, rethrow))
    for block in QueryCursor(_DISCARDED).captures(root).get("block", []):
        edits.append((block.start_byte + 1, block.start_byte + 1, b"try {"))
        edits.append((block.end_byte - 1, block.end_byte - 1, b"}" + rethrow))
    return edits


def _apply(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out: list[bytes] = []
    copied = 0
    for start, end, text in sorted(edits, key=lambda e: (e[0], e[1])):  # stable: ties keep their order
        out.append(data[copied:start])
        out.append(text)
        copied = end
    out.append(data[copied:])
    return b"".join(out)


Edits = tuple[tuple[int, int, bytes], ...]


def _transform(source: str, *, module: bool) -> tuple[str, Edits]:
    try:
        data = source.encode("utf-8")
    except UnicodeEncodeError:
        return source, ()  # a lone surrogate: the binding refuses the source itself
    edits = tuple(sorted(_edits(data, module=module), key=lambda e: (e[0], e[1])))
    return (_apply(data, list(edits)).decode("utf-8") if edits else source), edits


_CACHE_BYTES = 32 * 2**20  # sources and guarded sources kept, least recently used dropped first
_cache: OrderedDict[tuple[str, bool], tuple[str, Edits]] = OrderedDict()
_cache_size = 0
_cache_lock = threading.Lock()


def _guarded(source: str, module: bool) -> tuple[str, Edits]:
    global _cache_size
    if "catch" not in source and "finally" not in source:  # QuickJS refuses escaped keywords
        return source, ()
    key = (source, module)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    found = _transform(source, module=module)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = found
            _cache_size += len(source) + len(found[0])
        while _cache_size > _CACHE_BYTES and len(_cache) > 1:
            (old_source, _), (old, _) = _cache.popitem(last=False)
            _cache_size -= len(old_source) + len(old)
    return found


def guard_catches(source: str, *, module: bool = False) -> str:
    """``source`` with every catch clause guarded (see the module docstring).

    Cached by content (the engine evaluates the same few scripts on every
    call; a str keeps its hash, so a hit costs well under a microsecond,
    where parsing costs about 0.2 ms per kilobyte). Raises
    :class:`Unguardable` (not cached) when the source contains ``catch`` or
    ``finally`` and does not parse."""
    return _guarded(source, module)[0]


def source_position(source: str, line: int, column: int, *, module: bool = False) -> tuple[int, int]:
    """Where a position QuickJS reports in the guarded ``source`` (``line`` and
    ``column`` 1-based, the column in UTF-8 bytes, as in its stack traces)
    stands in ``source`` itself: ``(line, column)``, 1-based, the column in
    characters. A position inside inserted text maps to where it was
    inserted. Positions past the end are returned unchanged."""
    guarded, original, edits = _encoded(source, module)
    line_start = 0
    for _ in range(line - 1):
        newline = guarded.find(b"\n", line_start)
        if newline < 0:
            return line, column
        line_start = newline + 1
    if column < 1:
        return line, column
    offset, delta = line_start + column - 1, 0
    for start, end, text in edits:
        at = start + delta  # where this edit's text begins in the guarded source
        if offset < at:
            break
        if offset < at + len(text):
            offset = at  # inside inserted text: its insertion point
            break
        delta += len(text) - (end - start)
    before = original[: max(0, offset - delta)]
    row_start = before.rfind(b"\n") + 1
    return before.count(b"\n") + 1, len(before[row_start:].decode("utf-8", "replace")) + 1


@lru_cache(maxsize=8)
def _encoded(source: str, module: bool) -> tuple[bytes, bytes, Edits]:
    """The guarded and the original source as UTF-8, and the edits between them."""
    try:
        guarded, edits = _guarded(source, module)
    except Unguardable:
        guarded, edits = source, ()
    return guarded.encode("utf-8", "surrogatepass"), source.encode("utf-8", "surrogatepass"), edits
