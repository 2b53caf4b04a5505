"""Every engine call is bounded: JS step retries are charged to the time
budget; memory and stack limits cannot be caught by the script; with default
limits any payload under Limits.payload can be delivered and kept."""

from __future__ import annotations

import time

import pytest

from jsflow import Limits, ResourceLimitError, WorkflowEngine, WorkflowStatus


@pytest.mark.parametrize("backoff", [1000, 0])
def test_js_step_retries_are_charged_to_the_time_budget(clock, backoff):
    engine = WorkflowEngine(clock=clock, limits=Limits(time=1.0))
    script = f"""
    async function main() {{
      return await step('s', () => {{ throw new Error('no'); }}, {{ retries: 1e9, backoff: {backoff} }});
    }}
    """
    started = time.perf_counter()
    result = engine.run_workflow(script)
    assert time.perf_counter() - started < 3.0
    assert result.status is WorkflowStatus.FAULTED
    assert isinstance(result.error, ResourceLimitError)
    assert result.error.limit == "time"
    assert "'s'" in str(result.error)


def test_a_few_short_retries_still_succeed(engine):
    script = """
    let n = 0;
    async function main() {
      const body = () => { if (++n < 3) throw new Error('again'); return n; };
      return await step('s', body, { retries: 3, backoff: 5 });
    }
    """
    result = engine.run_workflow(script)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == 3


@pytest.mark.parametrize("shape", ["text", "objects"])
def test_default_limits_hold_any_payload_under_the_payload_limit(shape):
    limits = Limits()
    engine = WorkflowEngine(limits=limits)
    script = "async function main() { const p = await waitForEvent('big'); await sleep('1s'); return p; }"
    budget = limits.payload - 16
    # a long string, and the shape with the most JS heap per JSON byte
    payload = "x" * budget if shape == "text" else [{}] * (budget // 3)
    result = engine.run_workflow(script)
    result = engine.raise_event(script, result.state, "big", payload)
    assert result.status is WorkflowStatus.SUSPENDED, result.error
    result = engine.resume_workflow(script, result.state)
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value == payload
