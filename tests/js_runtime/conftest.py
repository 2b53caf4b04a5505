"""Shared fixtures for the js_runtime tests: small limits so hazards stop fast."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from js_runtime import Sandbox, SandboxLimits

OPS = """
host.register('id', x => x);
host.register('add', (a, b) => a + b);
host.register('q', x => { host.emit(x); });
host.register('get', () => globalThis.__value);
host.register('big', () => 2n ** 70n);
"""

LIMITS = SandboxLimits(time=0.3, memory=32 * 2**20, stack=256 * 1024)


def make(limits: SandboxLimits = LIMITS) -> Sandbox:
    sb = Sandbox(limits)
    sb.start_budget()
    sb.install(OPS)
    return sb


@pytest.fixture
def new_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """Factory for extra sandboxes; all are closed after the test."""
    made: list[Sandbox] = []

    def factory(limits: SandboxLimits = LIMITS) -> Sandbox:
        made.append(make(limits))
        return made[-1]

    yield factory
    for box in made:
        box.close()


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    box = make()
    yield box
    box.close()


@pytest.fixture
def prompt() -> Callable[..., Any]:
    return _prompt


@contextmanager
def _prompt(seconds: float = 3.0) -> Iterator[None]:
    """Assert the block finishes (raising or not) within a generous wall time."""
    t0 = time.perf_counter()
    yield
    elapsed = time.perf_counter() - t0
    assert elapsed < seconds, f"took {elapsed:.2f}s"
