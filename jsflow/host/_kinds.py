"""Wait kinds: one vocabulary for the host, the CLI, the server and the web view.

Why one enum: the kind of a wait decides what its timer does (a sleep
resumes, an event wait times out, a token wait resumes with
``before_timeout_resume``...) and is what operators filter on. Defined once
here, every surface accepts the same words: the four categories an operator
thinks in (``WAIT_CATEGORIES``) and every kind itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class WaitKind(StrEnum):
    """What a pending wait is, as stored in ``WaitInfo.kind``."""

    SLEEP = "sleep"  #: ``sleep(duration)``
    RETRY = "retry"  #: the backoff before a step's next attempt
    CONTINUE = "continue"  #: the next ``continueAsNew`` generation, due now (a call's budget ran out)
    EVENT = "event"  #: ``waitForEvent(name)``
    TOKEN = "token"  #: a Python suspend function with resume-token hooks
    HOOK = "hook"  #: JS ``createHook``
    SUSPEND = "suspend"  #: any other suspend function (resumed by wait id)
    CANCEL = "cancel"  #: a stored cancel request, delivered by a process that can run the instance


#: ``waiting_on`` category -> the kinds it covers
WAIT_CATEGORIES: dict[str, tuple[WaitKind, ...]] = {
    "timer": (WaitKind.SLEEP, WaitKind.RETRY, WaitKind.CONTINUE),
    "event": (WaitKind.EVENT,),
    "token": (WaitKind.TOKEN, WaitKind.HOOK),
    "suspend": (WaitKind.SUSPEND,),
}
#: kinds no ``waiting_on`` category names (bookkeeping, not something a workflow waits for)
_UNLISTED = frozenset({WaitKind.CANCEL})
#: every word ``waiting_on`` (``list_page``, ``--waiting-on``, the API and the web
#: view) accepts: the categories, then each kind
WAITING_ON: tuple[str, ...] = tuple(WAIT_CATEGORIES) + tuple(
    k.value for k in WaitKind if k.value not in WAIT_CATEGORIES and k not in _UNLISTED
)
#: kinds a bare ``resume`` (no wait id) may pick
RESUMABLE_KINDS = frozenset({WaitKind.SUSPEND, WaitKind.TOKEN, WaitKind.HOOK})
#: kinds that carry a resume token
TOKEN_KINDS = frozenset({WaitKind.TOKEN, WaitKind.HOOK})


def kinds_for(waiting_on: str | Iterable[str]) -> tuple[WaitKind, ...]:
    """The wait kinds ``waiting_on`` names: a category or a kind, or several;
    ``ValueError`` naming the accepted words otherwise."""
    names = (waiting_on,) if isinstance(waiting_on, str) else tuple(waiting_on)
    out: list[WaitKind] = []
    for name in names:
        if name in WAIT_CATEGORIES:
            found = WAIT_CATEGORIES[name]
        elif name in WAITING_ON:
            found = (WaitKind(name),)
        else:
            raise ValueError(f"unknown waiting_on {name!r} (one of {', '.join(WAITING_ON)})")
        out += [k for k in found if k not in out]
    return tuple(out)


def wait_category(kind: str) -> str:
    """The category a kind belongs to ("timer", "event", "token" or "suspend")."""
    for category, kinds in WAIT_CATEGORIES.items():
        if kind in kinds:
            return category
    return "suspend"
