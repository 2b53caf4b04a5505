"""MkDocs hooks: pages generated from the code at build time, so they cannot drift.

Why a hook rather than a committed file: the HTTP reference is rendered from the
OpenAPI schema of the very app ``jsflow serve`` runs (``create_app`` over an
in-memory host), on every ``make docs``; a changed route, status code or field
shows up in the site without anyone editing Markdown. ``docs/reference/http.md``
holds the prose; the line ``<!-- http-reference -->`` is replaced by the tables.
The CLI page needs no hook: the ``mkdocs-click`` extension renders the click group.

``render_http_reference(schema)`` is importable (tests/test_docs.py uses it).
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- http-reference -->"
METHODS = ("get", "post", "put", "patch", "delete")


ERRORS_MARKER = "<!-- http-error-types -->"
#: error types the server raises itself (auth, limits, request shape), beside the host's
SERVER_ERRORS = {
    400: ["BadRequestError"],
    401: ["AuthenticationError"],
    403: ["PermissionDeniedError"],
    404: ["NotFoundError"],
    413: ["PayloadTooLargeError"],
    422: ["ValidationError"],
    429: ["RateLimitedError"],
}


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Fill the HTTP reference page; every other page passes through unchanged."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, render_http_reference(app_schema()))
    if ERRORS_MARKER in markdown:
        markdown = markdown.replace(ERRORS_MARKER, render_error_types())
    return markdown


def render_error_types() -> str:
    """Status -> the ``error.type`` values it carries: the host's exceptions through
    ``jsflow.server.ERROR_STATUS`` (a subclass answers like its nearest listed base), and the
    server's own refusals."""
    from jsflow.server import ERROR_STATUS

    by_status: dict[int, list[str]] = {status: list(names) for status, names in SERVER_ERRORS.items()}
    for cls, status in ERROR_STATUS.items():
        by_status.setdefault(status, []).append(cls.__name__)
    rows = ["| status | `error.type` |", "| --- | --- |"]
    for status in sorted(by_status):
        names = ", ".join(f"`{n}`" for n in dict.fromkeys(by_status[status]))
        rows.append(f"| {status} | {names} |")
    return "\n".join(rows) + "\n"


def app_schema() -> dict[str, Any]:
    """The OpenAPI schema of the app ``jsflow serve`` runs (no worker, an in-memory store)."""
    from jsflow.host import WorkflowHost
    from jsflow.server import create_app

    with WorkflowHost("memory://") as host:
        return create_app(host, api_keys=["docs-build-key"], worker=False).openapi()


def render_http_reference(schema: dict[str, Any]) -> str:
    """Markdown for every operation (parameters, body, every status code with its body)
    and every schema it refers to."""
    parts = [
        _operation(path, method, op) for path, ops in schema["paths"].items() for method, op in _ops(ops)
    ]
    schemas = schema.get("components", {}).get("schemas", {})
    parts.append("## Schemas\n")
    parts.extend(_schema(name, body) for name, body in sorted(schemas.items()))
    return "\n".join(parts)


def _ops(ops: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(m, ops[m]) for m in METHODS if m in ops]


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`\n", f"{op.get('summary', '')}\n"]
    if op.get("description"):
        lines.append(f"{op['description'].strip()}\n")
    lines.append(_auth(op))
    params = op.get("parameters", [])
    if params:
        lines.append("| parameter | in | type | required | description |\n| --- | --- | --- | --- | --- |")
        lines.extend(
            f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | {_yes(p.get('required'))} "
            f"| {_cell(p.get('description', ''))} |"
            for p in params
        )
        lines.append("")
    body = op.get("requestBody")
    if body:
        lines.append(_request_body(body))
    lines.append("| status | meaning | body |\n| --- | --- | --- |")
    for status, resp in sorted(op.get("responses", {}).items()):
        lines.append(f"| {status} | {_cell(resp.get('description', ''))} | {_response_body(resp)} |")
    lines.append("")
    return "\n".join(lines)


def _auth(op: dict[str, Any]) -> str:
    if op.get("security"):
        return "Needs `Authorization: Bearer KEY`.\n"
    return "No API key.\n"


def _request_body(body: dict[str, Any]) -> str:
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    required = "required" if body.get("required") else "optional"
    text = [f"Request body ({required}, JSON): {_type(schema)}. {_cell(body.get('description', ''))}\n"]
    if "properties" in schema:  # an inline schema: list its fields here
        text.append(_fields(schema))
    return "\n".join(text)


def _response_body(resp: dict[str, Any]) -> str:
    content = resp.get("content", {})
    if not content:
        return "none"
    media, spec = next(iter(content.items()))
    schema = spec.get("schema", {})
    if media != "application/json":
        return f"`{media}`"
    return _type(schema) if schema else "JSON"


def _schema(name: str, schema: dict[str, Any]) -> str:
    text = [f"### {name} {{#{_anchor(name)}}}\n"]
    if schema.get("description"):
        text.append(f"{_cell(schema['description'])}\n")
    if "properties" in schema:
        text.append(_fields(schema))
    else:
        text.append(f"{_type(schema)}\n")
    if schema.get("additionalProperties") is True:
        text.append("More fields may be present.\n")
    return "\n".join(text)


def _fields(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for field, spec in schema.get("properties", {}).items():
        about = _cell(spec.get("description", ""))
        rows.append(f"| `{field}` | {_type(spec)} | {_yes(field in required)} | {about} |")
    return "\n".join(rows) + "\n"


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " or ".join(_type(s) for s in schema[combinator])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind is None:
        return "any JSON"
    if kind == "object" and "properties" in schema:  # an inline object: name its fields
        required = set(schema.get("required", ()))
        fields = ", ".join(f"`{f}`" if f in required else f"`{f}`?" for f in schema["properties"])
        return f"object {{{fields}}}"
    return f"{kind}{_bounds(schema)}"


def _bounds(schema: dict[str, Any]) -> str:
    notes = [
        f"{label} {schema[key]}"
        for key, label in (
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minimum", "min"),
            ("maximum", "max"),
            ("format", "format"),
        )
        if key in schema
    ]
    if "enum" in schema:
        notes.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    return f" ({'; '.join(notes)})" if notes else ""


def _anchor(name: str) -> str:
    return "schema-" + name.lower()


def _yes(flag: Any) -> str:
    return "yes" if flag else "no"


def _cell(text: str) -> str:
    return " ".join(str(text).replace("|", "\\|").split())
