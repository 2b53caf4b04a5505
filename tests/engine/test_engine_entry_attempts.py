"""Entry points declared with const/let, and attempt numbers across durable retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jsflow import RetryableStepError, RetryPolicy, WorkflowStatus, current_step


@pytest.mark.parametrize(
    "script",
    [
        "const main = async (x) => 'const ' + x;",
        "let main = async function (x) { return 'let ' + x; };",
        "class Flow { static async run(x) { return 'class ' + x; } }\nconst main = Flow.run;",
    ],
)
def test_lexical_entry_points_are_found(engine, script):
    result = engine.run_workflow(script, "main", "ok")
    assert result.status is WorkflowStatus.COMPLETED, result.error
    assert result.value.endswith(" ok")


def test_lexical_entry_point_survives_replay(engine):
    engine.register_suspend_function("approve")
    script = "const main = async () => { const ok = await approve(); return ok ? 'yes' : 'no'; };"
    first = engine.run_workflow(script)
    assert first.status is WorkflowStatus.SUSPENDED
    assert engine.resume_workflow(script, first.state, True).value == "yes"


def test_attempt_counts_durable_and_in_process_retries(engine, clock):
    seen: list[int] = []

    def flaky():
        attempt = current_step().attempt
        seen.append(attempt)
        if attempt <= 2:
            raise RetryableStepError("busy", timedelta(seconds=10))
        if attempt == 3:
            raise ValueError("transient")  # retried in-process by the policy
        return attempt

    engine.register_step_function("flaky", flaky, retry=RetryPolicy(max_attempts=2))
    script = "async function main() { return await flaky(); }"
    result = engine.run_workflow(script)
    records = []
    while result.status is WorkflowStatus.SUSPENDED:
        wait = result.suspension
        assert wait.is_retry
        records.append(result.state.waits[0].attempt)
        clock.advance(seconds=11)
        result = engine.resume_workflow(script, result.state)
    assert result.value == 4
    assert seen == [1, 2, 3, 4]
    assert records == [1, 2]
