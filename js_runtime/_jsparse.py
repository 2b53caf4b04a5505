"""JavaScript parse trees from tree-sitter's JavaScript grammar.

Why a real parser: a home-made lexer misreads the corners of the language
(line terminators U+2028/U+2029 and ``\\r``, Unicode spaces, HTML-like
comments, a regular expression after ``}`` or a keyword used as a property),
and the catch guard (_catchguard.py) and ``jsflow check`` must see exactly
the statements QuickJS will run. tree-sitter is a well-kept incremental
parser in C; its grammar is pinned in pyproject.toml.

A ``Parser`` is not shared between threads: each thread gets its own.
"""

from __future__ import annotations

import threading

import tree_sitter
import tree_sitter_javascript

LANGUAGE = tree_sitter.Language(tree_sitter_javascript.language())
_local = threading.local()


def parse_javascript(source: str | bytes) -> tree_sitter.Tree:
    """Parse ``source`` (a script or a module) into a tree-sitter tree.

    Positions in the tree are UTF-8 byte offsets and (row, byte column)
    points, both 0-based. Syntax errors do not raise: the tree then has
    ``ERROR`` or missing nodes (``tree.root_node.has_error``)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = tree_sitter.Parser(LANGUAGE)
    data = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
    return parser.parse(data)


def query(pattern: str) -> tree_sitter.Query:
    """A compiled tree-sitter query over the JavaScript grammar."""
    return tree_sitter.Query(LANGUAGE, pattern)
