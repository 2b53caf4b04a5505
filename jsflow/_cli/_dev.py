"""``jsflow dev``: run a script locally with virtual time, asking for input when it waits.

Why a real host on a memory store (and not the bare engine): the author
should see exactly what production does (createHook, token suspend
functions, buffered events, the same timeline), only faster. Time is a
``VirtualClock`` that jumps straight to the next due timer, so
``sleep('3d')`` takes no time, and nothing is written to disk.

Order of play when the workflow is suspended: a queued ``--event`` whose
name is awaited, then a queued ``--resume`` for a suspend/token/hook wait,
then (interactive) a prompt, then the earliest timer. So an event with a
timeout gets the event when one is given and times out otherwise.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from jsflow.host import WaitInfo, WorkflowInstance
from jsflow.host.store import MemoryStore

from . import _render as out
from ._errors import CliError
from ._options import json_option, read_script, registration_options, script_and_args
from ._session import Registrations, Session, TokenLog, build_host
from ._text import safe
from ._values import parse_named, parse_value

EXTERNAL = ("event", "token", "hook", "suspend")
DEV_ID = "dev"


class VirtualClock:
    """The dev loop's time: starts at ``start`` and jumps when a timer is skipped to.

    Each reading also moves it on by a millisecond, as real time would, so the
    timeline keeps things in the order they happened instead of piling them
    onto one instant.
    """

    TICK = timedelta(milliseconds=1)

    def __init__(self, start: datetime) -> None:
        self.start = self.now = start

    def __call__(self) -> datetime:
        self.now += self.TICK
        return self.now

    def offset(self) -> str:
        return "+" + out.span((self.now - self.start).total_seconds()) if self.now > self.start else "+0"


class DevLoop:
    """Drives one instance to the end (or to input nobody gave)."""

    def __init__(
        self,
        sess: Session,
        clock: VirtualClock,
        events: deque[tuple[str, Any]],
        resumes: deque[Any],
        interactive: bool,
        as_json: bool,
    ) -> None:
        self.sess, self.host, self.clock = sess, sess.host, clock
        self.events, self.resumes = events, resumes
        self.interactive, self.as_json = interactive, as_json

    def say(self, text: str) -> None:
        click.echo(click.style(f"[{self.clock.offset():>7}] ", dim=True) + text, err=self.as_json)

    def step(self, inst: WorkflowInstance) -> WorkflowInstance | None:
        """Advance once; None when there is nothing left to do but wait."""
        for action in (self._queued_event, self._queued_resume, self._prompt, self._next_timer):
            nxt = action(inst)
            if nxt is not None:
                return nxt
        return None

    # -- the four ways forward ----------------------------------------------------------------
    def _queued_event(self, inst: WorkflowInstance) -> WorkflowInstance | None:
        awaited = {n for w in inst.waits if w.kind == "event" for n in (w.event_names or ())}
        for item in list(self.events):
            if item[0] in awaited:
                self.events.remove(item)
                return self._send(inst, *item)
        return None

    def _queued_resume(self, inst: WorkflowInstance) -> WorkflowInstance | None:
        waits = [w for w in inst.waits if w.kind in ("token", "hook", "suspend")]
        if not waits or not self.resumes:
            return None
        return self._resume(inst, waits[0], self.resumes.popleft())

    def _next_timer(self, inst: WorkflowInstance) -> WorkflowInstance | None:
        timed = [w for w in inst.waits if w.resume_at is not None]
        if not timed:
            return None
        due = min(w.resume_at for w in timed if w.resume_at is not None)
        what = ", ".join(f"{safe(w.function_name)} (wait {w.wait_id})" for w in timed if w.resume_at == due)
        if due > self.clock.now:
            self.clock.now = due
        self.host.run_due(now=self.clock.now)
        self.say(f"skipped to {out.when(due)}: {what} due")
        return self.host.get(inst.workflow_id)

    def _prompt(self, inst: WorkflowInstance) -> WorkflowInstance | None:
        external = [w for w in inst.waits if w.kind in EXTERNAL]
        if not self.interactive or not external:
            return None
        timers = [w.resume_at for w in inst.waits if w.resume_at is not None]
        click.echo("waiting for:", err=self.as_json)
        for w in external:
            due = f"  (times out {out.when(w.resume_at, self.clock.now)})" if w.resume_at else ""
            click.echo(f"  [{w.wait_id}] {out.waiting_on(w)}{due}", err=self.as_json)
        choices = [str(w.wait_id) for w in external] + (["t"] if timers else []) + ["q"]
        hint = "t = skip to the next timer, q = quit" if timers else "q = quit"
        choice = click.prompt(
            f"which wait ({hint})", default=choices[0], type=click.Choice(choices), err=self.as_json
        )
        if choice == "t":
            return self._next_timer(inst)
        if choice == "q":
            raise click.exceptions.Exit(0)
        wait = next(w for w in external if str(w.wait_id) == choice)
        if wait.kind == "event" and wait.event_names:
            names = list(wait.event_names)
            name = (
                names[0]
                if len(names) == 1
                else click.prompt("event name", default=names[0], type=click.Choice(names), err=self.as_json)
            )
            return self._send(inst, name, self._ask_json(f"payload for event {name!r}"))
        return self._resume(inst, wait, self._ask_json(f"value for {out.waiting_on(wait)}"))

    def _ask_json(self, what: str) -> Any:
        while True:
            text = click.prompt(
                f"{what} (JSON, empty = null)", default="", show_default=False, err=self.as_json
            )
            if not text.strip():
                return None
            try:
                return parse_value(text, what)
            except CliError as exc:
                click.echo(f"  {exc.format_message()}", err=True)

    # -- deliveries ----------------------------------------------------------------------------
    def _send(self, inst: WorkflowInstance, name: str, payload: Any) -> WorkflowInstance:
        receipt = self.host.send_event(inst.workflow_id, name, payload)
        self.say(f"event {safe(repr(name))} {out.compact(payload)} -> wait {receipt.wait_id}")
        return self.host.get(inst.workflow_id)

    def _resume(self, inst: WorkflowInstance, wait: WaitInfo, value: Any) -> WorkflowInstance:
        token = next((t.token for t in self.sess.tokens_for(inst) if t.wait_id == wait.wait_id), None)
        if token is not None:
            self.say(f"resume token of {out.waiting_on(wait)} <- {out.compact(value)}")
            return self.host.resume_with_token(token, value)
        self.say(f"resume {out.waiting_on(wait)} <- {out.compact(value)}")
        return self.host.resume(inst.workflow_id, value, wait.wait_id)


@click.command()
@script_and_args
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="NAME=JSON",
    help="An event to send when the workflow waits for NAME (repeatable, in order).",
)
@click.option(
    "--resume",
    "resumes",
    multiple=True,
    metavar="JSON",
    help="A value for the next suspend/hook/token wait (repeatable, in order).",
)
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="Prompt for payloads when the workflow waits (default: when stdin is a terminal).",
)
@click.option(
    "--max-steps",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Give up after this many deliveries (endless loops).",
)
@registration_options
@json_option
def dev(
    script: str,
    args: tuple[str, ...],
    entry: str,
    events: tuple[str, ...],
    resumes: tuple[str, ...],
    interactive: bool | None,
    max_steps: int,
    regs: Registrations,
    as_json: bool,
) -> None:
    """Run SCRIPT locally, in memory, with virtual time: timers fire at once,
    and when the workflow waits for an event or a resume you type the JSON.

    Non-interactive: give the inputs up front with --event and --resume. The
    run ends with the result and the timeline; nothing is stored.

    Example:

    \b
        jsflow dev samples/payment_race.js A-17 --event 'payment={"amount": 42}'
        jsflow dev samples/hook_approval.js '{"title": "Desk"}' --resume '{"approved": true, "by": "ann"}'
    """
    name, source = read_script(script)
    values = [parse_value(a, f"argument {i + 1}") for i, a in enumerate(args)]
    queue_events = deque(parse_named(e, "--event") for e in events)
    queue_resumes: deque[Any] = deque(parse_value(r, "--resume value") for r in resumes)
    clock = VirtualClock(datetime.now(UTC).replace(microsecond=0))
    tokens = TokenLog()
    store = MemoryStore(clock=clock)
    host = build_host(None, regs, tokens, clock=clock, store=store, on_console=None)
    loop = DevLoop(
        Session(host, regs, tokens),
        clock,
        queue_events,
        queue_resumes,
        sys.stdin.isatty() if interactive is None else interactive,
        as_json,
    )
    host.engine.clock = clock
    host.engine.on_console = _console(loop.say)
    try:
        inst = _drive(loop, name, source, values, entry, max_steps)
        history = host.history(inst.workflow_id)
    finally:
        host.close()
        store.close()
    if as_json:
        out.emit_json({**out.instance_data(inst), "history": out.history_data(history)})
    else:
        out.echo_instance(inst, hints=False)
        click.echo("  timeline:")
        out.echo_lines(out.timeline(history), "    ")
    if inst.status == "faulted":
        raise CliError(f"workflow faulted: {out.error_text(inst.error or {})}")


def _drive(
    loop: DevLoop, name: str, source: str, values: list[Any], entry: str, max_steps: int
) -> WorkflowInstance:
    host = loop.host
    version = host.register_script(name, source)
    loop.say(f"start {name}({', '.join(out.compact(v, 30) for v in values)})")
    inst = host.start(name, *values, workflow_id=DEV_ID, entry_point=entry, version=version.hash)
    for _ in range(max_steps):
        if inst.is_finished:
            return inst
        nxt = loop.step(inst)
        if nxt is None:
            waits = "; ".join(out.waiting_on(w) for w in inst.waits) or "nothing the host knows"
            raise CliError(
                f"the workflow waits for {waits}, and no input is left: pass --event NAME=JSON "
                f"or --resume JSON, or run interactively"
            )
        inst = nxt
    raise CliError(f"stopped after {max_steps} steps (--max-steps); the workflow is still {inst.status}")


def _console(say: Callable[[str], None]) -> Callable[[str, str], None]:
    def on_console(level: str, message: str) -> None:
        for line in message.split("\n"):
            say(click.style(f"console.{level}: ", fg="blue") + safe(line))

    return on_console
