"""In-process retry policies for step functions, built on tenacity.

Only a step's final outcome is journaled, so retries are invisible to replay.
``RetryableStepError`` always bypasses a policy: it asks for a durable retry
(a wait in the state), not an in-process one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ._errors import RetryableStepError

if TYPE_CHECKING:  # tenacity (~5 MB of RSS) only once a policy retries
    import tenacity


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, backoff and which exceptions to retry.

    The n-th retry waits ``delay * backoff**(n-1)`` seconds, capped at
    ``max_delay``; ``jitter`` adds a random 0..delay on top. An exception is
    retried when it matches ``retry_on`` and not ``give_up_on``.
    """

    max_attempts: int
    delay: float | timedelta = 0
    backoff: float = 1.0
    max_delay: float | timedelta | None = None
    jitter: bool = False
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.backoff < 1.0:
            raise ValueError("RetryPolicy.backoff must be at least 1.0")

    def _kwargs(self) -> dict[str, Any]:
        import tenacity

        delay = _seconds(self.delay) or 0.0
        cap = _seconds(self.max_delay)
        wait: Any = tenacity.wait_exponential(
            multiplier=delay, exp_base=self.backoff, min=delay, max=cap if cap else math.inf
        )
        if self.jitter and delay:
            wait = wait + tenacity.wait_random(0, delay)
        give_up = (RetryableStepError, *self.give_up_on)
        retry = tenacity.retry_if_exception_type(self.retry_on) & tenacity.retry_if_not_exception_type(
            give_up
        )
        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": wait,
            "retry": retry,
            "reraise": True,
        }

    def retrying(self, sleep: Callable[[float], Any] | None = None) -> tenacity.Retrying:
        import tenacity

        kwargs = self._kwargs()
        if sleep is not None:
            kwargs["sleep"] = sleep
        return tenacity.Retrying(**kwargs)

    def async_retrying(self) -> tenacity.AsyncRetrying:
        import tenacity

        return tenacity.AsyncRetrying(**self._kwargs())
