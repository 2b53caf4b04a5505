"""Selecting instances: the filter options ``list``, ``batch`` and ``purge`` share.

Why one definition: "every suspended order from last week" should be spelt
the same whether you look at the instances (``list``), act on them
(``batch``) or delete them (``purge``), and ``batch --dry-run`` should show
exactly what ``list`` shows. Paging is the host's (``list_page``: newest
first, keyset cursors); nothing here talks to the store.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from jsflow.host import WAITING_ON, WorkflowHost, WorkflowInstance
from jsflow.host.store import InstanceStatus

from ._store import DURATION

F = TypeVar("F", bound=Callable[..., Any])
STATUSES = [s.value for s in InstanceStatus]
PAGE = 500


class TimePoint(click.ParamType):
    """A moment: ISO date or time (``2026-01-02``, ``2026-01-02T09:00``; UTC unless it
    says otherwise) or a duration ago (``2h``, ``30d``)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                ago: timedelta = DURATION.convert(text, param, ctx)
            except click.BadParameter:
                self.fail(f"{text!r} is neither a date/time (2026-01-02T09:00) nor a duration ago (2h)")
            return datetime.now(UTC) - ago
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


TIME = TimePoint()


@dataclass(frozen=True)
class Filters:
    """What ``--status``, ``--script``, ``--waiting-on``, ``--since``, ``--until``, ``--search`` chose."""

    statuses: tuple[str, ...] = ()
    script: str | None = None
    waiting_on: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None

    def any(self) -> bool:
        return bool(
            self.statuses or self.script or self.waiting_on or self.since or self.until or self.search
        )

    def page(self, host: WorkflowHost, limit: int, cursor: str | None = None) -> Any:
        return host.list_page(
            status=list(self.statuses) or None,
            script=self.script,
            waiting_on=list(self.waiting_on) or None,
            created_after=self.since,
            created_before=self.until,
            search=self.search,
            limit=limit,
            cursor=cursor,
        )

    def each(self, host: WorkflowHost, cursor: str | None = None) -> Iterator[WorkflowInstance]:
        """Every matching instance, newest first, a page at a time."""
        while True:
            page = self.page(host, PAGE, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def only_statuses(self) -> bool:
        """True when the status is the only filter (so per-status counts answer "how many")."""
        return not (self.script or self.waiting_on or self.since or self.until or self.search)

    def argv(self) -> list[str]:
        """These filters as command-line words (for "next page: ..." hints)."""
        words: list[str] = []
        for s in self.statuses:
            words += ["--status", s]
        if self.script:
            words += ["--script", self.script]
        for w in self.waiting_on:
            words += ["--waiting-on", w]
        for flag, moment in (("--since", self.since), ("--until", self.until)):
            if moment is not None:
                words += [flag, moment.isoformat()]
        if self.search:
            words += ["--search", self.search]
        return words


def shell_words(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def filter_options(fn: F) -> F:
    """The filter options; the command receives ``filters``."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        statuses: tuple[str, ...],
        script: str | None,
        waiting_on: tuple[str, ...],
        since: datetime | None,
        until: datetime | None,
        search: str | None,
        **kwargs: Any,
    ) -> Any:
        filters = Filters(tuple(statuses), script, tuple(waiting_on), since, until, search)
        return fn(*args, filters=filters, **kwargs)

    for decorate in (
        click.option("--search", metavar="TEXT", help="Only ids containing TEXT (case-insensitive)."),
        click.option(
            "--until", type=TIME, help="Only instances created before this (ISO date/time, or 2h/30d ago)."
        ),
        click.option(
            "--since",
            type=TIME,
            help="Only instances created at or after this (ISO date/time, or 2h/30d ago).",
        ),
        click.option(
            "--waiting-on",
            multiple=True,
            type=click.Choice(list(WAITING_ON)),
            help=(
                "Only instances waiting on this: timer, event, token, suspend, "
                "or a wait kind such as sleep, retry, hook (repeatable)."
            ),
        ),
        click.option("--script", help="Only instances of this script name."),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(STATUSES),
            help="Only instances with this status (repeatable).",
        ),
    ):
        wrapper = decorate(wrapper)
    return wrapper  # type: ignore[return-value]
