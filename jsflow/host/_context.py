"""The host's parts in one object, at the bottom of ``jsflow/host``.

Why a context and not ``WorkflowHost`` itself: the operation modules (load,
driver, inbox, deliveries, operations) need the store, the engine, the clock
and a few caches, never the public facade. Handing them this plain object
keeps the imports one way (load -> driver -> inbox -> deliveries ->
operations -> facade) and lets ``WorkflowHost`` stay a thin facade that no
module of the host imports (httpx's ``Client`` over its transports is the
model).

What it holds: the store (and whether the host opened it), the engine, the
clock, the lease, the worker id, the host's own registrations (token suspend
functions and ``createHook``, handed to every run as extensions: a host
never changes an engine that others may share), the warm runs, the script
and requirements caches and the token listeners.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from jsflow import Extension, WorkflowEngine

from ._hooks import HookRegistry
from ._views import TokenInfo, WorkflowInstance
from ._warm import WarmRuns
from .store import Store

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
SCRIPT_CACHE_SIZE = 256
REQUIREMENTS_CACHE_SIZE = 256


def default_worker_id() -> str:
    """host:pid:random, so claims name the process that holds them."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class HostContext:
    """The parts every host operation works with (built by ``WorkflowHost``)."""

    def __init__(
        self,
        store: Store,
        engine: WorkflowEngine,
        *,
        owns_store: bool,
        clock: Callable[[], datetime],
        max_suspension: timedelta,
        hook_base_url: str,
        lease: timedelta,
        hook_secret: bytes | str | None,
        worker_id: str | None,
        warm_runs: int,
        warm_bytes: int,
    ) -> None:
        self.store = store
        self.owns_store = owns_store
        self.engine = engine
        self.clock = clock
        self.max_suspension = max_suspension
        self.hook_base_url = hook_base_url.rstrip("/")
        self.lease = lease
        self.worker_id = worker_id or default_worker_id()
        self.hooks = HookRegistry(
            clock=clock,
            max_suspension=max_suspension,
            base_url=self.hook_base_url,
            secret=hook_secret,
            store=store,
        )
        #: (script name, hash) -> source; versions are content-addressed, never changed
        self.script_cache: dict[tuple[str, str], str] = {}
        self._requirements: dict[tuple[str, frozenset[str]], list[str]] = {}
        #: called with a ``TokenInfo`` for every token any call of this host issues
        self.token_listeners: list[Callable[[TokenInfo], Any]] = []
        #: suspended runs kept live so the next delivery needs no replay (see ``_warm``)
        self.warm = WarmRuns(self.fingerprint, warm_runs, warm_bytes)
        #: built-ins beyond the hooks' (startWorkflow), added by the facade
        self.extra_extensions: list[Extension] = []
        #: called with the view after every driver turn that did not continue as new
        self.turn_listeners: list[Callable[[WorkflowInstance], Awaitable[None]]] = []

    # -- what this process can run ---------------------------------------------------
    @property
    def extensions(self) -> list[Extension]:
        """The host's own built-ins, handed to every run it opens: createHook, its
        token suspend functions, startWorkflow."""
        return [*self.hooks.extensions(), *self.extra_extensions]

    def capabilities(self) -> frozenset[str]:
        """The step and suspend names this process can run (the engine's and the
        host's token suspend functions)."""
        engine = self.engine
        return frozenset(engine.step_names) | frozenset(engine.suspend_names) | frozenset(self.hooks.specs)

    def fingerprint(self) -> tuple[Any, ...]:
        """What a warm run was built from besides the instance: the engine, its
        registrations and limits, and the host's own registrations."""
        engine = self.engine
        return (
            id(engine),
            tuple(engine.step_names),
            tuple(engine.suspend_names),
            engine.limits,
            self.hooks.generation,
        )

    def requirements(self, script_hash: str, source: str) -> list[str]:
        """The registered names a script version mentions (cached per version and
        registrations): what a process needs to run it.

        Mentioned, not called: a name that appears anywhere in the source counts,
        which errs on the side of leaving an instance to a process that has it."""
        caps = self.capabilities()
        key = (script_hash, caps)
        found = self._requirements.get(key)
        if found is None:
            if len(self._requirements) >= REQUIREMENTS_CACHE_SIZE:
                self._requirements.clear()
            found = self._requirements[key] = sorted(set(_IDENTIFIER.findall(source)) & caps)
        return found

    def requirements_keeping(self, script_hash: str, source: str, previous: list[str]) -> list[str]:
        """The requirements to record when an instance moves to ``source`` (retry,
        upgrade, fork): this process's, plus the ones recorded before that the
        source still mentions (a process that lacks a name still knows it is needed)."""
        kept = set(previous) & set(_IDENTIFIER.findall(source))
        return sorted(kept | set(self.requirements(script_hash, source)))

    def remember_script(self, name: str, script_hash: str, source: str) -> None:
        if len(self.script_cache) >= SCRIPT_CACHE_SIZE:
            self.script_cache.clear()
        self.script_cache[(name, script_hash)] = source
