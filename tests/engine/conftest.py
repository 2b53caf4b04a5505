"""Fixtures for the engine tests: a fake clock and engines built on it."""

from __future__ import annotations

import pytest
from engine_helpers import FakeClock

from jsflow import Limits, WorkflowEngine


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(clock: FakeClock) -> WorkflowEngine:
    return WorkflowEngine(clock=clock)


@pytest.fixture
def small_engine(clock: FakeClock) -> WorkflowEngine:
    """Tight limits, so limit tests finish quickly."""
    return WorkflowEngine(
        clock=clock,
        limits=Limits(time=0.5, memory=32 * 2**20, stack=256 * 2**10, payload=1000),
    )
