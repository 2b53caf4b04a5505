"""Shared click options, so every command spells ``--db``, ``--json`` and the
registration flags the same way (the sqlite-utils habit)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from jsflow.host import WorkflowHost

from ._errors import JSON_MODE, CliError
from ._session import Registrations
from ._store import DB_HELP, require_existing, store_url

F = TypeVar("F", bound=Callable[..., Any])


def db_option(fn: F) -> F:
    return click.option("--db", metavar="PATH|URL", default=None, help=DB_HELP)(fn)


def _json_mode(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_MODE] = True
    return value


def _complete_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Shell completion for an ID: the newest matching ids of an existing store."""
    url = store_url(ctx.params.get("db"))
    try:
        require_existing(url)
        with WorkflowHost(url) as host:
            page = host.list_page(search=incomplete or None, limit=200)
    except Exception:  # completion must never print a traceback into the shell
        return []
    ids = [i.workflow_id for i in page.items if i.workflow_id.startswith(incomplete)]
    return [CompletionItem(i, help=None) for i in ids]


def id_argument(fn: F) -> F:
    """The ``ID`` argument, with shell completion from the store."""
    return click.argument("workflow_id", metavar="ID", shell_complete=_complete_ids)(fn)


def json_option(fn: F) -> F:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_json_mode,
        help="Print JSON (for scripts) instead of text; errors too, as a JSON object.",
    )(fn)


def entry_option(fn: F) -> F:
    return click.option(
        "--entry", default="main", show_default=True, help="The function the workflow starts in."
    )(fn)


def script_and_args(fn: F) -> F:
    """``SCRIPT [ARGS]...`` and ``--entry``: how ``run`` and ``dev`` take a workflow."""
    fn = entry_option(fn)
    fn = click.argument("args", nargs=-1, metavar="[ARGS]...")(fn)
    return click.argument("script", metavar="SCRIPT")(fn)


def registration_options(fn: F) -> F:
    """``--suspend``, ``--app`` and ``--fetch-allow``; the command receives ``regs``."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any, suspend: tuple[str, ...], app: str | None, fetch_allow: tuple[str, ...], **kwargs: Any
    ) -> Any:
        regs = Registrations(tuple(dict.fromkeys(suspend)), app, tuple(dict.fromkeys(fetch_allow)))
        return fn(*args, regs=regs, **kwargs)

    for decorate in (
        click.option(
            "--fetch-allow",
            "fetch_allow",
            multiple=True,
            metavar="HOST",
            help="Enable fetch() for these hosts (repeatable; name, *.suffix, IP or CIDR).",
        ),
        click.option(
            "--app",
            metavar="MODULE:ATTR",
            envvar="JSFLOW_APP",
            help="Load a WorkflowEngine or WorkflowHost with your steps, e.g. myapp.flows:host "
            "(or $JSFLOW_APP).",
        ),
        click.option(
            "--suspend",
            multiple=True,
            metavar="NAME",
            help="Declare a JS suspend function resumed by token or `jsflow resume` (repeatable).",
        ),
    ):
        wrapper = decorate(wrapper)
    return wrapper  # type: ignore[return-value]


def read_script(path: str) -> tuple[str, str]:
    """(name, source): the name is the file stem, as ``run`` registers it."""
    p = Path(path)
    if not p.is_file():
        raise CliError(f"script not found: {path}", exit_code=2)
    try:
        source = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read script {path}: {exc}", exit_code=2) from None
    return p.stem, source
