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

``({})`` is a fresh object, so the guard is found on ``Object.prototype``
(where the bridge defines it non-writable and non-configurable) and no
script binding can shadow it. Rejection handlers are guarded by the bridge's
``Promise.prototype.then``. Code generated from strings (``eval``,
``Function``) would escape this rewriting, so the bridge refuses it.

The scanner is a small JS lexer: it skips strings, template literals (with
nested ``${}``), comments and regular expression literals, so text inside
them is never touched. Inserted text never contains a newline: line numbers
of errors stay right.
"""

from __future__ import annotations

import re
from functools import lru_cache

GUARD = "({}).__jsr_caught"
_ERR = "__jsr_e"
_IDENT = re.compile(r"[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*")
_NUMBER = re.compile(r"(?:0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)n?")
_SIMPLE_BINDING = re.compile(r"\(\s*([A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*)\s*\)")
_SPACE = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.S)
# After these keywords a '/' starts a regular expression, not a division.
_REGEX_AFTER = frozenset(
    {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else",
     "yield", "await"}
)  # fmt: skip
# After these tokens a '/' is a division: the end of an operand. ")kw" (the
# head of if/while/for/with) and "}" (a block) are followed by a statement;
# "}obj" (an object literal) ends an operand.
_OPERAND_END = frozenset({"str", "regex", "tmpl", "num", ")", "]", "}obj", "++", "--"})
# A '{' after these starts an object literal (an expression); elsewhere a block.
_EXPRESSION_BEFORE = frozenset(
    {"=", "(", "[", ",", "?", "!", "&", "|", "^", "+", "-", "*", "%", "<", ">", "~", "...", "return",
     "typeof", "in", "of", "new", "delete", "void", "throw", "yield", "await", "instanceof"}
)  # fmt: skip
_PUNCTUATORS = ("=>", "?.", "...", "++", "--")
_HEAD_KEYWORDS = frozenset({"if", "while", "for", "with"})


class _Scanner:
    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.out: list[str] = []
        self.copied = 0  # source up to here is in out
        self.prev = ""  # the previous significant token ("" at the start)
        self.braces: list[str] = []  # "{" (a block) | "obj" | "${" | "try"
        self.parens: list[bool] = []  # per open "(": is it the head of if/while/for/with?

    def emit_until(self, end: int, insert: str = "") -> None:
        self.out.append(self.src[self.copied : end])
        self.out.append(insert)
        self.copied = end

    def run(self) -> str:
        src, n = self.src, len(self.src)
        while self.pos < n:
            ch = src[self.pos]
            if ch.isspace():
                self.pos += 1
            elif src.startswith("//", self.pos):
                end = src.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif src.startswith("/*", self.pos):
                end = src.find("*/", self.pos + 2)
                self.pos = n if end < 0 else end + 2
            elif ch in "'\"":
                self.pos = _string_end(src, self.pos, ch)
                self.prev = "str"
            elif ch == "`":
                self.template()
            elif ch == "/" and self.regex_allowed():
                self.pos = _regex_end(src, self.pos)
                self.prev = "regex"
            elif ch == "{":
                kind = "obj" if self.prev in _EXPRESSION_BEFORE else "{"
                self.braces.append("try" if self.prev == "try" else kind)
                self.pos += 1
                self.prev = "{"
            elif ch == "(":
                self.parens.append(self.prev in _HEAD_KEYWORDS)
                self.pos += 1
                self.prev = "("
            elif ch == ")":
                head = self.parens.pop() if self.parens else False
                self.pos += 1
                self.prev = ")kw" if head else ")"
            elif ch == "}":
                self.close_brace()
            else:
                self.token()
        self.emit_until(n)
        return "".join(self.out)

    def regex_allowed(self) -> bool:
        p = self.prev
        if p in _REGEX_AFTER:
            return True
        return not (p in _OPERAND_END or _IDENT.fullmatch(p))

    def token(self) -> None:
        src = self.src
        match = _IDENT.match(src, self.pos)
        if match:
            word = match.group()
            self.pos = match.end()
            if word == "catch" and self.prev == "}try":  # a catch clause follows a try block
                self.prev = word
                self.catch_clause()
                return
            self.prev = word
            return
        match = _NUMBER.match(src, self.pos)
        if match and match.end() > self.pos:
            self.pos = match.end()
            self.prev = "num"
            return
        for punct in _PUNCTUATORS:
            if src.startswith(punct, self.pos):
                self.prev = punct
                self.pos += len(punct)
                return
        self.prev = src[self.pos]
        self.pos += 1

    def template(self) -> None:
        """Scan a template literal from its opening backtick, or from the
        ``}`` that closes one of its substitutions."""
        src, n = self.src, len(self.src)
        i = self.pos + 1
        while i < n:
            c = src[i]
            if c == "\\":
                i += 2
            elif c == "`":
                self.pos = i + 1
                self.prev = "tmpl"
                return
            elif src.startswith("${", i):
                self.braces.append("${")
                self.pos = i + 2
                self.prev = "{"
                return
            else:
                i += 1
        self.pos = n

    def close_brace(self) -> None:
        kind = self.braces.pop() if self.braces else "{"
        if kind == "${":
            self.template()
            return
        self.pos += 1
        self.prev = {"try": "}try", "obj": "}obj"}.get(kind, "}")
        if kind == "try":
            after = _SPACE.match(self.src, self.pos)
            rest = after.end() if after else self.pos
            if self.src.startswith("finally", rest) and not _IDENT.match(self.src, rest + 7):
                handler = f" catch ({_ERR}) {{{GUARD}({_ERR});throw {_ERR};}}"
                self.emit_until(self.pos, handler)

    def catch_clause(self) -> None:
        src = self.src
        after = _SPACE.match(src, self.pos)
        at = after.end() if after else self.pos
        if src.startswith("{", at):  # catch { ... }: no binding
            self.emit_until(self.pos, f" ({_ERR}) ")
            self.emit_until(at + 1, f"{GUARD}({_ERR});")
            self.pos = at + 1
            self.braces.append("{")
            self.prev = "{"
            return
        simple = _SIMPLE_BINDING.match(src, at)
        if simple:
            brace = _SPACE.match(src, simple.end())
            body = brace.end() if brace else simple.end()
            if src.startswith("{", body):
                self.emit_until(body + 1, f"{GUARD}({simple.group(1)});")
                self.pos = body + 1
                self.braces.append("{")
                self.prev = "{"
            return
        if src.startswith("(", at):
            close = _matching_paren(src, at)
            brace = _SPACE.match(src, close + 1) if close > 0 else None
            body = brace.end() if brace else -1
            if close > 0 and src.startswith("{", body):
                pattern = src[at + 1 : close]
                self.emit_until(at, f"({_ERR}) {{{GUARD}({_ERR});let {pattern} = {_ERR};")
                self.copied = body + 1  # drop the original "(pattern) {"
                self.pos = body + 1
                self.braces.append("{")
                self.prev = "{"


def _string_end(src: str, i: int, quote: str) -> int:
    n = len(src)
    i += 1
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
        elif c == quote or c == "\n":
            return i + 1
        else:
            i += 1
    return n


def _regex_end(src: str, i: int) -> int:
    n = len(src)
    i += 1
    in_class = False
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "\n":
            return i
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "/" and not in_class:
            i += 1
            flags = _IDENT.match(src, i)
            return flags.end() if flags else i
        i += 1
    return n


def _matching_paren(src: str, i: int) -> int:
    depth = 0
    for j in range(i, min(len(src), i + 2000)):
        c = src[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


@lru_cache(maxsize=128)
def guard_catches(source: str) -> str:
    """``source`` with every catch clause guarded (see the module docstring).
    Cached: an engine evaluates the same few scripts on every call."""
    if "catch" not in source and "finally" not in source:
        return source
    return _Scanner(source).run()
