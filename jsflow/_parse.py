"""What a workflow script says, read from a real parse tree (tree-sitter).

``jsflow check`` and the CLI's event warning use it; other engine parts that
need to read a script (wait locations, say) should too, instead of regular
expressions over the text. The tree comes from ``js_runtime.parse_javascript``,
the parser the sandbox's catch guard uses.

Scopes are approximated on the safe side: a name declared anywhere in a
function (``var``, ``let``, ``const``, ``class``, a function declaration, a
parameter, a catch binding) counts as declared in the whole function, and a
name declared at the top level (or imported) in the whole script. So a call
is reported as undefined only when no enclosing function and not the script
declares its name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from tree_sitter import Node, Tree

from js_runtime import parse_javascript

_FUNCTIONS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "function_expression",
        "function",
        "generator_function",
        "arrow_function",
        "method_definition",
    }
)
_SCOPES = _FUNCTIONS | {"program", "class", "class_declaration"}
_EVENT_WAITS = frozenset({"waitForEvent", "waitForEvents"})


@dataclass(frozen=True, eq=False)
class CallSite:
    """A call of a global function: its ``name`` and where, ``line`` and
    ``column`` 1-based (the column counts characters, at the callee's name).

    For code written when ``undefined_calls`` held plain names, a CallSite
    also compares equal to its name (and to a ``(name, line, column)``
    tuple); ``str()`` gives ``NAME at LINE:COLUMN``."""

    name: str
    line: int
    column: int

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CallSite):
            return (self.name, self.line, self.column) == (other.name, other.line, other.column)
        if isinstance(other, str):
            return self.name == other
        if isinstance(other, tuple):
            return (self.name, self.line, self.column) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return f"{self.name} at {self.line}:{self.column}"


@dataclass(frozen=True)
class ScriptEvents:
    """The event names a script can wait for (first arguments of
    ``waitForEvent`` and ``waitForEvents``): ``names`` are string literals,
    ``patterns`` template literals with ``*`` where a substitution stands
    (`` `vote-${who}` `` gives ``vote-*``), and ``"*"`` when some name is
    computed at run time (then any name may be waited for)."""

    names: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    def matches(self, name: str) -> bool:
        """Whether some wait of the script can be for ``name``."""
        return name in self.names or any(_pattern_regex(p).fullmatch(name) for p in self.patterns)

    def all(self) -> list[str]:
        """Names, then patterns, in the order the script gives them."""
        return [*self.names, *self.patterns]


def script_events(source: str) -> ScriptEvents:
    """The event names ``source`` can wait for, read from its parse tree
    without loading it (``WorkflowEngine.check`` reports the same)."""
    return read_script(source).events


@lru_cache(maxsize=256)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.S)


@dataclass
class ScriptFacts:
    """Global calls and event names of one script (see :func:`read_script`)."""

    calls: list[CallSite] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)  # top-level names and imports
    events: ScriptEvents = field(default_factory=ScriptEvents)
    parsed: bool = True


def read_script(source: str) -> ScriptFacts:
    """Every call of a name no enclosing scope declares (a global call), the
    script's top-level names, and its event names. ``parsed`` is False when
    the source does not parse (the facts then cover what did)."""
    data = source.encode("utf-8", "surrogatepass")
    tree = parse_javascript(data)
    scopes = _declarations(tree)
    facts = ScriptFacts(declared=set(scopes.get(tree.root_node.id, ())), parsed=not tree.root_node.has_error)
    names: dict[str, None] = {}
    patterns: dict[str, None] = {}
    lines = data.split(b"\n")
    for call in _walk(tree.root_node):
        if call.type != "call_expression":
            continue
        callee = call.child_by_field_name("function")
        if callee is None or callee.type != "identifier":
            continue
        name = _text(callee)
        if _declared_around(call, name, scopes):
            continue
        row, col = callee.start_point
        column = len(lines[row][:col].decode("utf-8", "replace")) + 1 if row < len(lines) else col + 1
        facts.calls.append(CallSite(name, row + 1, column))
        if name in _EVENT_WAITS:
            _collect_events(call, names, patterns)
    facts.events = ScriptEvents(tuple(names), tuple(patterns))
    return facts


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogatepass")


def _scope_of(node: Node) -> Node | None:
    current = node.parent
    while current is not None and current.type not in _SCOPES:
        current = current.parent
    return current


def _declared_around(node: Node, name: str, scopes: dict[int, set[str]]) -> bool:
    current: Node | None = node
    while current is not None:
        if current.type in _SCOPES and name in scopes.get(current.id, ()):
            return True
        current = current.parent
    return False


def _bindings(pattern: Node | None) -> Iterator[str]:
    """Names bound by a binding pattern (identifier, object or array
    pattern, default, rest)."""
    stack = [pattern] if pattern is not None else []
    while stack:
        node = stack.pop()
        kind = node.type
        if kind in ("identifier", "shorthand_property_identifier_pattern"):
            yield _text(node)
        elif kind in ("object_pattern", "array_pattern", "rest_pattern", "formal_parameters"):
            stack.extend(node.named_children)
        elif kind == "pair_pattern":
            value = node.child_by_field_name("value")
            if value is not None:
                stack.append(value)
        elif kind in ("assignment_pattern", "object_assignment_pattern"):
            left = node.child_by_field_name("left")
            if left is not None:
                stack.append(left)
        elif kind in ("required_parameter", "optional_parameter"):  # TypeScript-like shapes, if any
            stack.extend(node.named_children[:1])


def _declarations(tree: Tree) -> dict[int, set[str]]:
    """``{scope node id: names declared in it}`` (see the module docstring)."""
    scopes: dict[int, set[str]] = {}

    def declare(scope: Node | None, names: Iterator[str]) -> None:
        if scope is not None:
            scopes.setdefault(scope.id, set()).update(names)

    for node in _walk(tree.root_node):
        kind = node.type
        if kind == "variable_declarator":
            declare(_scope_of(node), _bindings(node.child_by_field_name("name")))
        elif kind in ("function_declaration", "generator_function_declaration", "class_declaration"):
            declare(_scope_of(node), _bindings(node.child_by_field_name("name")))
            declare(node, _bindings(node.child_by_field_name("name")))
        elif kind in ("function_expression", "function", "generator_function", "class"):
            declare(node, _bindings(node.child_by_field_name("name")))
        if kind in _FUNCTIONS:
            declare(node, _bindings(node.child_by_field_name("parameters")))
            declare(node, _bindings(node.child_by_field_name("parameter")))
        elif kind == "catch_clause":
            declare(_scope_of(node), _bindings(node.child_by_field_name("parameter")))
        elif kind == "for_in_statement" and node.child_by_field_name("kind") is not None:
            declare(_scope_of(node), _bindings(node.child_by_field_name("left")))
        elif kind in ("import_clause", "namespace_import"):
            declare(tree.root_node, (_text(c) for c in node.named_children if c.type == "identifier"))
        elif kind == "import_specifier":
            alias = node.child_by_field_name("alias") or node.child_by_field_name("name")
            declare(tree.root_node, _bindings(alias))
    return scopes


def _walk(root: Node) -> Iterator[Node]:
    """Every node in source order, without recursion (trees can be deep)."""
    cursor = root.walk()
    while True:
        node = cursor.node
        if node is not None:
            yield node
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return


def _collect_events(call: Node, names: dict[str, None], patterns: dict[str, None]) -> None:
    args = call.child_by_field_name("arguments")
    first = args.named_children[0] if args is not None and args.named_children else None
    if first is None or first.type == "comment":
        return
    items = first.named_children if first.type == "array" else [first]
    for item in items:
        if item.type == "string":
            names[_string_value(item)] = None
        elif item.type == "template_string":
            patterns[_template_pattern(item)] = None
        elif item.type != "comment":
            patterns["*"] = None  # computed at run time: any name


def _string_value(node: Node) -> str:
    """The value of a string literal."""
    return _unescape(_text(node)[1:-1])


def _unescape(raw: str) -> str:
    """JavaScript string escapes decoded (those JSON shares, plus ``\\'``);
    text with others is kept as written."""
    if "\\" not in raw:
        return raw
    try:
        return json.loads('"' + raw.replace('"', '\\"').replace("\\'", "'") + '"')
    except ValueError:
        return raw


def _template_pattern(node: Node) -> str:
    parts: list[str] = []
    for child in node.named_children:
        if child.type == "template_substitution":
            if not parts or parts[-1] != "*":
                parts.append("*")
        elif child.type in ("string_fragment", "escape_sequence"):
            parts.append(_unescape(_text(child)))
    return "".join(parts)
