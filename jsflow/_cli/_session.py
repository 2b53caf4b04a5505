"""Opening a ``WorkflowHost`` for one CLI command, with the right registrations.

Why this module exists: registrations (steps, suspend functions, fetch) live
in Python objects, not in the store, yet a workflow started by ``jsflow run``
is advanced later by other processes (``jsflow event``, ``jsflow worker``).
If such a process lacked a suspend function the script uses, the replay
would hit a ``ReferenceError`` and fault the instance for good. So ``run``
records what it was given in the instance's metadata (``cli.suspend``,
``cli.fetch_allow``, ``cli.app``) and every later command re-applies the
declarative parts (suspend names, fetch hosts) by itself; the ``--app``
module is code, so it is never imported implicitly: a command that would
advance such an instance without ``--app`` stops with a clear error instead.

Tokens: a suspend function declared with ``--suspend`` (or registered by an
``--app`` host) issues a resume token that exists in clear only in the
process that suspended; the call that suspended returns it
(``WorkflowInstance.tokens``) and ``TokenLog``, a host token listener, keeps
those issued by calls that return no instance (a worker's timer fires), so
the command can print it. Tokens of JS ``createHook`` are derived from the host secret and
can be shown at any time.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from jsflow import WorkflowEngine
from jsflow.host import TokenInfo, WaitInfo, WorkflowHost, WorkflowInstance

from ._errors import CliError
from ._progress import progress
from ._store import HostSettings, note_if_new, require_existing, store_url
from ._text import safe

META_SUSPEND = "cli.suspend"
META_FETCH = "cli.fetch_allow"
META_APP = "cli.app"
UNFINISHED = ["running", "suspended"]


@dataclass(frozen=True)
class Registrations:
    """What the command line adds to the engine: ``--suspend``, ``--app``, ``--fetch-allow``."""

    suspends: tuple[str, ...] = ()
    app: str | None = None
    fetch_allow: tuple[str, ...] = ()

    def merged(self, metadata: dict[str, str]) -> dict[str, str]:
        """What to record on an existing instance (``retry``): its declarations plus these."""
        meta: dict[str, str] = {}
        for key, mine in ((META_SUSPEND, self.suspends), (META_FETCH, self.fetch_allow)):
            names = declared(metadata, key)
            names += [n for n in mine if n not in names]
            if names:
                meta[key] = ",".join(names)
        if self.app:
            meta[META_APP] = self.app
        return meta

    def metadata(self) -> dict[str, str]:
        """The instance metadata that lets later commands re-apply these."""
        meta: dict[str, str] = {}
        if self.suspends:
            meta[META_SUSPEND] = ",".join(self.suspends)
        if self.fetch_allow:
            meta[META_FETCH] = ",".join(self.fetch_allow)
        if self.app:
            meta[META_APP] = self.app
        return meta


def declared(metadata: dict[str, str], key: str) -> list[str]:
    """A comma-separated list stored in instance metadata by ``run``."""
    return [part for part in metadata.get(key, "").split(",") if part]


@dataclass(frozen=True)
class IssuedToken:
    """A resume token seen in clear by this process (``before_suspend``) or derived (createHook)."""

    function_name: str
    token: str
    expires_at: datetime | None
    arguments: list[Any] = field(default_factory=list)
    url: str | None = None
    wait_id: int | None = None


class TokenLog:
    """Collects the tokens the host issues while a command runs (a token
    listener: ``WorkflowHost.add_token_listener``), for calls that return no
    instance, such as a worker's timer fires."""

    def __init__(self) -> None:
        self.issued: list[IssuedToken] = []

    def listen(self, info: TokenInfo) -> None:
        self.issued.append(
            IssuedToken(info.function_name, info.token, info.expires_at, url=info.url, wait_id=info.wait_id)
        )

    def for_instance(self, host: WorkflowHost, inst: WorkflowInstance) -> list[IssuedToken]:
        """Tokens of ``inst``'s pending waits: those the call that returned ``inst``
        issued (``inst.tokens``), else createHook ones derived again, else ones
        caught by ``before_suspend`` in this process (a worker's timer fires)."""
        issued = {t.wait_id: t for t in inst.tokens}
        out: list[IssuedToken] = []
        caught = list(self.issued)
        for wait in inst.waits:
            tok = issued.get(wait.wait_id)
            if tok is not None:
                out.append(
                    IssuedToken(
                        tok.function_name, tok.token, tok.expires_at, url=tok.url, wait_id=tok.wait_id
                    )
                )
            elif wait.kind == "hook" and wait.arguments:
                out.append(hook_token(host, inst.workflow_id, wait))
            else:
                out += _caught(caught, wait)
        return out


def _caught(caught: list[IssuedToken], wait: WaitInfo) -> list[IssuedToken]:
    for tok in caught:
        if wait.has_token and tok.wait_id == wait.wait_id:
            caught.remove(tok)
            return [tok]
    return []


def hook_token(host: WorkflowHost, workflow_id: str, wait: WaitInfo) -> IssuedToken:
    """The token of a JS ``createHook`` wait: derived again from the host secret (``_hooks``)."""
    token = host.hook_token(workflow_id, wait) or ""
    return IssuedToken(
        "createHook",
        token,
        wait.token_expires_at or wait.resume_at,
        url=host.hook_url(workflow_id, wait),
        wait_id=wait.wait_id,
    )


def load_app(spec: str) -> WorkflowEngine | WorkflowHost:
    """Import ``module:attr`` (like uvicorn and celery) from the working directory.

    ``attr`` may be dotted, and may be a zero-argument factory returning an
    engine or a host.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"--app {spec!r} must look like module:attribute (e.g. myapp.flows:host)", 2)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"--app {spec!r}: cannot import {module_name!r}: {exc}", 2) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"--app {spec!r}: module {module_name!r} has no attribute {attr!r}", 2) from None
    if callable(obj) and not isinstance(obj, (WorkflowEngine, WorkflowHost)) and not isinstance(obj, type):
        try:
            obj = obj()  # a factory
        except Exception as exc:
            raise CliError(f"--app {spec!r}: calling {attr}() failed: {exc}", 2) from None
    if not isinstance(obj, (WorkflowEngine, WorkflowHost)):
        raise CliError(
            f"--app {spec!r} is a {type(obj).__name__}; expected a WorkflowEngine or WorkflowHost", 2
        )
    return obj


def _is_registered(host: WorkflowHost, name: str) -> bool:
    """Whether the host (its engine or its own token functions) already knows ``name``."""
    return name in host.capabilities()


class Session:
    """A host plus what this command registered on it; use ``open_session``."""

    def __init__(self, host: WorkflowHost, regs: Registrations, tokens: TokenLog) -> None:
        self.host = host
        self.regs = regs
        self.tokens = tokens
        self._declared: set[str] = set()
        self._fetch_hosts: set[str] = set()
        self.declare(regs.suspends, regs.fetch_allow)

    def declare(self, suspends: Iterable[str], fetch_allow: Iterable[str] = ()) -> None:
        """Register ``--suspend`` names as token suspend functions, and widen fetch."""
        for name in suspends:
            if name in self._declared or _is_registered(self.host, name):
                continue
            self.host.register_suspend_function(name)
            self._declared.add(name)
        hosts = set(fetch_allow) - self._fetch_hosts
        if hosts:
            self._fetch_hosts |= hosts
            self.host.engine.enable_fetch(allow_hosts=sorted(self._fetch_hosts))

    def prepare(self, inst: WorkflowInstance) -> None:
        """Before advancing ``inst``: re-apply what ``run`` recorded, and refuse a missing app."""
        app = inst.metadata.get(META_APP)
        if app and not self.regs.app:
            raise CliError(
                f"workflow {inst.workflow_id!r} was started with --app {app}; pass the same "
                f"--app (or set JSFLOW_APP) so its steps exist when it runs"
            )
        self.declare(declared(inst.metadata, META_SUSPEND), declared(inst.metadata, META_FETCH))

    def prepare_all(self) -> list[str]:
        """For store-wide commands (worker, replay): apply every unfinished instance's
        declarations. Returns the ids that need an ``--app`` this command lacks."""
        missing_app: list[str] = []
        offset = 0
        while True:
            page = self.host.list(status=UNFINISHED, limit=500, offset=offset)
            for inst in page:
                app = inst.metadata.get(META_APP)
                if app and app != self.regs.app:
                    missing_app.append(inst.workflow_id)
                self.declare(declared(inst.metadata, META_SUSPEND), declared(inst.metadata, META_FETCH))
            if len(page) < 500:
                return missing_app
            offset += 500

    def tokens_for(self, inst: WorkflowInstance) -> list[IssuedToken]:
        return self.tokens.for_instance(self.host, inst)

    def advancing(self, workflow_id: str | None) -> AbstractContextManager[None]:
        """Progress on a terminal while a call replays ``workflow_id``'s journal."""

        def label() -> str:
            if workflow_id is None:
                return "working"
            entries = sum(1 for h in self.host.history(workflow_id) if h.source == "journal")
            return f"workflow {workflow_id}: replaying {entries} journal entries"

        return progress(label)


def _console(level: str, message: str) -> None:
    """Script console output goes to stderr, so ``--json`` on stdout stays parseable;
    one line per line of the message, control characters escaped."""
    for line in message.split("\n"):
        click.echo(click.style(f"console.{level}: ", dim=True) + safe(line), err=True)


def _quiet_console_logger() -> None:
    """The engine also logs console lines to ``jsflow.console``; with no logging
    configured Python's last-resort handler would print warn/error a second time."""
    logger = logging.getLogger("jsflow.console")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def build_host(
    db: str | None,
    regs: Registrations,
    tokens: TokenLog,
    *,
    clock: Callable[[], datetime] | None = None,
    store: Any = None,
    on_console: Callable[[str, str], None] | None = _console,
    settings: HostSettings | None = None,
) -> WorkflowHost:
    """A host on ``db`` (or ``store``) using the ``--app`` engine/host registrations if given.

    An ``--app`` host lends its engine and token hooks, never its store: the
    store is always the one ``--db`` (or the default) names, so every command
    sees the same instances whether or not it loads the app.
    """
    app = load_app(regs.app) if regs.app else None
    target = store if store is not None else store_url(db)
    kwargs = (settings or HostSettings()).host_kwargs()
    if isinstance(app, WorkflowHost):  # --app brings the code, --db decides the store
        host = WorkflowHost(target, engine=app.engine, clock=clock, **kwargs)
        host.adopt_registrations(app)
        engine = host.engine
    else:
        engine = app if isinstance(app, WorkflowEngine) else WorkflowEngine(clock=clock)
        if clock is not None:
            engine.clock = clock
        host = WorkflowHost(target, engine=engine, clock=clock, **kwargs)
    if on_console is not None and engine.on_console is None:
        engine.on_console = on_console
        _quiet_console_logger()
    host.add_token_listener(tokens.listen)
    return host


@contextmanager
def open_session(
    db: str | None, regs: Registrations, settings: HostSettings | None = None
) -> Iterator[Session]:
    """The host for one command that may write; closed when the command ends.
    Creates the store if needed (and says so on stderr)."""
    note_if_new(store_url(db))
    tokens = TokenLog()
    host = build_host(db, regs, tokens, settings=settings)
    try:
        yield Session(host, regs, tokens)
    finally:
        host.close()


@contextmanager
def open_existing(
    db: str | None, regs: Registrations | None = None, settings: HostSettings | None = None
) -> Iterator[Session]:
    """The host for a command about instances that must already exist (``show``,
    ``event``, ``cancel``...): refuses a store that does not exist instead of
    creating an empty one."""
    require_existing(store_url(db))
    with open_session(db, regs or Registrations(), settings) as sess:
        yield sess
