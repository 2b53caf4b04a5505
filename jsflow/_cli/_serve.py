"""``jsflow serve``: the HTTP API (``jsflow.server``) under uvicorn.

Why the host is opened like every other command's (``build_host``): the
server advances instances started by ``jsflow run`` and vice versa, so it
needs the same ``--app``/``--suspend`` registrations, and it re-applies the
suspend names recorded in unfinished instances (``Session.prepare_all``).
With no API key configured it generates one and prints it once: the server
never runs open.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ._errors import CliError
from ._options import db_option, registration_options
from ._session import Registrations, Session, TokenLog, build_host
from ._store import HostSettings, warm_options

#: GIL switch interval for the server process (Python's default is 5 ms): the
#: event loop gives the GIL up on every socket write and queue put, and got it
#: back from a busy engine thread only after the interval
SWITCH_INTERVAL = 0.0005


@click.command()
@click.option("--host", "bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
@db_option
@registration_options
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY[:SCOPES]",
    help="An API key, optionally with scopes admin,read,resume (repeatable; also $JSFLOW_API_KEYS).",
)
@click.option(
    "--public-url", metavar="URL", help="Base of createHook URLs and links. Default: http://HOST:PORT."
)
@click.option(
    "--rate-limit", default="100/minute", show_default=True, help="Per API key and per address on /hooks."
)
@click.option(
    "--hook-max-body",
    default="1MiB",
    show_default=True,
    metavar="SIZE",
    help="Largest body POST /hooks/{token} reads (bytes, or 512KiB, 1MiB); larger is 413.",
)
@click.option(
    "--worker/--no-worker", default=True, show_default=True, help="Run timers and recovery in-process."
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Engine threads (default: CPU count, 2 to 8; raise it for slow steps).",
)
@warm_options
def serve(
    bind: str,
    port: int,
    db: str | None,
    regs: Registrations,
    api_keys: tuple[str, ...],
    public_url: str | None,
    rate_limit: str,
    hook_max_body: str,
    worker: bool,
    threads: int | None,
    settings: HostSettings,
) -> None:
    """Serve the HTTP API: start workflows, send events, resume tokens (/docs has it all).

    Example:

    \b
        jsflow serve --port 8080 --api-key s3cret
        curl -H 'Authorization: Bearer s3cret' localhost:8080/v1/workflows
    """
    import uvicorn

    from jsflow.server import ServerSettings, create_app, generate_key, keys_from_env, parse_api_keys

    host = build_host(db, regs, TokenLog(), settings=settings)
    try:
        Session(host, regs, TokenLog()).prepare_all()
        try:
            keys = parse_api_keys(api_keys) or keys_from_env()
            generated = None if keys else generate_key()
            settings = ServerSettings(
                api_keys=keys or {generated: {"admin"}},
                public_url=public_url or f"http://{_url_host(bind)}:{port}",
                rate_limit=rate_limit,
                hook_max_body=hook_max_body,
                worker=worker,
                **({"threads": threads} if threads else {}),
            )
        except ValueError as exc:
            raise CliError(f"bad option: {_first_error(exc)}", exit_code=2) from None
        app = create_app(host, settings=settings)
        _announce(bind, port, settings.public_url or "", generated)
        sys.setswitchinterval(SWITCH_INTERVAL)
        uvicorn.run(app, host=bind, port=port, log_level="info", server_header=False)
    finally:
        host.close()


def _url_host(bind: str) -> str:
    if bind in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{bind}]" if ":" in bind else bind


def _first_error(exc: ValueError) -> str:
    errors: Any = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first.get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


def _announce(bind: str, port: int, public_url: str, generated: str | None) -> None:
    click.echo(f"jsflow API on http://{_url_host(bind)}:{port}  (docs: {public_url}/docs)", err=True)
    if generated:
        click.echo(f"no API key configured; this run's admin key (shown once): {generated}", err=True)
