"""Which store a command opens, and host settings given on the command line.

Why here and not in ``open_store``: the operator types paths, not URLs. So
``--db`` and ``$JSFLOW_DB`` take a plain file path (``./flows.db``,
``/srv/flows.db``) or a store URL; URLs follow SQLAlchemy's convention
(``sqlite:///relative.db`` is relative to the working directory,
``sqlite:////absolute.db`` is absolute). Commands that only read
(``list``, ``show``, ``replay``...) never create a database: a missing file
is an error naming the path it looked at, with the four-slash hint when a
three-slash URL was probably meant to be absolute.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import click

from jsflow import parse_duration, parse_size

from ._errors import CliError

F = TypeVar("F", bound=Callable[..., Any])
DB_ENV = "JSFLOW_DB"
DEFAULT_PATH = ".jsflow/jsflow.db"
DB_HELP = (
    "Store: a file path (flows.db, /srv/flows.db) or a URL: sqlite:///relative.db, "
    "sqlite:////absolute.db (SQLAlchemy's convention: four slashes for an absolute path), "
    f"postgresql://user@host/db. Default: ${DB_ENV}, else {DEFAULT_PATH}."
)


def store_url(db: str | None) -> str:
    """The store URL for ``--db`` (else ``$JSFLOW_DB``, else the default path)."""
    text = db or os.environ.get(DB_ENV) or DEFAULT_PATH
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def sqlite_file(url: str) -> Path | None:
    """The database file a ``sqlite://`` URL names (absolute), or None for other stores."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc:
        return None
    name = unquote(parts.path)[1:]
    if not name or name == ":memory:":
        return None
    path = Path(name)
    return path if path.is_absolute() else Path.cwd() / path


def _slash_hint(url: str, path: Path) -> str:
    """The four-slash hint when ``sqlite:///tmp/x.db`` probably meant ``/tmp/x.db``."""
    rel = unquote(urlsplit(url).path)[1:]
    if not rel or Path(rel).is_absolute() or not Path("/", rel).parent.is_dir():
        return ""
    return (
        f" (three slashes make a path relative to the working directory; for /{rel} write "
        f"sqlite:////{rel}, or pass the plain path)"
    )


def require_existing(url: str) -> None:
    """For read-only commands: refuse, without creating anything, a store that does not exist."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise CliError(f"the store does not exist: no database at {path}{_slash_hint(url, path)}")


def note_if_new(url: str) -> None:
    """Say on stderr when a command is about to create a database where a
    three-slash URL probably meant an absolute path."""
    path = sqlite_file(url)
    hint = _slash_hint(url, path) if path is not None and not path.exists() else ""
    if hint:
        click.echo(f"note: creating a new store at {path}{hint}", err=True)


@dataclass(frozen=True)
class HostSettings:
    """``--lease``, ``--max-suspension``, ``--public-url``, ``--warm-runs`` and
    ``--warm-bytes``; None keeps the host's default."""

    lease: timedelta | None = None
    max_suspension: timedelta | None = None
    public_url: str | None = None
    warm_runs: int | None = None
    warm_bytes: int | None = None

    def host_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.lease is not None:
            kwargs["lease"] = self.lease
        if self.max_suspension is not None:
            kwargs["max_suspension"] = self.max_suspension
        if self.public_url is not None:
            kwargs["hook_base_url"] = self.public_url.rstrip("/") + "/hooks"
        if self.warm_runs is not None:
            kwargs["warm_runs"] = self.warm_runs
        if self.warm_bytes is not None:
            kwargs["warm_bytes"] = self.warm_bytes
        return kwargs


class Duration(click.ParamType):
    """``30s``, ``5m``, ``2h``, ``30d``, ``1h30m``, ISO ``PT1H``; a bare number is seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip()
        try:
            result = timedelta(seconds=float(text)) if _is_number(text) else parse_duration(text)
        except (ValueError, OverflowError) as exc:
            self.fail(f"{text!r} is not a duration like 30s, 5m, 2h or 30d ({exc})", param, ctx)
        if result <= timedelta(0):
            self.fail(f"{text!r} must be longer than zero", param, ctx)
        return result


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


DURATION = Duration()


class Size(click.ParamType):
    """A byte count as ``jsflow.parse_size`` reads it: ``0``, ``1048576``, ``512KiB``, ``64MiB``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return parse_size(value)
        except ValueError:
            self.fail(f"{str(value).strip()!r} is not a size like 0, 1048576, 512KiB or 64MiB", param, ctx)


SIZE = Size()


def warm_options(fn: F) -> F:
    """``--warm-runs`` and ``--warm-bytes`` for the commands that keep running
    (``worker``, ``serve``): the bounds of the host's warm-run cache, added to
    the command's ``settings``. Put it below ``host_options``."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        warm_runs: int | None,
        warm_bytes: int | None,
        settings: HostSettings | None = None,
        **kwargs: Any,
    ) -> Any:
        settings = replace(settings or HostSettings(), warm_runs=warm_runs, warm_bytes=warm_bytes)
        return fn(*args, settings=settings, **kwargs)

    for decorate in (
        click.option(
            "--warm-bytes",
            type=SIZE,
            metavar="SIZE",
            envvar="JSFLOW_WARM_BYTES",
            help="Memory the suspended runs kept live may take (QuickJS's count plus 192 KB a run), "
            "e.g. 256MiB; 0 turns the cache off (or $JSFLOW_WARM_BYTES; default 12MiB).",
        ),
        click.option(
            "--warm-runs",
            type=click.IntRange(0),
            envvar="JSFLOW_WARM_RUNS",
            help="How many suspended runs to keep live, so their next event needs no replay; 0 turns "
            "the cache off (or $JSFLOW_WARM_RUNS; default 64).",
        ),
    ):
        wrapper = decorate(wrapper)
    return wrapper  # type: ignore[return-value]


def host_options(fn: F) -> F:
    """``--lease``, ``--max-suspension``, ``--public-url``; the command receives ``settings``."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        lease: timedelta | None,
        max_suspension: timedelta | None,
        public_url: str | None,
        **kwargs: Any,
    ) -> Any:
        return fn(*args, settings=HostSettings(lease, max_suspension, public_url), **kwargs)

    for decorate in (
        click.option(
            "--public-url",
            metavar="URL",
            envvar="JSFLOW_PUBLIC_URL",
            help="Where the server is reachable; createHook URLs become URL/hooks/TOKEN "
            "(or $JSFLOW_PUBLIC_URL; default http://127.0.0.1:8080).",
        ),
        click.option(
            "--max-suspension",
            type=DURATION,
            envvar="JSFLOW_MAX_SUSPENSION",
            help="Longest life of a resume token, e.g. 60d (or $JSFLOW_MAX_SUSPENSION; default 60d).",
        ),
        click.option(
            "--lease",
            type=DURATION,
            envvar="JSFLOW_LEASE",
            help="How long a run may be silent before it counts as dead and is recovered, e.g. 5m "
            "(or $JSFLOW_LEASE; default 5m).",
        ),
    ):
        wrapper = decorate(wrapper)
    return wrapper  # type: ignore[return-value]
